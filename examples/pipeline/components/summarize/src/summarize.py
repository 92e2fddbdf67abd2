"""Join the predictions to the patients' rows (score_mode append) or keep the predictions alone (replace), and
count the patients of each predicted class."""

import argparse
from pathlib import Path

import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--data_path", type=Path)
parser.add_argument("--predictions_path", type=Path)
parser.add_argument("--score_mode", choices=["append", "replace"])
parser.add_argument("--scores_path", type=Path)
parser.add_argument("--summary_path", type=Path)
args = parser.parse_args()

# The parallel step's appended rows, in Azure's layout: no header, a row's values joined by a space.
lines = (args.predictions_path / "parallel_run_step.txt").read_text().splitlines()
predictions = pd.DataFrame(
    [line.rsplit(" ", 2) for line in lines if line], columns=["file", "row", "prediction"]
).astype({"row": int, "prediction": int})
predictions["file"] = predictions["file"].map(lambda path: Path(path).name)

scored = []
for name, rows in predictions.groupby("file"):
    patients = pd.read_csv(args.data_path / name)
    if args.score_mode == "append":
        joined = patients.iloc[rows["row"]].reset_index(drop=True)
    else:
        joined = pd.DataFrame(index=range(len(rows)))
    joined.insert(0, "file", name)
    joined["prediction"] = rows["prediction"].to_numpy()
    scored.append(joined)
pd.concat(scored).to_csv(args.scores_path / "scores.csv", index=False)
predictions["prediction"].value_counts().sort_index().rename_axis("prediction").rename("patients").to_csv(
    args.summary_path / "summary.csv"
)
print(f"{len(predictions)} patients scored ({args.score_mode})")
