"""Property tests: invariants of money, calendar and whole simulated runs.

Random scenarios are built directly from the core types: one product with 2-4 plans
(tiers, periods, prices with the currency's digits, per unit or not), a preset policy with
random proration/rounding overrides, accounts taxed at 0, 20 or 5.5 %, and a year of random
plan, quantity and period changes, cancellations and approvals.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from prorata.adapters.gateways import BEHAVIOURS, sandbox_token
from prorata.core.calendar import (
    PeriodUnit,
    Schedule,
    add_months,
    calendar_period_start,
    clamp_day,
    is_calendar_boundary,
    local_midnight,
    span_ratio,
)
from prorata.core.catalog import Catalog, LocalText, Plan, Product
from prorata.core.changes import Context, Quote, evaluate
from prorata.core.documents import CreditNote, Invoice, allocated_to, outstanding
from prorata.core.lifecycle import evaluate_cancel
from prorata.core.model import (
    Account,
    Approve,
    Cancel,
    Change,
    Event,
    Fail,
    Pay,
    SetPaymentMethod,
    Subscribe,
    TermSpec,
)
from prorata.core.money import Money, allocate, round_amount
from prorata.core.payments import FINAL_ACTIONS, OUTCOMES
from prorata.core.policy import CHANGE_KINDS, CREDIT_MODES, INVOICE_MODES, build_policy
from prorata.scenario.loader import Scenario, parse_scenario
from prorata.scenario.output import to_data
from prorata.scenario.simulator import Book, Simulation, simulate

DIGITS = {"JPY": 0, "EUR": 2, "KWD": 3}
PAYMENT_CHANGES = ("immediately", "on_payment", "pending_if_incomplete")
FAILURES = tuple(o for o in OUTCOMES if o != "succeeded")
PRESETS = (
    "chetspms",
    "gotoassist",
    "stripe",
    "killbill",
    "lago",
    "chargebee",
    "whmcs",
    "kajoom",
    "aircall",
)
PERIODS = (PeriodUnit.MONTHLY, PeriodUnit.QUARTERLY, PeriodUnit.ANNUAL, PeriodUnit.WEEKLY)
ZONES = ("UTC", "Europe/Paris")
HOURS = (0, 9, 15)  # avoid 02:00-03:00, which does not exist on a DST day in Paris
START = date(2024, 1, 1)

SIM = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAST = settings(max_examples=150, deadline=None)


# strategies ----------------------------------------------------------------------------------

currencies = st.sampled_from(sorted(DIGITS))


def prices(currency: str) -> st.SearchStrategy[Decimal]:
    """A price with exactly the currency's digits (written as a string, like a scenario)."""
    return st.integers(1, 50_000).map(lambda units: Decimal(str(Money.from_minor(units, currency))))


@st.composite
def catalogs(draw, currency: str) -> Catalog:
    """One product with 2-4 plans, each a distinct (tier, period) so siblings exist often."""
    slots = draw(
        st.lists(
            st.tuples(st.integers(1, 2), st.sampled_from(PERIODS)),
            min_size=2,
            max_size=4,
            unique=True,
        )
    )
    plans = {
        f"p{i}": Plan(
            id=f"p{i}",
            product="app",
            name=LocalText.plain(f"Plan {i}"),
            tier=tier,
            period=period,
            price=draw(prices(currency)),
            per_unit=draw(st.booleans()),
        )
        for i, (tier, period) in enumerate(slots)
    }
    return Catalog({"app": Product("app", LocalText.plain("App"))}, plans)


@st.composite
def policy_specs(draw, presets=(None, *PRESETS)) -> dict:
    """A preset (or the defaults) with random proration, rounding and credit overrides."""
    spec: dict = {}
    preset = draw(st.sampled_from(presets))
    if preset is not None:
        spec["preset"] = preset
    proration = {}
    for key, values in (
        ("unit", ("day", "second")),
        ("basis", ("actual", "30/360")),
        ("change_day", ("remaining", "used")),
    ):
        if draw(st.booleans()):
            proration[key] = draw(st.sampled_from(values))
    if proration:
        spec["proration"] = proration
    if draw(st.booleans()):
        spec["rounding"] = draw(st.sampled_from(("half_up", "half_even")))
    for kind in draw(st.lists(st.sampled_from(CHANGE_KINDS), max_size=3, unique=True)):
        spec[kind] = {"credit": draw(st.sampled_from(CREDIT_MODES))}
        if draw(st.booleans()):
            spec[kind]["invoice"] = draw(st.sampled_from(INVOICE_MODES))
    if draw(st.booleans()):
        spec["pending_lines"] = draw(st.sampled_from(("renewal", "any_invoice")))
    if draw(st.booleans()):
        spec["payment"] = {"change": draw(st.sampled_from(PAYMENT_CHANGES))}
    if draw(st.booleans()):
        spec["dunning"] = {
            "retry_days": draw(st.sampled_from(([1], [3, 5, 7], [2, 30]))),
            "final": draw(st.sampled_from(FINAL_ACTIONS)),
        }
    return spec


