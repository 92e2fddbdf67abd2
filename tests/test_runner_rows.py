"""What run() may return, and the rows each shape becomes (batch_container.rows)."""

from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_container.rows import NO_ROW, BadResult, Rows, to_rows
from batch_endpoints.csv_records import UnixRecords

PATHS = ["/scratch/dl/cats/a.png", "/scratch/dl/dogs/b.png", "/scratch/dl/c.png"]
NAMES = ["cats/a.png", "dogs/b.png", "c.png"]


def rows_of(result):
    return to_rows(result, PATHS, NAMES)


def test_none_means_every_file_succeeded_without_rows():
    rows = rows_of(None)
    assert rows.table is None
    assert rows.count == 0
    assert rows.failed == {}
    assert rows.to_csv() == b""


def test_list_of_scalars_becomes_a_prediction_column_after_the_file_column():
    rows = rows_of([1, 0, 1])
    assert rows.columns == ["file", "prediction"]
    assert rows.table["file"].tolist() == NAMES
    assert rows.table["prediction"].tolist() == [1, 0, 1]


def test_tuple_is_a_list():
    assert rows_of(("x", "y", "z")).table["prediction"].tolist() == ["x", "y", "z"]


def test_list_of_dicts_becomes_one_column_per_key():
    rows = rows_of([{"label": 3, "score": 0.9}, {"label": 1, "score": 0.5}, {"label": 7, "score": 0.1}])
    assert rows.columns == ["file", "label", "score"]
    assert rows.table["label"].tolist() == [3, 1, 7]


def test_list_of_equal_length_vectors_becomes_numbered_prediction_columns():
    rows = rows_of([[0.1, 0.9], np.array([0.8, 0.2]), (0.5, 0.5)])
    assert rows.columns == ["file", "prediction_0", "prediction_1"]
    assert rows.table["prediction_1"].tolist() == [0.9, 0.2, 0.5]


def test_ragged_list_keeps_one_cell_per_file():
    rows = rows_of([[1], [1, 2], []])
    assert rows.columns == ["file", "prediction"]
    assert rows.count == 3


def test_one_dimensional_array_becomes_a_prediction_column():
    rows = rows_of(np.array([3, 1, 4]))
    assert rows.columns == ["file", "prediction"]
    assert rows.table["prediction"].tolist() == [3, 1, 4]


def test_two_dimensional_array_becomes_prediction_0_to_k():
    rows = rows_of(np.arange(6).reshape(3, 2))
    assert rows.columns == ["file", "prediction_0", "prediction_1"]
    assert rows.table["prediction_0"].tolist() == [0, 2, 4]


def test_three_dimensional_array_fails_the_attempt():
    with pytest.raises(BadResult, match=r"array of shape \(3, 2, 2\)"):
        rows_of(np.zeros((3, 2, 2)))


def test_tensor_like_objects_are_detached_and_moved_to_the_cpu_first():
    class FakeTensor:
        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return np.array([1.0, 2.0, 3.0])

    assert rows_of(FakeTensor()).table["prediction"].tolist() == [1.0, 2.0, 3.0]


def test_series_is_one_column_named_after_the_series():
    rows = rows_of(pd.Series([5, 6, 7], name="digit", index=[10, 11, 12]))
    assert rows.columns == ["file", "digit"]
    assert rows.table["digit"].tolist() == [5, 6, 7]


def test_dataframe_without_a_file_column_maps_rows_to_files_by_position():
    frame = pd.DataFrame({"label": [1, 2, 3]}, index=[7, 8, 9])
    rows = rows_of(frame)
    assert rows.columns == ["file", "label"]
    assert rows.table["file"].tolist() == NAMES


@pytest.mark.parametrize(
    ("result", "returned"),
    [([1, 2], 2), (np.array([1, 2, 3, 4]), 4), (pd.DataFrame({"x": [1]}), 1), ([], 0)],
)
def test_row_count_must_match_file_count(result, returned):
    with pytest.raises(BadResult) as caught:
        rows_of(result)
    assert str(caught.value) == (
        f"run() returned {returned} rows for 3 files; return one row per file, "
        "or include a 'file' column naming each row's input"
    )


@pytest.mark.parametrize(("result", "kind"), [(42, "int"), ("text", "str"), ({"a": 1}, "dict"), (np.int64(3), "int64")])
def test_other_types_fail_the_attempt_naming_the_type(result, kind):
    with pytest.raises(BadResult) as caught:
        rows_of(result)
    assert str(caught.value) == f"run() must return a pandas DataFrame, a list or an array; got {kind}"


