"""Read a tabular mini-batch: just its rows of each file, as one pandas DataFrame for run().

Where each row came from is in `frame.attrs["slices"]`: a list of `{"file", "row", "rows"}`, in order, where
`row` is the slice's first row in its file (0 = the first data row). The runner adds `file` and `row` columns
to the output itself, so run() needs them only to act on them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from batch_endpoints import parquet_footer
from batch_endpoints.jobfiles import RowSlice
from batch_endpoints.tabular import file_format_or_fail


def read_mini_batch(paths: Mapping[str, str], slices: Sequence[RowSlice], input_format: str) -> pd.DataFrame:
    """The rows of `slices` whose file is in `paths` (name -> local path), concatenated in order."""
    readable = [s for s in slices if s.file in paths]
    frames = [read_slice(paths[s.file], s, file_format_or_fail(s.file, input_format)) for s in readable]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    frame.attrs["slices"] = [{"file": s.file, "row": s.row, "rows": s.rows} for s in readable]
    return frame


def read_slice(path: str, piece: RowSlice, file_format: str) -> pd.DataFrame:
    if file_format == "parquet":
        return _parquet_rows(path, piece)
    with open(path, "rb") as f:
        header = f.readline() if file_format == "csv" else b""
        f.seek(piece.start)
        body = f.read(piece.end - piece.start)
    if file_format == "csv":
        frame = pd.read_csv(io.BytesIO(header + body))
    else:
        frame = pd.read_json(io.BytesIO(body), lines=True)
    if len(frame) != piece.rows:
        raise ValueError(
            f"{piece.name} holds {len(frame)} rows where the plan found {piece.rows}: the file changed since the "
            "job started, or a CSV field holds a line break (one record per line is required)"
        )
    return frame


def _parquet_rows(path: str, piece: RowSlice) -> pd.DataFrame:
    """Read only the row groups that hold the slice's rows."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    span = parquet_footer.row_groups_holding(parquet.metadata, piece.row, piece.rows)
    table = parquet.read_row_groups(list(span.groups))
    frame: pd.DataFrame = table.slice(piece.row - span.first_row, piece.rows).to_pandas()
    return frame


def row_sources(slices: Sequence[RowSlice], files: Mapping[str, str]) -> pd.DataFrame:
    """The `file` and `row` columns for the rows read from `slices` (those whose file is in `files`)."""
    readable = [s for s in slices if s.file in files]
    counts = [s.rows for s in readable]
    return pd.DataFrame(
        {
            "file": np.repeat(np.array([s.file for s in readable], dtype=object), counts),
            "row": np.concatenate([np.arange(s.row, s.row + s.rows, dtype=np.int64) for s in readable]),
        }
    )


def read_whole_table(path: str) -> pd.DataFrame:
    file_format = file_format_or_fail(os.path.basename(path), "auto")
    if file_format == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path) if file_format == "csv" else pd.read_json(path, lines=True)
