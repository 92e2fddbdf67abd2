"""One type per column of a Parquet output, whatever types its mini-batches' run() returned.

The rule, applied where a part is written (to a column of mixed Python values) and where parts or shards are
merged (to a column whose type differs between them):
- a null fits every type: a column missing from a part, or all null in it, takes the others' type;
- one type everywhere stays that type;
- integers of one signedness: the widest; integers of both: int64 when every value fits;
- floats: the widest; integers with floats: float64 when every integer is exact in one (|n| <= 2**53);
- anything else (text with numbers, booleans with numbers, integers beyond int64, ...): text, each value as
  Arrow writes it (3, 1.5, true) or else as Python's str(); a null stays null.

Every promotion is lossless: a value is never rounded, only written as text. Where a column's values came in
more than one type, its field's metadata lists them (`TYPES_MET`), in parts, shard outputs and the output alike,
so each merge knows what the merges before it met, and the job's summary says per column the types met and the
type chosen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TYPES_MET = b"bep.types_met"
EXACT_IN_FLOAT64 = 2**53
INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class _Seen:
    """A column as one part holds it: its type, and its integers' range where the footer says (None: unknown)."""

    type: pa.DataType
    integer_range: tuple[int, int] | None
    types_met: tuple[str, ...]


def part_table(columns: Sequence[str], values: Sequence[Any]) -> pa.Table:
    """A part's rows as an Arrow table: each column as Arrow infers it, or as text when its values have no
    common type (its field then noting the types its values had)."""
    fields, arrays = [], []
    for name, column in zip(columns, values, strict=True):
        try:
            array, met = pa.array(column, from_pandas=True), []
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            array = pa.array([None if _is_null(v) else _text(v) for v in column], pa.string())
            met = _value_types(column)
        if pa.types.is_large_string(array.type):
            array = array.cast(pa.string())
        fields.append(_noting(pa.field(name, array.type), met))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def unified_schema(metadata: Sequence[pq.FileMetaData]) -> tuple[pa.Schema, list[dict[str, Any]]]:
    """The merged output's schema for parts with these footers (columns in first-seen order), and a note for each
    column whose values came in more than one type: {"column", "types_met", "type_chosen"}."""
    seen: dict[str, list[_Seen]] = {}
    for footer in metadata:
        schema = footer.schema.to_arrow_schema()
        for index, field in enumerate(schema):
            seen.setdefault(field.name, []).append(
                _Seen(field.type, _integer_range(footer, index, field.type), _noted(field))
            )
    fields, unified = [], []
    for name, parts in seen.items():
        chosen = _unified_type(parts)
        met = list(dict.fromkeys(t for part in parts for t in part.types_met))
        if met and met != [str(chosen)]:
            unified.append({"column": name, "types_met": met, "type_chosen": str(chosen)})
        fields.append(_noting(pa.field(name, chosen), met))
    return pa.schema(fields), unified


def conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The table's columns as `schema` has them: cast to its types, null where the table lacks one."""
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(len(table), field.type))
            continue
        column = table.column(field.name)
        if column.type == field.type:
            columns.append(column)
        elif pa.types.is_string(field.type) and not pa.types.is_null(column.type):
            columns.append(pa.chunked_array([_as_text(chunk) for chunk in column.chunks], pa.string()))
        else:
            columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _unified_type(parts: Sequence[_Seen]) -> pa.DataType:
    types = list(dict.fromkeys(part.type for part in parts if not pa.types.is_null(part.type)))
    if not types:
        return pa.null()
    if len(types) == 1:
        return types[0]
    integers = [part for part in parts if pa.types.is_integer(part.type)]
    if all(pa.types.is_integer(t) for t in types):
        if len({t in _UNSIGNED for t in types}) == 1:
            return max(types, key=lambda t: t.bit_width)
        return pa.int64() if _all_within(integers, *INT64) else pa.string()
    if all(pa.types.is_floating(t) for t in types):
        return pa.float64()
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
        return pa.float64() if _all_within(integers, -EXACT_IN_FLOAT64, EXACT_IN_FLOAT64) else pa.string()
    return pa.string()


_UNSIGNED = {pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()}


def _all_within(parts: Sequence[_Seen], low: int, high: int) -> bool:
    return all(p.integer_range is not None and low <= p.integer_range[0] <= p.integer_range[1] <= high for p in parts)


def _integer_range(footer: pq.FileMetaData, index: int, type_: pa.DataType) -> tuple[int, int] | None:
    """The smallest and largest value of an integer column, from the row groups' statistics (no data read)."""
    if not pa.types.is_integer(type_):
        return None
    low: int | None = None
    high: int | None = None
    for group in range(footer.num_row_groups):
        chunk = footer.row_group(group).column(index)
        if not chunk.num_values:
            continue
        stats = chunk.statistics
        if stats is None or not stats.has_min_max:
            return None
        low = stats.min if low is None else min(low, stats.min)
        high = stats.max if high is None else max(high, stats.max)
    return (0, 0) if low is None or high is None else (low, high)


def _noting(field: pa.Field, types_met: list[str]) -> pa.Field:
    """The field, noting the types its values had where they were not all of its type."""
    if not types_met or types_met == [str(field.type)]:
        return field
    return field.with_metadata({TYPES_MET: json.dumps(types_met).encode()})


def _noted(field: pa.Field) -> tuple[str, ...]:
    if field.metadata and TYPES_MET in field.metadata:
        return tuple(json.loads(field.metadata[TYPES_MET]))
    return () if pa.types.is_null(field.type) else (str(field.type),)


def _value_types(values: Any) -> list[str]:
    """The Arrow type of each value in a column, in first-seen order (a Python type where Arrow has none)."""
    return list(dict.fromkeys(_value_type(value) for value in values if not _is_null(value)))


def _value_type(value: Any) -> str:
    try:
        return str(pa.array([value]).type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return f"{type(value).__name__} (no Arrow type)"


def _as_text(array: pa.Array) -> pa.Array:
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else _text(v) for v in array.to_pylist()], pa.string())


def _text(value: Any) -> str:
    """A value as text: as Arrow writes its type as text (3, 1.5, true), else as Python's str()."""
    try:
        text: str = pc.cast(pa.array([value]), pa.string())[0].as_py()
        return text
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return str(value)


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