# a sandbox method of each behaviour, or none (invoices paid on issue)
TOKENS = (None, *(sandbox_token("card", b) for b in BEHAVIOURS))

accounts = st.lists(
    st.builds(
        Account,
        id=st.just(""),
        locale=st.sampled_from(("en", "fr")),
        auto_pay=st.just(True),
        tax_rate=st.sampled_from((Decimal("0"), Decimal("20"), Decimal("5.5"))),
        payment_token=st.sampled_from(TOKENS),
    ),
    min_size=1,
    max_size=2,
).map(lambda accs: {f"a{i}": replace(a, id=f"a{i}") for i, a in enumerate(accs)})


def _instant(zone: ZoneInfo, day: int, hour: int) -> datetime:
    d = START + timedelta(days=day)
    return datetime(d.year, d.month, d.day, hour, tzinfo=zone)


@st.composite
def actions(draw, plan_ids: list[str], subs: list[str], accounts: list[str]):
    sub = draw(st.sampled_from(subs))
    kinds = ("plan", "quantity", "both", "period", "cancel", "approve", "pay", "fail", "method")
    kind = draw(st.sampled_from(kinds))
    if kind in ("pay", "fail"):
        invoice = f"INV-{draw(st.integers(1, 12)):04d}"
        return Pay(invoice) if kind == "pay" else Fail(invoice, draw(st.sampled_from(FAILURES)))
    if kind == "method":
        return SetPaymentMethod(
            draw(st.sampled_from(accounts)), "card", draw(st.sampled_from(TOKENS))
        )
    anchor = draw(st.sampled_from((None, None, "keep", "reset")))
    if kind == "plan":
        return Change(sub, plan=draw(st.sampled_from(plan_ids)), anchor=anchor)
    if kind == "quantity":
        return Change(sub, quantity=draw(st.integers(1, 6)), anchor=anchor)
    if kind == "both":
        plan, quantity = draw(st.sampled_from(plan_ids)), draw(st.integers(1, 6))
        return Change(sub, plan=plan, quantity=quantity, anchor=anchor)
    if kind == "period":
        return Change(sub, period=draw(st.sampled_from(PERIODS)), anchor=anchor)
    if kind == "cancel":
        return Cancel(sub, timing=draw(st.sampled_from((None, "immediate", "end_of_term"))))
    return Approve(request=draw(st.integers(1, 3)))


@st.composite
def scenarios(draw, presets=(None, *PRESETS)) -> Scenario:
    """A random scenario over about a year; every account pays automatically."""
    currency = draw(currencies)
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    catalog = draw(catalogs(currency))
    accs = draw(accounts)
    spec = draw(policy_specs(presets))
    plan_ids = sorted(catalog.plans)
    t0 = _instant(zone, draw(st.integers(0, 30)), draw(st.sampled_from(HOURS)))
    n_subs = draw(st.integers(1, 2))
    subs = [f"s{i}" for i in range(n_subs)]
    events = []
    for ident in subs:
        term = draw(st.sampled_from((None, TermSpec(PeriodUnit.ANNUAL))))
        # None: the policy's (calendar under lago, anniversary elsewhere)
        billing_time = draw(st.sampled_from((None, "anniversary", "calendar")))
        subscribe = Subscribe(
            id=ident,
            account=draw(st.sampled_from(sorted(accs))),
            plan=draw(st.sampled_from(plan_ids)),
            quantity=draw(st.integers(1, 5)),
            billing_day=draw(
                st.sampled_from((None, 1))
                if billing_time == "calendar"
                else st.one_of(st.none(), st.integers(1, 31))
            ),
            term=term,
            billing_time=billing_time,
        )
        events.append((t0, subscribe))
    timed = draw(
        st.lists(
            st.tuples(
                st.integers(0, 365), st.sampled_from(HOURS), actions(plan_ids, subs, sorted(accs))
            ),
            max_size=8,
        )
    )
    for day, hour, action in sorted(timed, key=lambda x: (x[0], x[1])):
        events.append((max(t0, _instant(zone, day, hour)), action))
    return Scenario(
        name="property",
        currency=currency,
        timezone=zone,
        policy=build_policy(spec),
        policy_spec=spec,
        catalog=catalog,
        accounts=accs,
        events=tuple(Event(i + 1, at, action) for i, (at, action) in enumerate(events)),
        run_until=t0 + timedelta(days=400),
        expect=None,
    )


