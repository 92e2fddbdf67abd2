"""Keep the rows with every feature present, each file under its own name."""

import argparse
from pathlib import Path

import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--data_path", type=Path)
parser.add_argument("--prepared_data_path", type=Path)
args = parser.parse_args()

for source in sorted(args.data_path.glob("*.csv")):
    rows = pd.read_csv(source)
    kept = rows.dropna()
    kept.to_csv(args.prepared_data_path / source.name, index=False)
    print(f"{source.name}: {len(kept)} of {len(rows)} rows kept")
