"""Write one row per input file to --scores_path/scores.csv (the score is the file's line count)."""

import argparse
import pathlib

parser = argparse.ArgumentParser()
parser.add_argument("--model_path", required=True)
parser.add_argument("--data_path", required=True)
parser.add_argument("--score_mode", choices=["append", "replace"], required=True)
parser.add_argument("--scores_path", required=True)
args = parser.parse_args()

scores = pathlib.Path(args.scores_path)
scores.mkdir(parents=True, exist_ok=True)
files = sorted(pathlib.Path(args.data_path).glob("*.csv"))
rows = [f"{path.name},{len(path.read_text().splitlines())}" for path in files]
(scores / "scores.csv").write_text("\n".join(["file,score", *rows]) + "\n")