# helpers -------------------------------------------------------------------------------------


def invoices(book: Book) -> list[Invoice]:
    return [d for d in book.documents if isinstance(d, Invoice)]


def credit_notes(book: Book) -> list[CreditNote]:
    return [d for d in book.documents if isinstance(d, CreditNote)]


def all_money(book: Book):
    """Every amount the run recorded, with where it is."""
    for doc in book.documents:
        names = ["subtotal", "tax", "total"]
        if isinstance(doc, Invoice):
            names += ["credit_applied", "credit_added", "amount_due"]
        for name in names:
            yield f"{doc.number}.{name}", getattr(doc, name)
        for i, line in enumerate(doc.lines):
            yield f"{doc.number}.lines[{i}]", line.amount
    for i, entry in enumerate(book.ledger):
        yield f"ledger[{i}]", entry.amount


def describe(scenario: Scenario) -> str:
    return f"policy={scenario.policy_spec} currency={scenario.currency} events={scenario.events}"


# whole runs ----------------------------------------------------------------------------------


@SIM
@given(scenarios())
def test_money_is_conserved_per_account(scenario):
    """Σ invoice totals − Σ credit-note totals − payments + refunds + credit balance
    − what is still owed == 0, with payments that fail, are retried, paid by hand or refunded.

    Derivation, per account. An invoice with total T > 0 is settled by credit and payment:
    T = credit_applied + amount_due; with T <= 0 it adds −T to the credit: T = −credit_added.
    So Σ T = Σ applied + payments − Σ added (every invoice is paid: auto_pay). A credit note
    of total C goes to the account's credit (credited_to "account") or back to the payment
    method (a refund). The credit balance is the ledger's sum:
    Σ C_account + Σ added − Σ applied. Substituting, Σ T − (Σ C_account + Σ C_refund)
    − payments + Σ C_refund + balance = 0: what the customer was billed minus what was
    credited equals what they paid net of refunds, plus what they still hold as credit.
    An adjustment note (Chargebee: credited_to "invoice", allocated to an open invoice) of
    total A settles part of an amount_due instead of a payment: it is in Σ C and lowers
    what is still owed (the invoice's outstanding amount) by A.
    """
    book = simulate(scenario)
    zero = Money.zero(scenario.currency)
    for account in scenario.accounts:
        invs = [d for d in invoices(book) if d.account == account]
        notes = [d for d in credit_notes(book) if d.account == account]
        billed = sum((d.total for d in invs), zero)
        credited = sum((d.total for d in notes), zero)
        moved = [p for p in book.payments(account) if p.succeeded]
        payments = sum((p.amount for p in moved if p.kind == "charge"), zero)
        refunds = sum((p.amount for p in moved if p.kind == "refund"), zero)
        # what an open invoice still asks for: its amount due less its charges and the
        # credit notes allocated to it (Chargebee's adjustments; a void invoice asks nothing)
        paid_on = {
            d.number: [p.amount for p in moved if p.kind == "charge" and p.document == d.number]
            for d in invs
        }
        owed = sum(
            (
                outstanding(d, paid_on[d.number], allocated_to(d.number, notes))
                for d in invs
                if d.status == "open"
            ),
            zero,
        )
        credit = sum((e.amount for e in book.ledger if e.account == account), zero)
        assert billed - credited - payments + refunds + credit - owed == zero, describe(scenario)
        # each paid invoice was paid once, for what the notes allocated to it left (none at
        # all when they settled it); void ones are cancelled by a credit note
        for d in invs:
            charges = [p for p in moved if p.kind == "charge" and p.document == d.number]
            left = outstanding(d, (), allocated_to(d.number, notes))
            if d.status == "paid" and left.is_positive:
                assert [p.amount for p in charges] == [left], d.number
            else:
                assert charges == [], d.number
            if d.status == "void":
                voids = [n for n in notes if n.refers_to == d.number and n.credited_to == "invoice"]
                assert [n.total for n in voids] == [d.total], d.number
        # a refund never exceeds the charge it returns money from
        for charge in (p for p in moved if p.kind == "charge"):
            back = sum((p.amount for p in moved if p.refunds == charge.id), zero)
            assert back <= charge.amount
        data = to_data(scenario, book)
        assert data["accounts"][account]["credit"] == str(credit)


