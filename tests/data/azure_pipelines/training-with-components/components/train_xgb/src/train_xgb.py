"""Record what training was asked for: the model folder gets an MLmodel file, the results folder the settings."""

import argparse
import json
import pathlib

parser = argparse.ArgumentParser()
parser.add_argument("--data_path", required=True)
parser.add_argument("--target_column", required=True)
parser.add_argument("--eval_size", type=float, required=True)
parser.add_argument("--register_best_model", required=True)
parser.add_argument("--registered_model_name")
parser.add_argument("--model", required=True)
parser.add_argument("--evaluation_results", required=True)
args = parser.parse_args()

pathlib.Path(args.model).mkdir(parents=True, exist_ok=True)
(pathlib.Path(args.model) / "MLmodel").write_text("flavors: {}\n")
pathlib.Path(args.evaluation_results).mkdir(parents=True, exist_ok=True)
(pathlib.Path(args.evaluation_results) / "settings.json").write_text(json.dumps(vars(args)))