@pytest.mark.parametrize("column", ["file", "file_name", "filename", "path"])
def test_file_column_attributes_rows_by_local_path(column):
    frame = pd.DataFrame({column: [PATHS[2], PATHS[0]], "label": [9, 8]})
    rows = rows_of(frame)
    assert rows.table[column].tolist() == ["c.png", "cats/a.png"]
    assert rows.failed == {"dogs/b.png": NO_ROW}


def test_file_column_matches_relative_paths_and_unique_basenames():
    frame = pd.DataFrame({"file": ["cats/a.png", "b.png", "c.png"], "label": [1, 2, 3]})
    rows = rows_of(frame)
    assert rows.table["file"].tolist() == NAMES
    assert rows.failed == {}


def test_file_column_allows_several_rows_per_file():
    frame = pd.DataFrame({"file": ["a.png", "a.png", "b.png", "c.png"], "box": [1, 2, 3, 4]})
    rows = rows_of(frame)
    assert rows.count == 4
    assert rows.table["file"].tolist() == ["cats/a.png", "cats/a.png", "dogs/b.png", "c.png"]


# Nested inputs whose basenames repeat across folders, as one mini-batch holds them.
NESTED_NAMES = ["a/x.txt", "b/x.txt", "c/y.txt"]
NESTED_PATHS = [f"/scratch/dl/{name}" for name in NESTED_NAMES]
AMBIGUOUS = "the basename of 2 files of this mini-batch (a/x.txt, b/x.txt)"


def nested_rows(files, **columns):
    return to_rows(pd.DataFrame({"file": files, **columns}), NESTED_PATHS, NESTED_NAMES)


def test_readme_pattern_matches_a_shared_basename_by_position():
    rows = nested_rows([os.path.basename(p) for p in NESTED_PATHS], label=[1, 2, 3])
    assert rows.table["file"].tolist() == NESTED_NAMES
    assert rows.table["label"].tolist() == [1, 2, 3]
    assert rows.failed == {}


def test_readme_pattern_matches_a_top_level_file_and_a_nested_one_of_the_same_name_by_position():
    # "x.txt" is the first file's relative path and the second's basename.
    rows = to_rows(
        pd.DataFrame({"file": ["x.txt", "x.txt"], "label": [1, 2]}), ["/dl/x.txt", "/dl/a/x.txt"], ["x.txt", "a/x.txt"]
    )
    assert rows.table["file"].tolist() == ["x.txt", "a/x.txt"]
    assert rows.failed == {}


def test_readme_pattern_matches_a_basename_shared_across_mini_batches():
    for name in ["a/x.txt", "b/x.txt"]:
        rows = to_rows(pd.DataFrame({"file": ["x.txt"], "label": [1]}), [f"/dl/{name}"], [name])
        assert rows.table["file"].tolist() == [name]
        assert rows.failed == {}


@pytest.mark.parametrize("named", [NESTED_PATHS, NESTED_NAMES], ids=["local paths", "relative paths"])
def test_full_paths_match_in_any_order_whatever_the_basenames(named):
    rows = nested_rows(named[::-1], label=[3, 2, 1])
    assert rows.table["file"].tolist() == NESTED_NAMES[::-1]
    assert rows.table["label"].tolist() == [3, 2, 1]
    assert rows.failed == {}


def test_shared_basename_with_fewer_rows_than_files_fails_only_the_files_it_may_name():
    rows = nested_rows(["x.txt", "y.txt"], label=[1, 3])
    assert rows.table["file"].tolist() == ["c/y.txt"]
    assert rows.table["label"].tolist() == [3]
    assert set(rows.failed) == {"a/x.txt", "b/x.txt"}
    assert all(AMBIGUOUS in why for why in rows.failed.values())


def test_shared_basename_out_of_order_fails_only_the_files_it_may_name():
    rows = nested_rows(["y.txt", "x.txt", "x.txt"], label=[3, 1, 2])
    assert rows.table["file"].tolist() == ["c/y.txt"]
    assert rows.table["label"].tolist() == [3]
    assert set(rows.failed) == {"a/x.txt", "b/x.txt"}


def test_shared_basename_with_several_rows_per_file_fails_those_files():
    rows = to_rows(pd.DataFrame({"file": ["x.txt"] * 4}), NESTED_PATHS[:2], NESTED_NAMES[:2])
    assert rows.count == 0
    assert set(rows.failed) == {"a/x.txt", "b/x.txt"}
    assert all(AMBIGUOUS in why for why in rows.failed.values())


def test_a_file_a_shared_basename_may_name_fails_even_where_another_row_names_it_exactly():
    # Which of the rows are a/x.txt's is unknown: it fails rather than be both scored and failed.
    rows = nested_rows(["a/x.txt", "x.txt", "y.txt", "x.txt"], label=[1, 2, 3, 4])
    assert rows.table["file"].tolist() == ["c/y.txt"]
    assert set(rows.failed) == {"a/x.txt", "b/x.txt"}


