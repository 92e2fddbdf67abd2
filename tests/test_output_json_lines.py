"""JSON lines parts: every value as exact as JSON allows, and a clear reason for what JSON cannot carry."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from batch_container.json_lines import NotJson
from batch_container.rows import Rows


def lines(rows: Rows) -> list[dict]:
    return [json.loads(line) for line in rows.to_bytes("jsonl").decode("ascii").split("\n")[:-1]]


def test_floats_keep_every_digit_and_names_keep_every_character() -> None:
    floats = [1e-12, 1.0000000000000002e16, np.float32(0.5), -0.0]
    names = ["p\x00q", "line\u2028sep", 'é,\r\n"']
    rows = Rows(names, [floats, [np.int64(7), 2**70, None, True], ["a", "\x00", "", "\r"]])

    assert lines(rows) == [dict(zip(names, row, strict=True)) for row in zip(*rows.values, strict=True)]
    assert [row["p\x00q"] for row in lines(rows)] == [1e-12, 1.0000000000000002e16, 0.5, -0.0]


def test_what_json_has_no_value_for_is_null() -> None:
    rows = Rows(["x"], [[math.nan, math.inf, -math.inf, None, pd.NA, pd.NaT, np.datetime64("NaT")]])

    assert lines(rows) == [{"x": None}] * 7


def test_dates_arrays_and_objects_are_written_as_json_can() -> None:
    rows = Rows(["x"], [[pd.Timestamp("2026-12-04 10:00"), np.array([1, 2]), {"k": (np.int8(1), "v")}, b"ok"]])

    assert lines(rows) == [{"x": "2026-12-04T10:00:00"}, {"x": [1, 2]}, {"x": {"k": [1, "v"]}}, {"x": "ok"}]


@pytest.mark.parametrize(
    ("columns", "values", "reason"),
    [
        (["a", "a"], [[1], [2]], "column 'a' appears twice"),
        (["raw"], [[b"\xff"]], "column 'raw' holds bytes that are not UTF-8 text"),
    ],
)
def test_rows_json_cannot_carry_fail_naming_the_column(columns, values, reason) -> None:
    with pytest.raises(NotJson, match=reason):
        Rows(columns, values).to_bytes("jsonl")
