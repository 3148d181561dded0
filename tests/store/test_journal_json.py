"""The audit log's and the outbox's JSON: the data the stdlib's ``json.dumps(value,
sort_keys=True, ensure_ascii=False, default=str)`` would have written, whichever encoder
wrote it (orjson, or the stdlib for what orjson refuses)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from prorata.adapters.journal import _json
from prorata.core.calendar import PeriodUnit


@dataclasses.dataclass(frozen=True)
class _Point:
    x: int


def _stdlib(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)  # beyond 64 bits: orjson refuses
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.datetimes(timezones=st.sampled_from([UTC, ZoneInfo("Europe/Paris")]))
    | st.dates()
    | st.times()
    | st.sampled_from(list(PeriodUnit))
    | st.builds(_Point, st.integers(0, 9))
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        | st.dictionaries(st.integers(0, 9), inner, min_size=1, max_size=2)
    ),  # not text: stdlib
    max_leaves=12,
)


@settings(max_examples=400)
@given(_VALUES.filter(lambda value: value is not None))  # None: no text (below)
def test_the_text_reads_back_as_the_stdlib_text_does(value):
    assert json.loads(_json(value)) == json.loads(_stdlib(value))


def test_no_value_is_no_text_and_keys_are_sorted():
    assert _json(None) is None
    written = _json({"b": Decimal("1.10"), "a": datetime(2025, 1, 1, tzinfo=UTC)})
    assert written == '{"a":"2025-01-01 00:00:00+00:00","b":"1.10"}'
    assert json.loads(_json({"d": date(2025, 1, 2), "t": time(9, 30)})) == {
        "d": "2025-01-02",
        "t": "09:30:00",
    }