def test_two_rows_naming_one_nested_file_leave_the_other_without_a_row():
    rows = nested_rows(["a/x.txt", "a/x.txt", "y.txt"], label=[1, 2, 3])
    assert rows.table["file"].tolist() == ["a/x.txt", "a/x.txt", "c/y.txt"]
    assert rows.failed == {"b/x.txt": NO_ROW}


def test_row_naming_a_nested_file_outside_the_mini_batch_fails_the_attempt():
    with pytest.raises(BadResult, match=r"'file' is 'd/x.txt', which names no file of this mini-batch"):
        nested_rows(["x.txt", "d/x.txt", "y.txt"])


def test_row_naming_a_file_outside_the_mini_batch_fails_the_attempt():
    frame = pd.DataFrame({"file": ["a.png", "elsewhere.png"]})
    with pytest.raises(BadResult, match=r"'file' is 'elsewhere.png', which names no file"):
        rows_of(frame)


def test_first_file_like_column_wins():
    frame = pd.DataFrame({"path": ["not/an/input"], "file": ["a.png"]})
    rows = rows_of(frame)
    assert rows.table["file"].tolist() == ["cats/a.png"]
    assert rows.table["path"].tolist() == ["not/an/input"]


def test_empty_dataframe_with_file_column_fails_every_file():
    rows = rows_of(pd.DataFrame({"file": [], "label": []}))
    assert rows.count == 0
    assert rows.failed == dict.fromkeys(NAMES, NO_ROW)


def test_csv_has_a_header_utf8_and_unix_line_endings():
    rows = rows_of(["é", "a,b", 'say "hi"'])
    text = rows.to_csv().decode("utf-8")
    assert text == 'file,prediction\ncats/a.png,é\ndogs/b.png,"a,b"\nc.png,"say ""hi"""\n'
    assert pd.read_csv(io.StringIO(text))["prediction"].tolist() == ["é", "a,b", 'say "hi"']


def test_single_file_input_is_named_by_its_name():
    rows = to_rows([0.5], ["/scratch/data.csv"], ["data.csv"])
    assert rows.table["file"].tolist() == ["data.csv"]


# The part file's CSV is written without pandas for plain columns; it must be byte for byte what pandas writes.
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)


def cells(elements):
    return st.lists(elements, min_size=4, max_size=4)


PLAIN_LISTS = st.one_of(cells(TEXT), cells(st.integers(-(2**70), 2**70)), cells(st.booleans()), cells(FLOATS))
COLUMNS = st.one_of(
    PLAIN_LISTS,
    PLAIN_LISTS.map(lambda c: pd.Series(c).array),  # a DataFrame's column, as run() returned it
    cells(st.integers(-(2**63), 2**63 - 1)).map(np.array),
    cells(FLOATS).map(np.array),
    cells(st.floats(width=32)).map(lambda c: np.array(c, dtype=np.float32)),
    cells(st.booleans()).map(np.array),
    cells(TEXT).map(np.array),
    cells(st.one_of(st.none(), st.integers(), FLOATS, TEXT)),  # mixed: pandas renders these itself
)


def pandas_csv(table: pd.DataFrame) -> bytes:
    """What pandas writes, every record ending in "\\n" and a field holding CR or LF quoted."""
    records = UnixRecords()
    table.to_csv(records, index=False, lineterminator=records.TOLD)
    return records.utf8()


@given(st.lists(st.tuples(TEXT, COLUMNS), min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_csv_is_what_pandas_writes(named_columns):
    rows = Rows([name for name, _ in named_columns], [column for _, column in named_columns])
    assert rows.to_csv() == pandas_csv(rows.table)


def test_plain_columns_are_written_without_pandas(monkeypatch):
    rows = to_rows(pd.DataFrame({"file": ["a.png", "b.png", "c.png"], "p": np.float32([0.5, 0.25, 1])}), PATHS, NAMES)
    expected = pandas_csv(rows.table)
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda *a, **k: pytest.fail("rendered by pandas"))
    assert rows.to_csv() == expected
    assert rows_of([1, 2, 3]).to_csv() == b"file,prediction\ncats/a.png,1\ndogs/b.png,2\nc.png,3\n"


def test_csv_of_dtypes_pandas_formats_itself_is_pandas_own():
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2026-01-01", "2026-06-30"]),
            "kind": pd.Categorical(["a", "b"]),
            "n": pd.array([1, None], dtype="Int64"),
            "text": pd.array(["x", None], dtype="string"),
        }
    )
    rows = Rows.of(frame)
    assert rows.to_csv() == pandas_csv(frame)
