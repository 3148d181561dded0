"""Scenario files: YAML in, a validated :class:`Scenario` out.

The format is the contract in ``shared/spec/scenarios.md``. Every refusal is a
:class:`ScenarioError` that names the file, the 1-based line, the dotted key path and why
the value is refused.

Invariants of a loaded :class:`Scenario`:
- plan and product ids are unique; every reference (``includes``, a subscribed plan, an
  account, a subscription changed after it was subscribed) resolves;
- amounts are exact ``Decimal`` values with no more digits than the currency allows;
- event times are aware datetimes in the scenario's zone, in non-decreasing order, and
  ``run_until`` (when given) is not before the last event;
- every policy mapping (scenario, product, plan, change proration) passed the policy schema.

This module reads the top-level mapping and turns any refusal into a :class:`ScenarioError`;
the checks live in :mod:`~prorata.scenario.fields`, the section readers in
:mod:`~prorata.scenario.sections` and :mod:`~prorata.scenario.events`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from prorata.core.catalog import Catalog
from prorata.core.model import Account, Event
from prorata.core.policy import Policy, build_policy
from prorata.scenario import yamlpos
from prorata.scenario.events import EventReader
from prorata.scenario.fields import (
    At,
    Invalid,
    Map,
    as_currency,
    as_instant,
    as_text,
    as_zone,
    describe,
    plain_data,
)
from prorata.scenario.sections import CatalogReader, read_accounts, scenario_policy
from prorata.scenario.yamlpos import PosDict

_TOP_KEYS = (
    "name",
    "currency",
    "timezone",
    "policy",
    "catalog",
    "accounts",
    "events",
    "run_until",
    "expect",
)


class ScenarioError(Exception):
    """An invalid scenario file.

    ``key`` is the dotted path of the offending key, list items by 0-based index as in
    Python (``events[1].change.quantity`` is in the second event); it is empty for a YAML
    syntax error. ``line`` is 1-based, or ``None`` when unknown. ``str(err)`` is
    ``"{filename}:{line}: {key}: {message}"``, without the line or key part when absent.
    """

    def __init__(self, filename: str, line: int | None, key: str, message: str) -> None:
        super().__init__(filename, line, key, message)
        self.filename = filename
        self.line = line
        self.key = key
        self.message = message

    def __str__(self) -> str:
        where = self.filename if self.line is None else f"{self.filename}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


@dataclass(frozen=True)
class Scenario:
    """A validated scenario; ``policy_spec`` and ``expect`` are plain data (dates as text)."""

    name: str
    currency: str
    timezone: ZoneInfo
    policy: Policy
    policy_spec: Any
    catalog: Catalog
    accounts: dict[str, Account]
    events: tuple[Event, ...]
    run_until: datetime | None
    expect: dict | None


def load_scenario(path: str | Path) -> Scenario:
    """The scenario in the file at ``path`` (UTF-8)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), None, "", f"cannot read the file: {exc}") from None
    return parse_scenario(text, str(path))


def parse_scenario(text: str, filename: str = "<scenario>") -> Scenario:
    """The scenario written in ``text``; ``filename`` only names it in errors."""
    try:
        data = yamlpos.load(text)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, filename) from None
    try:
        return _scenario(data, filename)
    except Invalid as exc:
        raise ScenarioError(filename, exc.at.line, exc.at.path, exc.message) from None


def _yaml_error(exc: yaml.MarkedYAMLError, filename: str) -> ScenarioError:
    mark = exc.problem_mark or exc.context_mark
    problem = ": ".join(part for part in (exc.context, exc.problem) if part)
    line = mark.line + 1 if mark else None
    return ScenarioError(filename, line, "", f"malformed YAML: {problem}")


# the file ----------------------------------------------------------------------------------


def _scenario(data: Any, filename: str) -> Scenario:
    top = Map(data, At("", 1), _TOP_KEYS, required=("currency", "catalog", "accounts", "events"))
    currency = top.get("currency", as_currency)
    zone = top.get("timezone", as_zone, default=ZoneInfo("UTC"))
    policy, spec = top.get("policy", scenario_policy, default=(build_policy(None), None))
    catalog = CatalogReader(currency).read(top.data["catalog"], top.place("catalog"))
    accounts = read_accounts(top.data["accounts"], top.place("accounts"))
    events = EventReader(catalog, accounts, zone).read(top.data["events"], top.place("events"))
    run_until = top.get("run_until", as_instant, zone)
    if run_until is not None and events and run_until < events[-1].at:
        raise Invalid(
            top.place("run_until"),
            f"{run_until.isoformat()} is before the last event ({events[-1].at.isoformat()})",
        )
    return Scenario(
        name=top.get("name", as_text, default=Path(filename).stem),
        currency=currency,
        timezone=zone,
        policy=policy,
        policy_spec=spec,
        catalog=catalog,
        accounts=accounts,
        events=events,
        run_until=run_until,
        expect=top.get("expect", _expect),
    )


def _expect(value: Any, at: At) -> dict:
    if not isinstance(value, PosDict):
        raise Invalid(at, f"expected a mapping, got {describe(value)}")
    return plain_data(value)
