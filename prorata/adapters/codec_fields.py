"""Each registered dataclass's encoder and decoder, written out field by field from its type
annotations, for :mod:`prorata.adapters.codec`.

The generic codec looks at every value to choose how to write or read it; a stored state
is mostly values whose kind its dataclass's annotations already tell (a ``datetime``, a
``Money``, a ``tuple[Item, ...]``). The functions made here test for that expected kind
first and handle it inline; any other value (a subclass, a ``None`` where none was
annotated, a value of an older layout) goes to the generic :func:`to_plain` or
:func:`from_plain`, so the text written and the values read are exactly the generic
codec's: these functions are a shortcut, never a second format.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any

_PLAIN = (str, int, bool)


def _kinds(annotation: Any) -> tuple[tuple[Any, ...], bool]:
    """The kinds an annotation admits besides None, and whether it admits None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = tuple(a for a in args if a is not type(None))
        return rest, len(rest) != len(args)
    return (annotation,), False


def _tuple_of(kind: Any) -> Any:
    """``X`` for ``tuple[X, ...]``, else None."""
    if typing.get_origin(kind) is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
    return None


class _Writer:
    """Source text of one module of functions, and the names its lines refer to."""

    def __init__(self, names: dict[str, Any]) -> None:
        self.names = dict(names)
        self.lines: list[str] = []

    def name(self, value: Any, hint: str) -> str:
        key = f"_{hint}_{id(value)}"
        self.names[key] = value
        return key

    def build(self) -> dict[str, Any]:
        scope = dict(self.names)
        exec("\n".join(self.lines), scope)  # the source is built above, from annotations
        return scope


def encoders(
    classes: dict[str, type], to_plain: Callable, writers: dict[type, Callable]
) -> dict[type, Callable]:
    """One encoder per class: ``{"$": tag, field: plain, …}`` in declaration order, as the
    generic codec writes it. ``writers``: the codec's own writer of each leaf kind (an
    instant, an amount, …), used for a field annotated with that kind."""
    out = _Writer({"to_plain": to_plain})
    known = {cls: f"encode_{tag}" for tag, cls in classes.items()}

    def expression(kind: Any, x: str) -> str | None:
        if kind in _PLAIN:
            return x
        if kind in writers:
            return f"{out.name(writers[kind], 'w')}({x})"
        if kind in known:
            return f"{known[kind]}({x})"
        inner = _tuple_of(kind)
        if inner is not None and inner in known:
            return (
                f'{{"$tuple": [{known[inner]}(v) if type(v) is {out.name(inner, "t")} '
                f"else to_plain(v) for v in {x}]}}"
            )
        return None

    for tag, cls in classes.items():
        hints = typing.get_type_hints(cls)
        out.lines += [f"def encode_{tag}(value):", "    f = value.__dict__"]
        parts = [f'"$": {tag!r}']
        for field in dataclasses.fields(cls):
            kinds, optional = _kinds(hints[field.name])
            # the field is read once, into x, where its expression first looks at it
            read = f"(x := f[{field.name!r}])"
            fast = expression(kinds[0], "x") if len(kinds) == 1 else None
            if fast is None:
                parts.append(f"{field.name!r}: to_plain(f[{field.name!r}])")
                continue
            kind = kinds[0]
            kind_name = "tuple" if _tuple_of(kind) is not None else out.name(kind, "k")
            if fast == "x":  # plain: None is written as it is too
                test = f"{read} is None or type(x)" if optional else f"type({read})"
                parts.append(f"{field.name!r}: x if {test} is {kind_name} else to_plain(x)")
            elif optional:
                parts.append(
                    f"{field.name!r}: None if {read} is None else "
                    f"({fast} if type(x) is {kind_name} else to_plain(x))"
                )
            else:
                parts.append(
                    f"{field.name!r}: {fast} if type({read}) is {kind_name} else to_plain(x)"
                )
        out.lines.append("    return {" + ", ".join(parts) + "}")
    scope = out.build()
    return {cls: scope[f"encode_{tag}"] for tag, cls in classes.items()}


def decoders(
    classes: dict[str, type],
    from_plain: Callable,
    readers: dict[type, tuple[str, Callable]],
    other_layout: Callable[[type, dict], Any],
) -> dict[str, Callable]:
    """One decoder per class. Text with exactly the class's fields (and its tag) has each
    field read as its annotation expects, else by ``from_plain``, and ``__post_init__``
    run, as the generic decoder does; any other layout is ``other_layout(cls, data)``.
    ``readers``: for each leaf kind (an instant, an amount, …), the tag it is stored under
    (``{tag: body}``) and the codec's own reader of the body."""
    out = _Writer({"from_plain": from_plain, "new": object.__new__, "other_layout": other_layout})
    known = {cls: tag for tag, cls in classes.items()}

    def expression(kind: Any, x: str) -> tuple[str, str] | None:
        """(test, value) reading ``x`` when it is stored as ``kind`` is."""
        if kind in _PLAIN:
            return f"type({x}) is {kind.__name__}", x
        if kind in readers:
            key, reader = readers[kind]
            return (
                f"type({x}) is dict and len({x}) == 1 and {key!r} in {x}",
                f"{out.name(reader, 'r')}({x}[{key!r}])",
            )
        if kind in known:
            return f'type({x}) is dict and {x}.get("$") == {known[kind]!r}', (
                f"decode_{known[kind]}({x})"
            )
        inner = _tuple_of(kind)
        if inner is not None and inner in known:
            tag = known[inner]
            return (
                f'type({x}) is dict and len({x}) == 1 and "$tuple" in {x}',
                f'tuple([decode_{tag}(v) if type(v) is dict and v.get("$") == {tag!r} '
                f'else from_plain(v) for v in {x}["$tuple"]])',
            )
        return None

    for tag, cls in classes.items():
        hints = typing.get_type_hints(cls)
        layout = frozenset(("$", *(f.name for f in dataclasses.fields(cls))))
        name = out.name(cls, "c")
        out.lines += [
            f"def decode_{tag}(data):",
            f"    if data.keys() != {out.name(layout, 'l')}:",
            f"        return other_layout({name}, data)",
            f"    value = new({name})",
            "    f = value.__dict__",
        ]
        for field in dataclasses.fields(cls):
            kinds, optional = _kinds(hints[field.name])
            x = f"data[{field.name!r}]"
            read = expression(kinds[0], "x") if len(kinds) == 1 else None
            out.lines.append(f"    x = {x}")
            if read is None:
                out.lines.append(f"    f[{field.name!r}] = from_plain(x)")
                continue
            test, value = read
            if optional and value == "x":  # plain: None is read as it is too
                test = f"x is None or {test}"
            elif optional:
                value = f"None if x is None else {value}"
                test = f"x is None or ({test})"
            out.lines.append(f"    f[{field.name!r}] = ({value}) if {test} else from_plain(x)")
        post_init = getattr(cls, "__post_init__", None)
        if post_init is not None:
            out.lines.append(f"    {out.name(post_init, 'p')}(value)")
        out.lines.append("    return value")
    scope = out.build()
    return {tag: scope[f"decode_{tag}"] for tag in classes}
