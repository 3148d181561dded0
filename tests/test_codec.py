"""The store's codec: every value the engine keeps survives a round trip, and the fast
encoder (exact types looked up once) writes exactly what the general one writes, so text
stored by any version decodes and re-encodes to the same bytes."""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prorata.adapters import codec
from prorata.scenario.loader import load_scenario
from prorata.scenario.simulator import simulate
from tests.conftest import OWN_SCENARIOS, SHARED_SCENARIOS

SCENARIOS = sorted([*SHARED_SCENARIOS.rglob("*.yaml"), *OWN_SCENARIOS.rglob("*.yaml")], key=str)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: Path(p).stem)
def test_every_state_and_document_round_trips_byte_for_byte(path):
    book = simulate(load_scenario(path))
    values = [*book.subscriptions.values(), *book.documents, *book.ledger]
    assert values
    for value in values:
        text = codec.encode(value)
        assert codec.decode(text) == value
        assert codec.encode(codec.decode(text)) == text
        assert json.loads(text) == json.loads(json.dumps(codec.to_plain(value)))


def test_the_fast_encoder_writes_what_the_general_one_writes(monkeypatch):
    book = simulate(load_scenario(SCENARIOS[0]))
    values = [*book.subscriptions.values(), *book.documents]
    fast = [codec.encode(value) for value in values]
    with monkeypatch.context() as patch:
        patch.setattr(codec, "to_plain", codec._to_plain_slow)  # the general path, all the way
        general = [codec.encode(value) for value in values]
    assert fast == general


def test_the_direct_decoder_builds_what_the_constructor_builds():
    """States are filled in field by field when the text has every field; the
    same text through ``cls(**fields)`` (the path for anything else) gives equal values of
    the same types all the way down."""
    book = simulate(load_scenario(SCENARIOS[0]))
    values = [*book.subscriptions.values(), *book.documents, *book.ledger]

    def checked(data):
        if isinstance(data, list):
            return [checked(v) for v in data]
        if not isinstance(data, dict):
            return data
        if "$" in data:
            cls = codec._TYPES[data["$"]]
            return cls(**{k: checked(v) for k, v in data.items() if k != "$"})
        if "$tuple" in data:
            return tuple(checked(v) for v in data["$tuple"])
        if "$set" in data or "$map" in data:
            raise AssertionError("not in these states")
        if len(data) == 1 and next(iter(data)).startswith("$"):
            return codec.from_plain(data)  # a leaf: amount, instant, number, date
        return {k: checked(v) for k, v in data.items()}

    for value in values:
        plain = json.loads(codec.encode(value))
        direct = codec.decode(codec.encode(value))
        assert direct == checked(plain) == value
        assert _types(direct) == _types(value)


def _types(value):
    if hasattr(value, "__dataclass_fields__"):
        return (type(value), tuple(_types(getattr(value, f)) for f in value.__dataclass_fields__))
    if isinstance(value, tuple | list | frozenset):
        return (type(value), tuple(_types(v) for v in value))
    return type(value)


def test_text_stored_before_a_field_existed_takes_its_default_and_strangers_are_refused():
    book = simulate(load_scenario(SCENARIOS[0]))
    sub = next(iter(book.subscriptions.values()))
    plain = json.loads(codec.encode(sub))
    del plain["awaiting"], plain["versions"]  # fields added after the first stored states
    assert codec.decode(json.dumps(plain)) == replace(sub, awaiting=None, versions=0)
    del plain["accrued_from"]  # plans paid in arrears came later still
    assert codec.decode(json.dumps(plain)) == replace(sub, awaiting=None, versions=0)
    plain["surprise"] = 1
    with pytest.raises(codec.CodecError, match="surprise"):
        codec.decode(json.dumps(plain))
    with pytest.raises(codec.CodecError, match="unknown stored type"):
        codec.decode('{"$":"os.system"}')
    with pytest.raises(codec.CodecError, match="stored as text"):
        codec.decode('{"$m":[1.5,"EUR"]}')
    with pytest.raises(codec.CodecError, match="fraction"):
        codec.decode('{"$f":[1.5,2]}')


def test_a_plan_stored_before_plans_could_be_paid_in_arrears_is_paid_in_advance():
    path = OWN_SCENARIOS / "presets" / "lago-arrears-upgrade-doc.yaml"
    plan = load_scenario(path).catalog.plans["a100"]
    plain = json.loads(codec.encode(plan))
    assert plain["pay_in_advance"] is False
    del plain["pay_in_advance"]
    assert codec.decode(json.dumps(plain)) == replace(plan, pay_in_advance=True)


def test_an_accruing_subscription_round_trips_with_where_its_use_started():
    path = OWN_SCENARIOS / "presets" / "lago-arrears-upgrade-doc.yaml"
    sub = simulate(load_scenario(path)).subscriptions["s1"]
    assert sub.accrued_from is not None
    assert codec.decode(codec.encode(sub)) == sub