@SIM
@given(scenarios())
def test_lines_sum_to_totals(scenario):
    """Every invoice: Σ lines == subtotal, subtotal + tax == total, and the total is split
    into credit applied and amount due when positive, else fully added to the credit.
    Every credit note: Σ lines == subtotal, subtotal + tax == total, all positive."""
    book = simulate(scenario)
    zero = Money.zero(scenario.currency)
    for doc in book.documents:
        assert sum((line.amount for line in doc.lines), zero) == doc.subtotal, doc.number
        assert doc.subtotal + doc.tax == doc.total, doc.number
        if isinstance(doc, Invoice):
            if doc.total.is_positive:
                assert doc.amount_due == doc.total - doc.credit_applied, doc.number
                assert doc.credit_added == zero
                assert zero <= doc.credit_applied <= doc.total
            else:
                assert doc.amount_due == zero, doc.number
                assert doc.credit_applied == zero, doc.number
                assert doc.credit_added == -doc.total, doc.number
        else:
            assert all(line.amount.is_positive for line in doc.lines), doc.number
            assert doc.total.is_positive, doc.number


@SIM
@given(scenarios())
def test_account_credit_is_never_negative(scenario):
    """Replaying the ledger in order, every account's running credit stays >= 0."""
    book = simulate(scenario)
    running: dict[str, Money] = defaultdict(lambda: Money.zero(scenario.currency))
    for i, entry in enumerate(book.ledger):
        running[entry.account] = running[entry.account] + entry.amount
        assert not running[entry.account].is_negative, (i, entry, describe(scenario))


@SIM
@given(scenarios())
def test_amounts_have_the_currency_digits(scenario):
    """Every recorded amount, and every amount string of the JSON output, has exactly the
    currency's minor digits (JPY 0, EUR 2, KWD 3)."""
    book = simulate(scenario)
    digits = DIGITS[scenario.currency]
    for where, money in all_money(book):
        assert money.currency == scenario.currency, where
        assert money.amount.as_tuple().exponent == -digits, (where, money.amount)
    pattern = re.compile(r"-?\d+" + (rf"\.\d{{{digits}}}" if digits else "") + r"\Z")
    data = to_data(scenario, book)
    for doc in data["documents"]:
        fields = [doc[k] for k in ("subtotal", "tax", "total")]
        fields += [doc[k] for k in ("credit_applied", "credit_added", "amount_due") if k in doc]
        fields += [line["amount"] for line in doc["lines"]]
        for text in fields:
            assert pattern.match(text), (doc["number"], text)
    for account in data["accounts"].values():
        assert pattern.match(account["credit"])


@SIM
@given(scenarios())
def test_document_numbers_are_gapless(scenario):
    """In issue order, invoices are INV-0001, INV-0002, … and credit notes CN-0001, …"""
    book = simulate(scenario)
    for series, docs in (("INV", invoices(book)), ("CN", credit_notes(book))):
        assert [d.number for d in docs] == [f"{series}-{n:04d}" for n in range(1, len(docs) + 1)]
    issued = [d.issued_at for d in book.documents]
    assert issued == sorted(issued)


@SIM
@given(scenarios(), st.data())
def test_quoting_is_deterministic(scenario, data):
    """changes.evaluate (and evaluate_cancel) are pure: the same change on the same state at
    the same instant gives equal quotes, and the state is left as it was."""
    book = simulate(scenario)
    ctx = Context(scenario.catalog, scenario.policy, scenario.accounts)
    plan_ids = sorted(scenario.catalog.plans)
    for sub in book.subscriptions.values():
        before = sub
        if sub.period_start is not None and sub.period_end is not None:
            span = int((sub.period_end - sub.period_start).total_seconds())
            at = sub.period_start + timedelta(seconds=data.draw(st.integers(0, max(span - 1, 0))))
        else:
            at = scenario.run_until
        change = data.draw(actions(plan_ids, [sub.id], sorted(scenario.accounts)))
        if isinstance(change, Approve | Pay | Fail | SetPaymentMethod):
            change = Change(sub.id, quantity=sub.quantity + 1)
        if isinstance(change, Cancel):
            first, second = (evaluate_cancel(ctx, sub, change, at) for _ in range(2))
        else:
            first, second = (evaluate(ctx, sub, change, at) for _ in range(2))
        assert first == second
        assert sub == before
        if isinstance(first, Quote) and first.lines:
            assert first.total == second.total


