"""YAML loading that remembers where each value was written.

:func:`load` parses one YAML document with PyYAML's safe loader and returns plain Python
data, except that mappings are :class:`PosDict` and sequences :class:`PosList`, which record
the 1-based line of themselves, of each key, of each value and of each item.

Invariants:
- only YAML's safe types are built, never Python objects;
- a key repeated in one mapping is an error (PyYAML alone would keep the last one silently);
- a scalar shaped like a date but not a real one (``2024-13-45``) stays a string, so the
  caller can refuse it together with its key;
- dates stay ``datetime.date`` / ``datetime.datetime`` as YAML builds them, and floats stay
  floats: callers that need exact amounts refuse floats (amounts are written as strings).

Malformed YAML raises :class:`yaml.MarkedYAMLError`, whose marks carry the line.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

_MERGE_TAG = "tag:yaml.org,2002:merge"


class PosDict(dict):
    """A mapping with the line where it starts and the lines of each key and value."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Hashable, int] = {}
        self.value_lines: dict[Hashable, int] = {}


class PosList(list):
    """A sequence with the line where it starts and the line of each item."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


class PosLoader(yaml.SafeLoader):
    """The safe loader, building :class:`PosDict` and :class:`PosList`."""


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _refuse_duplicate_keys(loader: PosLoader, node: MappingNode) -> None:
    """Refuse a key written twice in this mapping (keys merged with ``<<`` may be overridden)."""
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found an unhashable key",
                key_node.start_mark,
            )
        if key in seen:
            raise ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        seen.add(key)


def _construct_mapping(loader: PosLoader, node: MappingNode) -> Iterator[PosDict]:
    data = PosDict(_line(node))
    yield data
    _refuse_duplicate_keys(loader, node)
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = _line(key_node)
        data.value_lines[key] = _line(value_node)


def _construct_sequence(loader: PosLoader, node: SequenceNode) -> Iterator[PosList]:
    data = PosList(_line(node))
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.item_lines.append(_line(item))


def _construct_timestamp(loader: PosLoader, node: Node) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:  # shaped like a date, but 2024-02-30 or 2024-13-01: keep the text
        return loader.construct_scalar(node)


PosLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
PosLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)
PosLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def load(text: str) -> Any:
    """The single YAML document in ``text``, with positions (``None`` for an empty text)."""
    return yaml.load(text, Loader=PosLoader)