def test_integers_beyond_64_bits_and_every_control_character_round_trip():
    value = {"ratio": Fraction(2**70 + 1, 3), "big": -(2**80), "text": "".join(map(chr, range(32)))}
    text = codec.encode(value)
    assert text == json.dumps(codec.to_plain(value), separators=(",", ":"), ensure_ascii=False)
    assert codec.decode(text) == value
    assert codec.encode({"é": "€\u2028"}) == '{"é":"€\u2028"}'


def test_an_instant_is_written_as_its_own_text_whatever_text_it_was_read_from():
    """Encoding reuses the text of an instant it has met (decoded or encoded): only text
    that is the instant's own (canonical) is reused, and a new instant equal to a known one
    is written from itself."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    canonical = codec.decode('{"$t":["2024-02-20T10:48:03",0,"Europe/Paris"]}')
    assert codec.encode(canonical) == '{"$t":["2024-02-20T10:48:03",0,"Europe/Paris"]}'
    padded = codec.decode('{"$t":["2024-02-20T10:48:04.000000",0,"Europe/Paris"]}')
    assert codec.encode(padded) == '{"$t":["2024-02-20T10:48:04",0,"Europe/Paris"]}'
    fresh = datetime(2024, 2, 20, 9, 48, 3, tzinfo=ZoneInfo("UTC"))  # equal to canonical
    assert fresh == canonical
    assert codec.encode(fresh) == '{"$t":["2024-02-20T09:48:03",0,"UTC"]}'
    # the second ambiguous hour of the autumn change keeps its fold
    second = datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris"))
    text = codec.encode(second)
    assert text == '{"$t":["2024-10-27T02:30:00",1,"Europe/Paris"]}'
    assert codec.encode(codec.decode(text)) == text
    assert codec.decode(text).fold == 1


_ODD_PLAIN = [None, 7, True, "text", {"$d": "1.5"}, {"$tuple": []}, {"$m": ["2.00", "EUR"]}]


def test_the_field_by_field_codecs_give_the_general_codecs_answer_for_any_field_value():
    """Each dataclass's own encoder and decoder (``codec_fields``) expect the kinds its
    annotations give; a field holding any other kind of value (None where none is
    annotated, a number where text is, a tagged value where a dataclass is) is written and
    read as the general codec writes and reads it."""
    book = simulate(load_scenario(SCENARIOS[0]))
    samples = {}
    for value in [*book.subscriptions.values(), *book.documents, *book.ledger]:
        stack = [json.loads(codec.encode(value))]
        while stack:  # every stored dataclass of these values, one of each type
            data = stack.pop()
            if isinstance(data, dict):
                if "$" in data:
                    samples.setdefault(data["$"], data)
                stack.extend(data.values())
            elif isinstance(data, list):
                stack.extend(data)
    assert {"Subscription", "Segment", "Item", "Schedule", "Invoice", "Line"} <= set(samples)
    checked = 0
    for tag, data in samples.items():
        cls = codec._TYPES[tag]
        for name in data.keys() - {"$"}:
            for odd in _ODD_PLAIN:
                plain = {**data, name: odd}
                fields = {k: codec.from_plain(v) for k, v in plain.items() if k != "$"}
                expected = object.__new__(cls)
                expected.__dict__.update(fields)  # the general reading, no __post_init__
                try:
                    decoded = codec._DECODERS[tag](plain)
                except (TypeError, ValueError, AttributeError):
                    continue  # refused by __post_init__, as cls(**fields) refuses it
                assert decoded.__dict__ == expected.__dict__, (tag, name, odd)
                assert _types(decoded) == _types(expected), (tag, name, odd)
                written = codec._ENCODERS[cls](expected)
                assert written == codec._to_plain_slow(expected), (tag, name, odd)
                checked += 1
    assert checked > 5 * sum(len(data) for data in samples.values())  # few refused


@settings(max_examples=300)
@given(st.datetimes(timezones=st.timezones(), allow_imaginary=False))
def test_any_aware_instant_round_trips_with_its_fold_and_zone(value):
    text = codec.encode(value)
    assert text == json.dumps(codec._to_plain_slow(value), separators=(",", ":"))
    for cache in (codec._INSTANTS_SEEN, codec._INSTANT_TEXTS):
        cache.clear()  # read as new text, not from what encoding remembered
    decoded = codec.decode(text)
    assert (decoded, decoded.fold) == (value, value.fold)
    assert decoded.replace(tzinfo=None) == value.replace(tzinfo=None)  # the same wall time
    assert codec._zone(decoded.tzinfo) == codec._zone(value.tzinfo)  # ZoneInfo("UTC") is UTC
    assert codec.encode(decoded) == text