# a change and its reverse --------------------------------------------------------------------

REVERSIBLE = {
    kind: {"timing": "immediate", "invoice": "now", "credit": "account_credit"}
    for kind in ("upgrade", "downgrade", "quantity_increase", "quantity_decrease")
}


@st.composite
def round_trips(draw, stub_safe: bool = True):
    """A subscription, then at one instant a plan and/or quantity change and its reverse,
    under a policy where both directions are immediate, invoiced now, credited to the
    account (chetspms, or the defaults with overrides), by day or to the second."""
    currency = draw(currencies)
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    period = draw(st.sampled_from(PERIODS))
    tiers = draw(st.lists(st.integers(1, 3), min_size=2, max_size=2, unique=True))
    plans = {
        f"p{i}": Plan(
            f"p{i}", "app", LocalText.plain(f"Plan {i}"), tier, period, draw(prices(currency)), True
        )
        for i, tier in enumerate(tiers)
    }
    catalog = Catalog({"app": Product("app", LocalText.plain("App"))}, plans)
    base = draw(st.sampled_from(("chetspms", "whmcs", "killbill", None)))
    spec: dict = {"proration": {"unit": draw(st.sampled_from(("day", "second")))}}
    if base is None:
        spec.update(REVERSIBLE)
    else:
        spec["preset"] = base
    if draw(st.booleans()):
        spec["proration"]["basis"] = draw(st.sampled_from(("actual", "30/360")))
    if draw(st.booleans()):
        spec["proration"]["change_day"] = draw(st.sampled_from(("remaining", "used")))
    spec["rounding"] = draw(st.sampled_from(("half_up", "half_even")))
    account = Account(
        "a0", tax_rate=draw(st.sampled_from((Decimal(0), Decimal(20), Decimal("5.5"))))
    )
    q0 = draw(st.integers(1, 5))
    q1 = draw(st.integers(1, 6))
    to_other = draw(st.booleans())
    if not to_other and q1 == q0:
        q1 = q0 + 1
    forth = Change("s0", plan="p1" if to_other else None, quantity=q1 if q1 != q0 else None)
    back = Change("s0", plan="p0" if to_other else None, quantity=q0 if q1 != q0 else None)
    t0 = _instant(zone, draw(st.integers(0, 30)), draw(st.sampled_from(HOURS)))
    t = t0 + timedelta(days=draw(st.integers(0, 200)), hours=draw(st.integers(0, 23)))
    t = t.astimezone(zone)
    # Kill Bill credits what was billed: inside a prorated first period that exposes the
    # stub bug (see test_change_at_start_costs_as_subscribing_to_the_new_terms), so its
    # subscriptions start on their billing day here.
    billing_days = (
        st.none() if base == "killbill" and stub_safe else st.one_of(st.none(), st.integers(1, 31))
    )
    subscribe = Subscribe("s0", "a0", "p0", quantity=q0, billing_day=draw(billing_days))
    events = (Event(1, t0, subscribe), Event(2, t, forth), Event(3, t, back))
    return Scenario(
        "round trip", currency, zone, build_policy(spec), spec, catalog,
        {"a0": account}, events, None, None,
    )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(round_trips())
def test_change_then_its_reverse_nets_to_zero(scenario):
    """A change and, at the same instant, its reverse bill nothing overall: the totals of the
    two change invoices add to 0 within one minor unit per line (each line rounds once)."""
    sim = Simulation(scenario)
    issued: dict[int, list] = {}
    for event in scenario.events:
        sim.advance(event.at)
        before = len(sim.book.documents)
        sim.handle(event)
        issued[event.index] = sim.book.documents[before:]
    assert not sim.book.rejected, sim.book.rejected
    docs = issued[2] + issued[3]
    assert all(isinstance(d, Invoice) for d in docs), "account_credit issues no credit note"
    zero = Money.zero(scenario.currency)
    net = sum((d.total for d in docs), zero)
    lines = sum(len(d.lines) for d in docs)
    unit = Money.from_minor(1, scenario.currency)
    assert abs(net).minor <= lines * unit.minor, (net, [d.lines for d in docs])
    sub = sim.book.subscriptions["s0"]
    assert (sub.plan, sub.quantity) == ("p0", scenario.events[0].action.quantity)


# money ---------------------------------------------------------------------------------------


