"""The scenario loader: the seed files load, and each invalid input is refused with its key
path, its line and a message that says why."""

from __future__ import annotations

import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from prorata.core.calendar import PeriodUnit
from prorata.core.model import Change, Subscribe
from prorata.scenario.loader import ScenarioError, load_scenario, parse_scenario

SCENARIOS = Path(__file__).parents[2] / "shared" / "scenarios"
SEEDS = sorted((SCENARIOS / "seeds").glob("*.yaml"))

BASE = """\
currency: EUR
timezone: Europe/Paris
policy: aircall
catalog:
  products:
    - id: phone
      plans:
        - {id: basic, tier: 1, period: monthly, price: "30.00", per_unit: true}
        - {id: pro, tier: 2, period: monthly, price: "50.00"}
accounts:
  - {id: acme, locale: fr}
events:
  - at: 2024-06-06
    subscribe: {id: s1, account: acme, plan: basic, quantity: 10}
  - at: 2024-07-10
    change: {subscription: s1, quantity: 6}
run_until: 2024-09-01
"""


def edited(old: str, new: str) -> str:
    """BASE with ``old`` (which must occur once) replaced by ``new``."""
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of the first line of ``text`` containing ``fragment``."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


# the seeds -------------------------------------------------------------------------------


def test_seed_directory_is_present() -> None:
    if not SEEDS:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no seed scenarios in {SCENARIOS / 'seeds'}")
        pytest.skip(f"no seed scenarios in {SCENARIOS / 'seeds'}")


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem)
def test_seed_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.events
    assert [e.index for e in scenario.events] == list(range(1, len(scenario.events) + 1))
    assert all(e.at.tzinfo == scenario.timezone for e in scenario.events)
    assert scenario.expect is not None


# a valid file ----------------------------------------------------------------------------


def test_base_scenario_builds_the_core_types() -> None:
    scenario = parse_scenario(BASE, "base.yaml")
    paris = ZoneInfo("Europe/Paris")
    assert scenario.name == "base"
    assert scenario.policy.name == "aircall"
    assert scenario.policy_spec == "aircall"
    basic = scenario.catalog.plan("basic")
    assert (basic.product, basic.price, basic.period, basic.per_unit) == (
        "phone",
        Decimal("30.00"),
        PeriodUnit.MONTHLY,
        True,
    )
    assert scenario.catalog.products["phone"].name.get("fr") == "phone"
    assert scenario.accounts["acme"].locale == "fr"
    first, second = scenario.events
    assert first.at == datetime(2024, 6, 6, tzinfo=paris)
    assert first.line == 13
    assert first.action == Subscribe(id="s1", account="acme", plan="basic", quantity=10)
    assert second.action == Change(subscription="s1", quantity=6)
    assert scenario.run_until == datetime(2024, 9, 1, tzinfo=paris)
    assert scenario.expect is None


def test_plans_are_paid_in_advance_unless_pay_in_advance_is_false() -> None:
    text = edited('price: "50.00"}', 'price: "50.00", pay_in_advance: false}')
    plans = parse_scenario(text, "case.yaml").catalog.plans
    assert (plans["basic"].pay_in_advance, plans["pro"].pay_in_advance) == (True, False)


def test_datetimes_are_local_to_the_zone_unless_they_carry_an_offset() -> None:
    text = edited("at: 2024-07-10", "at: '2024-07-10T09:30:00'")
    text = text.replace("run_until: 2024-09-01", "run_until: 2024-09-01T12:00:00Z")
    scenario = parse_scenario(text)
    paris = ZoneInfo("Europe/Paris")
    assert scenario.events[1].at == datetime(2024, 7, 10, 9, 30, tzinfo=paris)
    assert scenario.run_until == datetime(2024, 9, 1, 14, 0, tzinfo=paris)
    assert scenario.run_until.tzinfo == paris


def test_expect_is_kept_as_plain_data_with_dates_as_text() -> None:
    text = (
        BASE + 'expect:\n  documents:\n    - {type: invoice, date: 2024-06-06, total: "300.00"}\n'
    )
    expect = parse_scenario(text).expect
    assert expect == {"documents": [{"type": "invoice", "date": "2024-06-06", "total": "300.00"}]}
    assert type(expect) is dict
    assert type(expect["documents"]) is list


def test_error_text_names_file_line_and_key() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(edited("EUR", "EUX"), "x.yaml")
    assert str(caught.value).startswith("x.yaml:1: currency: unknown currency 'EUX'")


