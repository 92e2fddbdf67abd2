"""How the CLI prints, in one place: every command's result goes through `result`, so `-o json|yaml|table|tsv` and
`--query` (JMESPath) work on every verb as they do with `az`.

Without either flag a command prints as it always has: one JSON document for `show`, an aligned table for `list`,
a bare job id for `invoke`. With them the result is the command's data (the whole record, or a list of records),
filtered by the query and written in az's formats: `json` indented; `yaml` block style with sorted keys; `tsv` one
line per item, a record's values tab-separated in field order, lists as their length and records as an empty cell,
no header; `table` a `simple` table of each item's scalar fields under their names with the first letter capitalised
(a list command's own columns when there is no query), a bare value under `Result`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import jmespath
import jmespath.exceptions
import yaml
from pydantic import BaseModel

from batch_endpoints.errors import ValidationError

FORMATS = ("json", "yaml", "table", "tsv")
# Errors quote the values they refuse; a value of thousands of characters is cut to this, not echoed whole.
LONGEST_QUOTED = 200
_LONG_RUN = re.compile(rf"\S{{{LONGEST_QUOTED + 1},}}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", choices=FORMATS, type=str.lower, help="output format, as az's")
    parser.add_argument("--query", metavar="JMESPATH", help="JMESPath query over the result, e.g. status or [].name")


def result(
    args: argparse.Namespace,
    data: Any,
    *,
    default: Callable[[TextIO], None] | None = None,
    columns: Sequence[str] | None = None,
    out: TextIO | None = None,
) -> None:
    """Print a command's result: `data` (JSON-able) as -o and --query ask, else `default` (JSON when there is none).
    `columns`: what `-o table` shows of a list's items when no query chose the fields."""
    out = out or sys.stdout
    output, query = getattr(args, "output", None), getattr(args, "query", None)
    if output is None and query is None:
        if default is None:
            _json(data, out)
        else:
            default(out)
        return
    if query is not None:
        data = _search(query, data)
    elif columns is not None and output == "table":
        items = data if isinstance(data, list) else [data]
        data = [{column: item.get(column) for column in columns} for item in items]
    if data is None:
        return  # az prints nothing for a query that selects nothing
    out.write(_FORMATTERS[output or "json"](data))


def show(args: argparse.Namespace, item: BaseModel | dict[str, Any], out: TextIO | None = None) -> None:
    result(args, record(item), out=out)


def table(
    args: argparse.Namespace,
    rows: Sequence[BaseModel | dict[str, Any]],
    columns: Sequence[str],
    out: TextIO | None = None,
) -> None:
    """A list command's result: by default an aligned table of `columns` (what `az ml ... list -o table` shows)."""
    records = [record(row) for row in rows]
    result(args, records, default=lambda stream: _aligned(records, columns, stream), columns=columns, out=out)


def record(item: BaseModel | dict[str, Any]) -> dict[str, Any]:
    return item.model_dump(mode="json") if isinstance(item, BaseModel) else item


def error(message: str, out: TextIO | None = None) -> None:
    shortened = _LONG_RUN.sub(lambda run: f"{run[0][: LONGEST_QUOTED // 2]}...({len(run[0])} characters)", message)
    (out or sys.stderr).write(f"error: {shortened}\n")


def _search(query: str, data: Any) -> Any:
    try:
        return jmespath.search(query, data)
    except jmespath.exceptions.JMESPathError as exc:
        raise ValidationError(f"{query!r} is not a JMESPath query: {exc}", field="--query") from None


def _json(data: Any, out: TextIO) -> None:
    out.write(_as_json(data))


def _as_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _as_yaml(data: Any) -> str:
    return str(yaml.safe_dump(data, default_flow_style=False, allow_unicode=True))


def _as_tsv(data: Any) -> str:
    rows = data if isinstance(data, list) else [data]
    return "".join("\t".join(_tsv_cell(value) for value in _row_values(row)) + "\n" for row in rows)


def _row_values(row: Any) -> list[Any]:
    if isinstance(row, dict):
        return list(row.values())
    return row if isinstance(row, list) else [row]


def _tsv_cell(value: Any) -> str:
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict) or value is None:
        return ""
    return _scalar(value)


def _scalar(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _as_table(data: Any) -> str:
    items = data if isinstance(data, list) else [data]
    rows = [_table_row(item) for item in items]
    columns = list(dict.fromkeys(column for row in rows for column in row))
    if items and not columns:
        raise ValidationError("has no fields to show as a table; choose some with --query", field="--output")
    if not items:
        return ""
    widths = [max([len(c)] + [len(row.get(c, "")) for row in rows]) for c in columns]
    lines = [columns, ["-" * width for width in widths], *([row.get(c, "") for c in columns] for row in rows)]
    return "".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n" for line in lines)


def _table_row(item: Any) -> dict[str, str]:
    """An item's scalar fields under their capitalised names (az's auto table); a bare value under Result."""
    if isinstance(item, dict):
        return {
            key[:1].upper() + key[1:]: _scalar(value)
            for key, value in item.items()
            if value is not None and not isinstance(value, list | dict)
        }
    if isinstance(item, list):
        return {f"Column{i}": _scalar(value) for i, value in enumerate(item, start=1)}
    return {"Result": _scalar(item)}


_FORMATTERS: dict[str, Callable[[Any], str]] = {
    "json": _as_json,
    "yaml": _as_yaml,
    "table": _as_table,
    "tsv": _as_tsv,
}


def _aligned(rows: Sequence[dict[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    out.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