@FAST
@given(
    currencies, st.integers(-(10**7), 10**7), st.lists(st.integers(0, 1000), min_size=1, max_size=8)
)
def test_allocate_never_loses_a_minor_unit(currency, units, weights):
    """allocate: the parts add back to the whole exactly, each is within one minor unit of
    its exact share, and all share the whole's sign."""
    if sum(weights) == 0:
        weights = [*weights[:-1], 1]
    whole = Money.from_minor(units, currency)
    parts = allocate(whole, weights)
    assert len(parts) == len(weights)
    assert sum((p.minor for p in parts), 0) == units
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(units * weight, sum(weights))
        assert abs(part.minor - exact) < 1
        assert part.minor * units >= 0


@FAST
@given(currencies, st.integers(-(10**7), 10**7), st.integers(1, 12))
def test_allocate_equal_weights_differ_by_at_most_one_unit(currency, units, n):
    """With equal weights the parts differ by at most one minor unit."""
    parts = [p.minor for p in allocate(Money.from_minor(units, currency), [1] * n)]
    assert sum(parts) == units
    assert max(parts) - min(parts) <= 1


def reference_round(value: Fraction, rounding: str) -> int:
    """Round a number of minor units to an integer, by integer arithmetic."""
    if rounding == "half_even":
        return round(value)  # Fraction.__round__ rounds half to even
    sign = -1 if value < 0 else 1
    return sign * int(abs(value) + Fraction(1, 2))  # half away from zero


@FAST
@given(
    currencies,
    st.decimals(min_value=-(10**6), max_value=10**6, places=6, allow_nan=False),
    st.sampled_from(("half_up", "half_even")),
)
def test_round_amount_matches_reference(currency, value, rounding):
    """round_amount rounds once to the minor unit as a reference rounding of exact
    fractions does (half_up away from zero, half_even to the even unit)."""
    got = round_amount(value, currency, rounding)
    expected = reference_round(Fraction(value) * 10 ** DIGITS[currency], rounding)
    assert got.minor == expected
    assert got.amount.as_tuple().exponent == -DIGITS[currency]


@FAST
@given(currencies, st.integers(-(10**6), 10**6), st.sampled_from(("half_up", "half_even")))
def test_round_amount_ties(currency, units, rounding):
    """Exact ties (x.5 minor units) go away from zero (half_up) or to the even unit."""
    value = (Decimal(units) + Decimal("0.5")).scaleb(-DIGITS[currency])
    got = round_amount(value, currency, rounding).minor
    if rounding == "half_up":
        assert got == (units + 1 if value > 0 else units)
    else:
        assert got % 2 == 0 and got in (units, units + 1)


# calendar ------------------------------------------------------------------------------------

month_periods = st.sampled_from(
    [p for p in PeriodUnit if p.recurring and p.months]  # monthly … biennial
)


