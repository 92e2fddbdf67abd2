"""Where a value in a YAML file came from, so that every error names the file and the field as the user wrote
it: `deployment.yml: field 'settings.mini_batch_size': <problem>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from batch_endpoints import specs
from batch_endpoints.errors import ValidationError


@dataclass(frozen=True)
class Origin:
    """Where the user wrote a value that the loader keeps at another path, or that an override set."""

    written: str
    note: str = ""


class reported:
    """Turn a ValidationError raised inside into one that names the source and the field as the user wrote it.

    Code inside raises plain errors (field + problem) or lets pydantic's through; this adds the rest once.
    """

    def __init__(self, source: str | None, origins: Mapping[str, Origin]) -> None:
        self.source = source
        self.origins = origins

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, pydantic.ValidationError):
            exc = specs.validation_error(exc.errors())
        if isinstance(exc, ValidationError):
            field, note = self._written(exc.field)
            raise error(self.source, field, exc.message, note=note) from None

    def _written(self, field: str | None) -> tuple[str | None, str]:
        if not field:
            return field, ""
        parts = field.split(".")
        for cut in range(len(parts), 0, -1):
            origin = self.origins.get(".".join(parts[:cut]))
            if origin is not None:
                return ".".join([origin.written, *parts[cut:]]), origin.note
        return field, ""


def error(source: str | None, field: str | None, problem: str, *, note: str = "") -> ValidationError:
    """The one message format: `deployment.yml: field 'settings.mini_batch_size': <problem>`."""
    where = ""
    if field:
        where = f"field '{field}'" + (f" ({note})" if note else "")
        where += " " if problem.startswith(("is ", "must ", "cannot ", "conflicts ")) else ": "
    prefix = f"{source}: " if source else ""
    return ValidationError(f"{prefix}{where}{problem}", field=field)


def kind(value: Any) -> str:
    for kind, word in (
        (bool, "boolean"),
        (int | float, "number"),
        (str, "string"),
        (Mapping, "mapping"),
        (list, "list"),
    ):
        if isinstance(value, kind):
            return word
    return "null" if value is None else type(value).__name__
