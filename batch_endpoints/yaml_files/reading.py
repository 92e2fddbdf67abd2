"""Reading a YAML file the user names, within bounds a spec file never comes near.

PyYAML's SafeLoader keeps the last of a key given twice, composes nested collections by recursion (a file a few
thousand brackets deep raises RecursionError) and builds an alias as a reference to its anchor, so a
"billion laughs" file of a few hundred bytes is small in memory until the first walk over it (validation, an
error message) expands it to 9^9 values. Here a key given twice, a file over MAX_FILE_BYTES, nesting deeper than
MAX_DEPTH and a document whose aliases expand to more than MAX_VALUES values are refused, each naming the file,
before anything walks the document. Azure's own spec files are a few kilobytes, a few levels and a few hundred
values.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from batch_endpoints.errors import NotFoundError, ValidationError

MAX_FILE_BYTES = 2**20
MAX_DEPTH = 64
MAX_VALUES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice, deep nesting and an alias bomb (see the module)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nests deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_VALUES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"its anchors and aliases expand to more than {MAX_VALUES} values; write the values out",
                node.start_mark,
            )
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader itself refuses unhashable keys, with its own message
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in this mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values the node holds once every alias is expanded, counted once per distinct node (the graph an
    alias bomb makes is small; its expansion is not). Recursion is bounded by MAX_DEPTH."""
    if id(node) not in sizes:
        sizes[id(node)] = 0  # a recursive alias (&a [*a]) counts once, as SafeLoader then refuses or loops it
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """The document in a YAML file, or a ValidationError (NotFoundError) naming the file and what is wrong."""
    source = os.fspath(path)
    try:
        with Path(path).expanduser().open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise ValidationError(f"{source}: is larger than {MAX_FILE_BYTES} bytes; a spec file is a few kilobytes")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ValidationError(f"{source}: is a folder; expected a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:  # a name too long, a permission denied, a file that cannot be read
        raise ValidationError(f"{source}: cannot be read ({exc.strerror})", field="file") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationError(f"{source}: {where}not valid YAML: {problem}") from None