@FAST
@given(
    st.dates(date(2000, 1, 1), date(2040, 12, 31)),
    month_periods,
    st.integers(1, 31),
    st.integers(-30, 60),
    st.sampled_from(ZONES),
)
def test_boundary_never_drifts(start, unit, billing_day, k, zone):
    """boundary(k) is k periods after the anchor's month, on min(billing_day, month length):
    computed from the anchor, never by stepping from the previous boundary."""
    schedule = Schedule.starting(local_midnight(start, ZoneInfo(zone)), unit, billing_day)
    anchor = schedule.anchor.date()
    index = anchor.year * 12 + anchor.month - 1 + k * unit.months
    expected = clamp_day(index // 12, index % 12 + 1, billing_day)
    got = schedule.boundary(k)
    assert got.date() == expected
    assert got.date() == add_months(anchor, k * unit.months, billing_day)
    assert (got.hour, got.minute, got.tzinfo) == (0, 0, schedule.anchor.tzinfo)
    assert schedule.boundary(k) < schedule.boundary(k + 1)
    assert schedule.index_of(got) == k
    assert schedule.period_containing(got) == (got, schedule.boundary(k + 1))


# the months on whose 1st a calendar period starts, written out (not computed) to check
# calendar_period_start against; biennial periods also start in even years only
CALENDAR_MONTHS = {
    PeriodUnit.MONTHLY: tuple(range(1, 13)),
    PeriodUnit.QUARTERLY: (1, 4, 7, 10),
    PeriodUnit.SEMIANNUAL: (1, 7),
    PeriodUnit.ANNUAL: (1,),
    PeriodUnit.BIENNIAL: (1,),
}
recurring_periods = st.sampled_from([p for p in PeriodUnit if p.recurring])


def is_calendar_start(d: date, unit: PeriodUnit) -> bool:
    if unit is PeriodUnit.DAILY:
        return True
    if unit is PeriodUnit.WEEKLY:
        return d.weekday() == 0  # Monday
    even = d.year % 2 == 0 or unit is not PeriodUnit.BIENNIAL
    return d.day == 1 and d.month in CALENDAR_MONTHS[unit] and even


@FAST
@given(
    st.dates(date(2000, 1, 1), date(2040, 12, 31)),
    recurring_periods,
    st.integers(-30, 60),
    st.sampled_from(ZONES),
    st.sampled_from(HOURS),
)
def test_calendar_boundaries_are_calendar_starts_and_tile(start, unit, k, zone, hour):
    """A calendar schedule's boundaries are local midnights on the first day of a calendar
    period (Monday; the 1st of a month, quarter, half year, year); consecutive boundaries
    are consecutive calendar starts (no gap, none skipped); the start lies in the first
    period, which begins at the calendar start on or before it."""
    zone = ZoneInfo(zone)
    begin = local_midnight(start, zone).replace(hour=hour)
    schedule = Schedule.calendar(begin, unit)
    a, b = schedule.boundary(k), schedule.boundary(k + 1)
    assert is_calendar_start(a.date(), unit) and is_calendar_boundary(a.date(), unit)
    assert (a.hour, a.minute, a.tzinfo) == (0, 0, zone)
    assert a < b
    between = [a.date() + timedelta(days=n) for n in range(1, (b.date() - a.date()).days)]
    assert not any(is_calendar_start(d, unit) for d in between)
    assert calendar_period_start(b.date() - timedelta(days=1), unit) == a.date()
    assert schedule.index_of(a) == k and schedule.period_containing(a) == (a, b)
    first = schedule.period_containing(begin)
    assert first[0] == schedule.anchor <= begin < first[1]
    assert first[0].date() == calendar_period_start(start, unit) <= start
    assert Schedule.starting(begin, unit, 1, "calendar") == schedule


LAGO_FIRST_PERIOD = """
currency: EUR
timezone: {zone}
policy: lago
catalog:
  products:
    - id: app
      plans:
        - {{id: p, period: {unit}, price: "{price}"}}
accounts: [{{id: a}}]
events:
  - {{at: {start}, subscribe: {{id: s, account: a, plan: p}}}}
  - {{at: {start}, subscribe: {{id: t, account: a, plan: p, billing_time: anniversary}}}}
run_until: {start}
"""


@settings(max_examples=60, deadline=None)
@given(
    st.dates(date(2020, 1, 1), date(2030, 12, 31)),
    st.sampled_from([p for p in PeriodUnit if p.recurring and p is not PeriodUnit.BIENNIAL]),
    st.decimals(Decimal("0.01"), Decimal("9999.99"), places=2),
    st.sampled_from(ZONES),
)
def test_lago_first_invoice_bills_the_days_to_the_next_calendar_start(start, unit, price, zone):
    """Lago, calendar: the first invoice bills the days from the start to the next calendar
    start at price / days of the calendar period containing the start, rounded once; the
    anniversary subscription beside it is billed in full for one period from its start."""
    text = LAGO_FIRST_PERIOD.format(zone=zone, unit=unit.value, price=price, start=start)
    book = simulate(parse_scenario(text))
    calendar, anniversary = book.documents
    period_start = start
    while not is_calendar_start(period_start, unit):
        period_start -= timedelta(days=1)
    period_end = start + timedelta(days=1)
    while not is_calendar_start(period_end, unit):
        period_end += timedelta(days=1)
    days, period_days = (period_end - start).days, (period_end - period_start).days
    expected = round_amount(price * days / period_days, "EUR")
    assert calendar.total == expected, (days, period_days)
    (line,) = calendar.lines
    assert (line.start.date(), line.end.date()) == (start, period_end)
    assert anniversary.total == Money(price, "EUR")
    sub = book.subscriptions["s"]
    assert (sub.period_start.date(), sub.period_end.date()) == (start, period_end)


def cut_period(start, unit, billing_day, k, offset, hour, zone, unit_of_time):
    """A period of a schedule and an instant inside it (local midnight when by day)."""
    zone = ZoneInfo(zone)
    schedule = Schedule.starting(local_midnight(start, zone), unit, billing_day)
    period = (schedule.boundary(k), schedule.boundary(k + 1))
    days = (period[1].date() - period[0].date()).days
    cut_day = period[0].date() + timedelta(days=offset % (days + 1))
    cut = local_midnight(cut_day, zone)
    if unit_of_time == "second":
        cut = min(cut.replace(hour=hour), period[1])
    return period, cut


period_cuts = {
    "start": st.dates(date(2020, 1, 1), date(2030, 12, 31)),
    "unit": st.sampled_from([p for p in PeriodUnit if p.recurring and p is not PeriodUnit.DAILY]),
    "billing_day": st.integers(1, 31),
    "k": st.integers(0, 40),
    "offset": st.integers(0, 800),
    "hour": st.sampled_from(HOURS),
    "zone": st.sampled_from(ZONES),
}


@FAST
@given(**period_cuts, proration=st.sampled_from([("day", "actual"), ("second", "actual")]))
def test_span_ratio_of_full_and_adjacent_spans(proration, **cut):
    """span_ratio of a full period is 1, and a period cut at any instant into two adjacent
    spans gives ratios that add to 1 (by actual day, or to the second)."""
    period, at = cut_period(**cut, unit_of_time=proration[0])
    assert span_ratio(period, period, *proration) == 1
    first = span_ratio((period[0], at), period, *proration)
    second = span_ratio((at, period[1]), period, *proration)
    assert 0 <= first <= 1
    assert first + second == 1


@FAST
@given(**period_cuts)
@example(  # 30 Jan → 29 Feb 2024, cut on 31 Jan
    start=date(2024, 1, 1),
    unit=PeriodUnit.MONTHLY,
    billing_day=30,
    k=0,
    offset=1,
    hour=0,
    zone="UTC",
)
def test_span_ratio_30_360_adjacent_spans_add_to_one(**cut):
    """Under the 30/360 basis too, a full period is 1 and adjacent spans add to 1."""
    period, at = cut_period(**cut, unit_of_time="day")
    assert span_ratio(period, period, "day", "30/360") == 1
    first = span_ratio((period[0], at), period, "day", "30/360")
    second = span_ratio((at, period[1]), period, "day", "30/360")
    assert first + second == 1, (period, at, first, second)


def at_start(scenario: Scenario) -> tuple[Scenario, Scenario]:
    """From a round trip: (subscribe, then change at the same instant) and (subscribe to the
    new terms directly), by day with the change day on the new terms."""
    subscribe, forth = scenario.events[0].action, scenario.events[1].action
    spec = scenario.policy_spec
    spec = {"preset": spec} if isinstance(spec, str) else dict(spec)
    spec["proration"] = {**spec.get("proration", {}), "change_day": "remaining"}
    t0 = scenario.events[0].at
    changed = replace(
        scenario,
        policy=build_policy(spec),
        policy_spec=spec,
        events=(scenario.events[0], Event(2, t0, forth)),
    )
    direct = replace(
        changed,
        events=(
            Event(
                1,
                t0,
                replace(
                    subscribe,
                    plan=forth.plan or subscribe.plan,
                    quantity=forth.quantity or subscribe.quantity,
                ),
            ),
        ),
    )
    return changed, direct


STUB_EXAMPLE = parse_scenario(
    """
currency: EUR
policy: chetspms
catalog:
  products:
    - id: app
      plans:
        - {id: p0, tier: 1, period: monthly, price: "31.00", per_unit: true}
        - {id: p1, tier: 2, period: monthly, price: "62.00", per_unit: true}
accounts: [{id: a0}]
events:
  - {at: 2024-01-15, subscribe: {id: s0, account: a0, plan: p0, quantity: 1, billing_day: 1}}
  - {at: 2024-01-15, change: {subscription: s0, quantity: 2}}
  - {at: 2024-01-15, change: {subscription: s0, quantity: 1}}
"""
)


@settings(max_examples=100, deadline=None)
@given(round_trips(stub_safe=False))
@example(STUB_EXAMPLE)
def test_change_at_start_costs_as_subscribing_to_the_new_terms(scenario):
    """Subscribing and changing at the same instant bills (net of the credit for the unused
    old terms) what subscribing to the new terms directly bills, within one minor unit per
    line, also when the first period is a prorated stub up to the billing day."""
    changed, direct = at_start(scenario)
    book = simulate(changed)
    assert not book.rejected, book.rejected
    zero = Money.zero(scenario.currency)
    got = sum((d.total for d in invoices(book)), zero) - sum(
        (d.total for d in credit_notes(book)), zero
    )
    expected = sum((d.total for d in invoices(simulate(direct))), zero)
    lines = sum(len(d.lines) for d in book.documents)
    assert abs(got - expected).minor <= lines, (got, expected, describe(changed))
