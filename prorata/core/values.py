"""Copies of the core's frozen values with some fields changed, fast.

``replaced(value, **changes)`` returns what ``dataclasses.replace(value, **changes)``
returns (a new value of the same class, the original untouched, a name that is not a field
refused with ``TypeError``). For a dataclass without ``__post_init__`` whose fields are all
set by ``__init__`` it copies the field dictionary instead of calling ``__init__``, which
sets a frozen dataclass's fields one ``object.__setattr__`` at a time; any other class goes
through ``dataclasses.replace``. Renewals copy subscriptions and their segments at every
step, so this is on the hot path.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any, TypeVar

V = TypeVar("V")


@cache
def _plain_fields(cls: type) -> frozenset[str] | None:
    """The field names of ``cls`` when copying its dictionary is the same as ``replace``."""
    fields = dataclasses.fields(cls)  # InitVar and ClassVar pseudo-fields left out
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
        return None
    if len(fields) != len(cls.__dataclass_fields__) or not all(f.init for f in fields):
        return None
    return frozenset(f.name for f in fields)


def replaced(value: V, /, **changes: Any) -> V:
    names = _plain_fields(type(value))
    if names is None or not names.issuperset(changes):
        return dataclasses.replace(value, **changes)  # its own checks and errors
    copy = object.__new__(type(value))
    fields = copy.__dict__
    fields.update(value.__dict__)
    fields.update(changes)
    return copy
