"""The pure parts of payments: the dunning schedule, a subscription's status from its
collections, how a refund is spread over charges, and the sandbox gateway's answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prorata.adapters.gateways import (
    GatewayError,
    SandboxGateway,
    charge,
    parse_sandbox_token,
    sandbox_token,
)
from prorata.core.money import Money
from prorata.core.payments import (
    Collection,
    Dunning,
    Payment,
    after_attempt,
    refund_plan,
    subscription_status,
)

T0 = datetime(2024, 2, 5, tzinfo=UTC)
EUR = Money.from_minor


def _collection(**kw) -> Collection:
    return Collection("INV-0002", "a", ("s1",), EUR(4900, "EUR"), T0, **kw)


def test_retries_are_counted_from_the_first_failure_not_the_last_attempt():
    dunning = Dunning((3, 5, 7), "suspend")
    c = after_attempt(_collection(), "declined", T0, dunning)
    assert (c.state, c.attempts, c.next_attempt_at) == ("retrying", 1, T0 + timedelta(days=3))
    late = T0 + timedelta(days=4, hours=6)  # the collector ran a day late
    c = after_attempt(c, "insufficient_funds", late, dunning)
    assert c.next_attempt_at == T0 + timedelta(days=5)  # the schedule did not move
    c = after_attempt(c, "declined", T0 + timedelta(days=5), dunning)
    assert c.next_attempt_at == T0 + timedelta(days=7)
    c = after_attempt(c, "requires_action", T0 + timedelta(days=7), dunning)
    assert (c.state, c.attempts, c.next_attempt_at) == ("exhausted", 4, None)
    assert c.key == "INV-0002:5"


def test_a_late_run_never_schedules_a_retry_in_the_past():
    c = after_attempt(_collection(), "declined", T0, Dunning((1,), "keep"))
    late = after_attempt(
        c, "declined", T0 + timedelta(days=10), Dunning((1, 2), "keep")
    )  # retry 2 would be T0+2d
    assert late.next_attempt_at == T0 + timedelta(days=10)


def test_success_closes_the_collection():
    c = after_attempt(_collection(attempts=2), "succeeded", T0, Dunning())
    assert (c.state, c.next_attempt_at) == ("paid", None)
    with pytest.raises(ValueError):
        after_attempt(_collection(), "lost", T0, Dunning())


@pytest.mark.parametrize(
    ("current", "states", "final", "expected"),
    [
        ("active", [], "suspend", "active"),
        ("active", ["retrying"], "suspend", "past_due"),
        ("past_due", ["retrying", "exhausted"], "suspend", "suspended"),
        ("past_due", ["exhausted"], "cancel", "cancelled"),
        ("past_due", ["exhausted"], "keep", "past_due"),
        ("suspended", ["retrying"], "suspend", "suspended"),  # a retry asked for by hand
        ("suspended", ["paid", "void"], "suspend", "active"),
        ("past_due", ["paid"], "suspend", "active"),
        ("cancelled", ["retrying"], "suspend", "cancelled"),  # ended stays ended
        ("expired", [], "suspend", "expired"),
    ],
)
def test_status_from_collections(current, states, final, expected):
    collections = [_collection(state=s) for s in states]
    assert subscription_status(current, collections, final) == expected


def _charge(ident: int, units: int, day: int, reference: str | None = "ch") -> Payment:
    return Payment(
        ident,
        "charge",
        "a",
        EUR(units, "EUR"),
        T0 + timedelta(days=day),
        "succeeded",
        "card",
        f"INV-{ident}",
        reference,
    )


def test_refunds_take_the_latest_charges_first_and_never_exceed_them():
    charges = [_charge(1, 1000, 0), _charge(2, 3000, 1), _charge(3, 500, 2)]
    earlier = [Payment(9, "refund", "a", EUR(200, "EUR"), T0, "succeeded", refunds=3)]
    plan, left = refund_plan(charges, earlier, EUR(4000, "EUR"))
    assert [(c.id, part.minor) for c, part in plan] == [(3, 300), (2, 3000), (1, 700)]
    assert left.minor == 0
    plan, left = refund_plan(charges, earlier, EUR(9000, "EUR"))
    assert sum(p.minor for _, p in plan) == 4300 and left.minor == 4700


@given(
    st.lists(st.integers(1, 10_000), min_size=0, max_size=5),
    st.integers(0, 60_000),
)
def test_a_refund_plan_returns_exactly_the_amount(units, wanted):
    charges = [_charge(i + 1, u, i) for i, u in enumerate(units)]
    plan, left = refund_plan(charges, [], EUR(wanted, "EUR"))
    assert sum(p.minor for _, p in plan) + left.minor == wanted
    assert all(0 < p.minor <= c.amount.minor for c, p in plan)
    assert left.minor == max(0, wanted - sum(units))


def test_the_sandbox_answers_from_the_token_and_repeats_itself_for_a_key():
    gateway = SandboxGateway()
    amount = EUR(4900, "EUR")
    ok = charge(gateway, sandbox_token("card"), amount, "k1")
    assert ok.succeeded and ok.reference.startswith("ch_")
    assert charge(gateway, sandbox_token("card"), amount, "k1") == ok
    assert charge(SandboxGateway(), sandbox_token("card"), amount, "k1") == ok  # deterministic
    for behaviour in ("declined", "insufficient_funds", "requires_action"):
        answer = charge(gateway, sandbox_token("paypal", behaviour), amount, f"k-{behaviour}")
        assert (answer.outcome, answer.reference) == (behaviour, None)
    refund = gateway.refund(ok.reference, EUR(900, "EUR"), "r1")
    assert refund.succeeded and refund.reference.startswith("re_")
    with pytest.raises(GatewayError):
        gateway.refund(ok.reference, EUR(4001, "EUR"), "r2")  # more than is left


@pytest.mark.parametrize(
    "token",
    [
        "4242424242424242",
        "sandbox:card",
        "sandbox:cheque:succeeds",
        "sandbox:card:maybe",
        "stripe:card:succeeds",
    ],
)
def test_tokens_that_are_not_sandbox_methods_are_refused(token):
    with pytest.raises(GatewayError):
        parse_sandbox_token(token)
