"""The store's codec: every value the engine keeps survives a round trip, and the fast
encoder (exact types looked up once) writes exactly what the general one writes, so text
stored by any version decodes and re-encodes to the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
