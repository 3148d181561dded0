"""Compare a run's output with a scenario's ``expect:`` block.

Rules (from the spec): ``documents`` lists every document with a non-zero line, in issue
order; per document the keys given are compared, and ``lines`` is a multiset of the non-zero
line amounts. ``credit`` is checked per account, ``rejected`` as codes in order,
``subscriptions`` and ``requests`` on the keys given. ``payments`` (an extension) lists
every charge and refund in order, compared on the keys given. ``pending`` (an extension) is
checked per account given: the multiset of the amounts of the lines waiting for its next
invoice (``[]``: none).
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def _has_amount(doc: dict[str, Any]) -> bool:
    return any(not _is_zero(line["amount"]) for line in doc["lines"])


def _is_zero(amount: str) -> bool:
    return amount.strip("-").replace("0", "").replace(".", "") == ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def mismatches(expect: dict[str, Any], output: dict[str, Any]) -> list[str]:
    """Every difference between ``expect`` and ``output``, as readable sentences."""
    problems: list[str] = []
    if "documents" in expect:
        problems += _documents(
            expect["documents"], [d for d in output["documents"] if _has_amount(d)]
        )
    for account, credit in (expect.get("credit") or {}).items():
        got = output["accounts"].get(account, {}).get("credit")
        if got != _text(credit):
            problems.append(f"credit of {account}: expected {credit}, got {got}")
    for account, amounts in (expect.get("pending") or {}).items():
        want = Counter(_text(v) for v in amounts or [])
        have = Counter(
            line["amount"] for line in output["accounts"].get(account, {}).get("pending", [])
        )
        if want != have:
            problems.append(
                f"pending of {account}: expected {sorted(want.elements())}, "
                f"got {sorted(have.elements())}"
            )
    if "rejected" in expect:
        codes = [r["code"] for r in output["rejected"]]
        if codes != list(expect["rejected"] or []):
            problems.append(f"rejected: expected {expect['rejected']}, got {codes}")
    for sub_id, wanted in (expect.get("subscriptions") or {}).items():
        got = output["subscriptions"].get(sub_id)
        if got is None:
            problems.append(f"subscription {sub_id} missing")
            continue
        for key, value in wanted.items():
            if _normal(got.get(key)) != _normal(value):
                problems.append(
                    f"subscription {sub_id}.{key}: expected {value}, got {got.get(key)}"
                )
    for name in ("requests", "payments"):
        if name in expect:
            problems += _listed(name[:-1], expect[name] or [], output.get(name, []))
    return problems


def _listed(noun: str, wanted: list[dict], got: list[dict]) -> list[str]:
    """A list compared item by item on the keys each expected item gives."""
    problems = []
    if len(wanted) != len(got):
        problems.append(f"{noun}s: expected {len(wanted)}, got {len(got)}")
    for i, (w, g) in enumerate(zip(wanted, got, strict=False)):
        for key, value in w.items():
            if _normal(g.get(key)) != _normal(value):
                problems.append(f"{noun} {i + 1}.{key}: expected {value}, got {g.get(key)}")
    return problems


def _normal(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value if value is None or isinstance(value, list | dict) else str(value)


def _documents(wanted: list[dict], got: list[dict]) -> list[str]:
    problems = []
    if len(wanted) != len(got):
        summary = [(d["type"], d["date"], d["total"]) for d in got]
        problems.append(f"documents: expected {len(wanted)}, got {len(got)}: {summary}")
    for i, (w, g) in enumerate(zip(wanted, got, strict=False)):
        for key, value in w.items():
            if key == "lines":
                want = Counter(_text(v) for v in value)
                have = Counter(
                    line["amount"] for line in g["lines"] if not _is_zero(line["amount"])
                )
                if want != have:
                    problems.append(
                        f"document {i + 1} ({g['number']}) lines: expected "
                        f"{sorted(want.elements())}, got {sorted(have.elements())}"
                    )
            elif _text(g.get(key)) != _text(value):
                problems.append(
                    f"document {i + 1} ({g.get('number')}) {key}: expected {value}, "
                    f"got {g.get(key)}"
                )
    return problems
