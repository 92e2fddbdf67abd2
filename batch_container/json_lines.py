"""Output rows as JSON lines: one JSON object a row, each naming its columns.

Written with Python's json rather than pandas' to_json, which rounds floats to 10 decimal places (1e-12 becomes 0)
and cuts a column name at a NUL. Here every float keeps its shortest exact form, and names and text pass whole
(escaped to ASCII, so no character, U+2028 included, can break a line). JSON has no NaN or infinity: those, like
None, NA and NaT, are written as null, as pandas does.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd


class NotJson(ValueError):
    """A row cannot be written as JSON: the message names the column and why."""


def json_lines(columns: Sequence[str], values: Sequence[Iterable[Any]]) -> bytes:
    repeated = next((name for name in columns if columns.count(name) > 1), None)
    if repeated is not None:
        raise NotJson(f"column {repeated!r} appears twice; a JSON object names each column once")
    cells = [[_cell(name, value) for value in column] for name, column in zip(columns, values, strict=True)]
    lines = (json.dumps(dict(zip(columns, row, strict=True)), allow_nan=False) for row in zip(*cells, strict=True))
    return "".join(line + "\n" for line in lines).encode("ascii")


def _cell(column: str, value: Any) -> Any:
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)  # .item() would give nanoseconds as an int
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | bool | int):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise NotJson(f"column {column!r} holds bytes that are not UTF-8 text; JSON lines carry text") from None
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [_cell(column, item) for item in value]
    if isinstance(value, dict):
        return {str(key): _cell(column, item) for key, item in value.items()}
    return str(value)
