"""Copy each CSV file from --data_path to --prepared_data_path; write the transformations used."""

import argparse
import json
import pathlib
import shutil

parser = argparse.ArgumentParser()
parser.add_argument("--data_path", required=True)
parser.add_argument("--transformations_path")
parser.add_argument("--categorical_encoding", default="ordinal")
parser.add_argument("--prepared_data_path", required=True)
parser.add_argument("--transformations_output_path", required=True)
args = parser.parse_args()

prepared = pathlib.Path(args.prepared_data_path)
prepared.mkdir(parents=True, exist_ok=True)
for source in sorted(pathlib.Path(args.data_path).glob("*.csv")):
    shutil.copy(source, prepared / source.name)
transformations = pathlib.Path(args.transformations_output_path)
transformations.mkdir(parents=True, exist_ok=True)
(transformations / "transformations.json").write_text(json.dumps({"encoding": args.categorical_encoding}))