def test_load_scenario_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(BASE, encoding="utf-8")
    assert load_scenario(good).currency == "EUR"
    bad = tmp_path / "bad.yaml"
    bad.write_text(edited("quantity: 6}", "quantity: 0}"), encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(bad)
    assert caught.value.filename == str(bad)
    assert str(caught.value).startswith(f"{bad}:16: events[1].change.quantity: ")


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(tmp_path / "absent.yaml")
    assert caught.value.line is None
    assert "cannot read the file" in caught.value.message


# invalid inputs --------------------------------------------------------------------------

POLICY_WITH_TYPO = "policy:\n  preset: stripe\n  downgrade: {timming: end_of_term}"
POLICY_WITH_BAD_VALUE = "policy:\n  preset: stripe\n  proration:\n    unit: week"

# (id, text, key, fragment of the line the error is on, fragment of the message)
INVALID = [
    ("unknown-top-level-key", BASE + "colour: blue\n", "colour", "colour:", "unknown key 'colour'"),
    (
        "unknown-key-in-plan",
        edited('price: "50.00"}', 'price: "50.00", colour: red}'),
        "catalog.products[0].plans[1].colour",
        "colour: red",
        "unknown key 'colour' (allowed: id, name, tier",
    ),
    (
        "unknown-plan-in-subscribe",
        edited("plan: basic, quantity: 10", "plan: gold, quantity: 10"),
        "events[0].subscribe.plan",
        "plan: gold",
        "unknown plan 'gold'",
    ),
    (
        "term-shorter-than-the-billing-period",
        edited(
            "plan: basic, quantity: 10}",
            "plan: basic, quantity: 10, term: {period: weekly}}",
        ),
        "events[0].subscribe.term",
        "term: {period: weekly}",
        "a weekly term is shorter than plan basic's monthly billing period: a term lasts at"
        " least one billing period",
    ),
    (
        "unknown-plan-in-change",
        edited("quantity: 6}", "plan: gold}"),
        "events[1].change.plan",
        "plan: gold",
        "unknown plan 'gold'",
    ),
    (
        "bad-date",
        edited("at: 2024-07-10", "at: 2024-07-32"),
        "events[1].at",
        "2024-07-32",
        "'2024-07-32' is not a date",
    ),
    (
        "negative-quantity",
        edited("quantity: 6}", "quantity: -2}"),
        "events[1].change.quantity",
        "quantity: -2",
        "-2 is out of range: expected a whole number >= 1",
    ),
    (
        "zero-quantity",
        edited("quantity: 10}", "quantity: 0}"),
        "events[0].subscribe.quantity",
        "quantity: 0",
        "0 is out of range",
    ),
    (
        "unknown-preset",
        edited("policy: aircall", "policy: aircal"),
        "policy",
        "policy: aircal",
        "unknown preset 'aircal'",
    ),
    (
        "unknown-policy-key",
        edited("policy: aircall", POLICY_WITH_TYPO),
        "policy.downgrade.timming",
        "timming",
        "unknown policy key",
    ),
    (
        "bad-policy-value",
        edited("policy: aircall", POLICY_WITH_BAD_VALUE),
        "policy.proration.unit",
        "unit: week",
        "'week' is not one of day, second, none",
    ),
    (
        "malformed-yaml",
        edited("  - {id: acme, locale: fr}", "  - {id: acme, locale: fr"),
        "",
        "events:",
        "malformed YAML: while parsing a flow mapping",
    ),
    (
        "duplicate-yaml-key",
        edited("timezone: Europe/Paris", "currency: USD"),
        "",
        "currency: USD",
        "found duplicate key 'currency'",
    ),
    (
        "float-price",
        edited('price: "30.00"', "price: 30.0"),
        "catalog.products[0].plans[0].price",
        "price: 30.0",
        "write amounts as strings",
    ),
    (
        "too-many-digits",
        edited('price: "30.00"', 'price: "30.001"'),
        "catalog.products[0].plans[0].price",
        "30.001",
        "has more digits than EUR allows (2)",
    ),
    ("unknown-currency", edited("EUR", "EUX"), "currency", "EUX", "unknown currency 'EUX'"),
    (
        "unknown-timezone",
        edited("Europe/Paris", "Europe/Pariss"),
        "timezone",
        "Pariss",
        "unknown timezone 'Europe/Pariss'",
    ),
    (
        "events-out-of-order",
        edited("at: 2024-07-10", "at: 2024-05-10"),
        "events[1].at",
        "2024-05-10",
        "is before the previous event",
    ),
    (
        "unknown-account",
        edited("account: acme", "account: acne"),
        "events[0].subscribe.account",
        "account: acne",
        "unknown account 'acne' (known: acme)",
    ),
    (
        "duplicate-plan-id",
        edited("{id: pro,", "{id: basic,"),
        "catalog.products[0].plans[1].id",
        'price: "50.00"',
        "duplicate plan id 'basic'",
    ),
    (
        "change-asking-nothing",
        edited("quantity: 6}", "timing: immediate}"),
        "events[1].change",
        "timing: immediate",
        "a change must ask for something",
    ),
    (
        "change-of-unknown-subscription",
        edited("subscription: s1, quantity: 6", "subscription: s2, quantity: 6"),
        "events[1].change.subscription",
        "subscription: s2",
        "unknown subscription 's2': no earlier event subscribes it",
    ),
    (
        "missing-required-key",
        edited('period: monthly, price: "50.00"', "period: monthly"),
        "catalog.products[0].plans[1].price",
        "{id: pro",
        "missing required key 'price'",
    ),
    (
        "bad-proration-override",
        edited("quantity: 6}", "quantity: 6, proration: {unit: week}}"),
        "events[1].change.proration.unit",
        "proration:",
        "'week' is not one of",
    ),
    (
        "bad-plan-policy-override",
        edited("per_unit: true}", "per_unit: true, policy: {preset: stripe}}"),
        "catalog.products[0].plans[0].policy.preset",
        "policy: {preset",
        "unknown policy key",
    ),
    (
        "unsupported-locale",
        edited("locale: fr", "locale: de"),
        "accounts[0].locale",
        "locale: de",
        "its language must be fr or en",
    ),
    (
        "string-boolean",
        edited("per_unit: true", "per_unit: 'yes'"),
        "catalog.products[0].plans[0].per_unit",
        "per_unit:",
        "expected true or false, got 'yes'",
    ),
    (
        "unknown-included-product",
        edited("    - id: phone\n", "    - id: phone\n      includes: [fax]\n"),
        "catalog.products[0].includes[0]",
        "includes: [fax]",
        "unknown product 'fax'",
    ),
    (
        "two-actions-in-one-event",
        edited("quantity: 6}", "quantity: 6}\n    pay: {invoice: INV-0001}"),
        "events[1]",
        "at: 2024-07-10",
        "an event needs exactly one of",
    ),
    (
        "unknown-sandbox-behaviour",
        edited(
            "{id: acme, locale: fr}",
            "{id: acme, locale: fr, payment_method: {type: card, test: maybe}}",
        ),
        "accounts[0].payment_method.test",
        "payment_method:",
        "'maybe' is not one of succeeds",
    ),
    (
        "unknown-payment-method-type",
        edited("{id: acme, locale: fr}", "{id: acme, locale: fr, payment_method: {type: cheque}}"),
        "accounts[0].payment_method.type",
        "payment_method:",
        "'cheque' is not one of card",
    ),
    (
        "unknown-failure-reason",
        edited(
            "quantity: 6}",
            "quantity: 6}\n  - at: 2024-07-11\n    fail: {invoice: INV-0001, reason: sad}",
        ),
        "events[2].fail.reason",
        "fail: {",
        "'sad' is not one of declined",
    ),
    (
        "bad-dunning-schedule",
        edited("policy: aircall", "policy: {preset: aircall, dunning: {retry_days: [5, 3]}}"),
        "policy.dunning.retry_days",
        "policy:",
        "must be whole and increasing",
    ),
    (
        "bad-billing-time",
        edited("quantity: 10}", "quantity: 10, billing_time: monthly}"),
        "events[0].subscribe.billing_time",
        "billing_time: monthly",
        "'monthly' is not one of anniversary, calendar",
    ),
    (
        "calendar-billing-on-another-day",
        edited("quantity: 10}", "quantity: 10, billing_time: calendar, billing_day: 6}"),
        "events[0].subscribe.billing_day",
        "billing_day: 6",
        "6 does not go with billing_time calendar",
    ),
    (
        "bad-policy-billing-time",
        edited("policy: aircall", "policy: {preset: lago, billing_time: yearly}"),
        "policy.billing_time",
        "billing_time: yearly",
        "'yearly' is not one of anniversary, calendar",
    ),
    (
        "pay-in-advance-not-a-flag",
        edited('price: "50.00"}', 'price: "50.00", pay_in_advance: "no"}'),
        "catalog.products[0].plans[1].pay_in_advance",
        "pay_in_advance:",
        "expected true (billed at the start of each period) or false (billed in arrears, at"
        " its end), got 'no'",
    ),
    (
        "pay-in-advance-false-on-a-one-time-plan",
        edited(
            '{id: pro, tier: 2, period: monthly, price: "50.00"}',
            '{id: pro, tier: 2, period: one_time, price: "50.00", pay_in_advance: false}',
        ),
        "catalog.products[0].plans[1].pay_in_advance",
        "pay_in_advance:",
        "a one_time plan has no period to bill in arrears",
    ),
    (
        "run-until-before-last-event",
        edited("run_until: 2024-09-01", "run_until: 2024-07-01"),
        "run_until",
        "run_until:",
        "is before the last event",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "line_fragment", "message"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_input_is_refused(text: str, key: str, line_fragment: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "case.yaml")
    error = caught.value
    assert (error.filename, error.key, error.line) == (
        "case.yaml",
        key,
        line_of(text, line_fragment),
    )
    assert message in error.message
