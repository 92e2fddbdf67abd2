"""How the CLI prints: one JSON document for `show`, an aligned table for `list`, like `az ml ... -o table`."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from pydantic import BaseModel

# Errors quote the values they refuse; a value of thousands of characters is cut to this, not echoed whole.
LONGEST_QUOTED = 200
_LONG_RUN = re.compile(rf"\S{{{LONGEST_QUOTED + 1},}}")


def show(item: BaseModel | dict[str, Any], out: TextIO | None = None) -> None:
    data = item.model_dump(mode="json") if isinstance(item, BaseModel) else item
    (out or sys.stdout).write(json.dumps(data, indent=2) + "\n")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    out.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def error(message: str, out: TextIO | None = None) -> None:
    shortened = _LONG_RUN.sub(lambda run: f"{run[0][: LONGEST_QUOTED // 2]}...({len(run[0])} characters)", message)
    (out or sys.stderr).write(f"error: {shortened}\n")
