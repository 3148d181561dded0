"""``replaced`` returns what ``dataclasses.replace`` returns, for every value a scenario
makes, and refuses what it refuses."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from prorata.core.calendar import PeriodUnit, Schedule
from prorata.core.money import Money
from prorata.core.values import replaced
from prorata.scenario.loader import load_scenario
from prorata.scenario.simulator import simulate
from tests.conftest import OWN_SCENARIOS, SHARED_SCENARIOS, shared_scenarios_present


def _values():
    """The values of the first shared scenario (the project's own where the shared ones are
    absent, outside CI)."""
    folder = SHARED_SCENARIOS if shared_scenarios_present() else OWN_SCENARIOS
    path = sorted(folder.rglob("*.yaml"), key=str)[0]
    book = simulate(load_scenario(path))
    for sub in book.subscriptions.values():
        yield sub
        yield from sub.segments
    yield from book.documents


@pytest.mark.parametrize("field_index", [0, 1, -1])
def test_a_copy_with_a_field_changed_is_what_dataclasses_replace_makes(field_index):
    for value in _values():
        name = dataclasses.fields(value)[field_index].name
        other = getattr(value, name)
        copy = replaced(value, **{name: other})
        assert copy == dataclasses.replace(value, **{name: other}) == value
        assert copy is not value and type(copy) is type(value)
        changed = replaced(value, **{name: "changed"})
        assert getattr(changed, name) == "changed" and getattr(value, name) == other
        assert changed == dataclasses.replace(value, **{name: "changed"})


def test_names_that_are_not_fields_are_refused_and_checks_still_run():
    sub = next(iter(_values()))
    with pytest.raises(TypeError):
        replaced(sub, colour="red")
    with pytest.raises(dataclasses.FrozenInstanceError):
        replaced(sub, versions=1).versions = 2
    # classes with __post_init__ go through their checks
    with pytest.raises(ValueError, match="more digits"):
        replaced(Money(Decimal("1.00"), "EUR"), amount=Decimal("1.001"))
    schedule = Schedule(datetime(2024, 1, 1, tzinfo=UTC), PeriodUnit.MONTHLY, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        replaced(schedule, anchor=datetime(2024, 1, 1))


def test_quick_init_makes_what_the_dataclass_init_makes():
    for value in _values():
        cls = type(value)
        args = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        made = cls(**args)
        assert made == value and made.__dict__ == value.__dict__
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.__setattr__(dataclasses.fields(value)[0].name, None)


def test_quick_init_keeps_defaults_and_refuses_what_it_would_change():
    from prorata.core.documents import Line
    from prorata.core.values import quick_init

    line = Line("recurring", "Pro × 1", "s1", "pro", 1, Money(Decimal("1.00"), "EUR"))
    assert (line.start, line.fraction, line.explanation) == (None, None, "")
    with pytest.raises(TypeError):
        Line("recurring")
    with pytest.raises(TypeError):
        quick_init(Money)  # __post_init__

    @dataclasses.dataclass(frozen=True)
    class Listed:
        items: list = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError):
        quick_init(Listed)
