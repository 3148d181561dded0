"""``bill-run --dry-run`` keeps nothing and shows what the bill run then issues; the summary
line; a subscription whose renewal raises is reported while the rest of its batch commits.

Two tenants share the database, one billing in EUR and one in USD (``world.plan``), so the
summary line has a total per currency.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from prorata.adapters import schema as t
from prorata.adapters import store
from prorata.adapters.codec import CodecError
from prorata.adapters.database import make_engine, migrate
from prorata.adapters.store import StoreBook, load_config
from prorata.core.documents import Invoice
from prorata.services.bill_run import (
    Summary,
    dry_run,
    due_count,
    new_run_id,
    run_batch,
    run_until_done,
)
from prorata.services.views import document_view
from tests.billrun import checks, world
from tests.billrun.command import PROGRAM, REPO, bill_run

UNTIL = datetime(2024, 3, 1, 12, tzinfo=world.ZONE)


def table_counts(engine) -> dict:
    """Rows of every table, and every number series' counter."""
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="DEFERRED")
        counts = {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in t.metadata.sorted_tables
        }
        counts["series"] = sorted(tuple(row) for row in connection.execute(select(t.number_series)))
        connection.rollback()
    return counts


def new_documents(engine, tenant: int, after: int) -> list[dict]:
    """The views of the tenant's documents with a row id above ``after``, in issue order."""
    with engine.connect() as connection:
        book = StoreBook(connection, load_config(connection, tenant))
        views = [document_view(doc) for doc in book.documents(t.documents.c.id > after)]
        connection.rollback()
    return views


def last_document_id(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.max(t.documents.c.id))).scalar_one()


def renewal_totals(*books) -> dict[str, int]:
    totals: Counter = Counter()
    for book in books:
        numbers = {number for number in book.renewals.values() if number}
        for doc in book.documents:
            if doc.number in numbers:
                totals[doc.currency] += doc.total.minor
    return dict(totals)


def summary_line(verb: str, subscriptions: int, renewals: int, invoices: int, totals, failures):
    money = ", ".join(f"{Decimal(m).scaleb(-2)} {c}" for c, m in sorted(totals.items()))
    return (
        f"{verb} {subscriptions} subscriptions ({renewals} renewals), {invoices} invoices"
        + (f": {money}" if money else "")
        + f"; {failures} failures"
    )


def test_dry_run_keeps_nothing_and_shows_what_the_bill_run_issues(db_url, engine):
    plans = {"EUR": world.plan(160, 11), "USD": world.plan(100, 12, currency="USD")}
    tenants = {currency: world.record(engine, plan) for currency, plan in plans.items()}
    books = {currency: world.expected(plan, UNTIL) for currency, plan in plans.items()}
    due = due_count(engine, UNTIL)
    renewals = sum(len(book.renewals) for book in books.values())
    invoices = sum(1 for b in books.values() for n in b.renewals.values() if n is not None)
    totals = renewal_totals(*books.values())
    assert set(totals) == {"EUR", "USD"}
    before = table_counts(engine)
    after = last_document_id(engine)

    preview = dry_run(engine, UNTIL, batch=50)
    assert table_counts(engine) == before
    assert (preview.subscriptions, preview.renewals, preview.invoices) == (due, renewals, invoices)
    assert preview.totals == totals
    assert preview.failures == {}
    assert len(preview.documents) == invoices  # renewals issue invoices only

    shown = bill_run(db_url, UNTIL.isoformat(), "--dry-run")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lines = shown.stdout.splitlines()
    documents = [line for line in lines if line.startswith(("invoice ", "credit_note "))]
    assert len(documents) == len(preview.documents)
    for line, doc in zip(documents, preview.documents, strict=True):
        head = (
            f"{doc['type']} {doc['account']} {doc['issued_at']} {doc['total']} {doc['currency']}:"
        )
        assert line.startswith(head), (line, head)
        for item in doc["lines"]:
            assert f"{item['description']} {item['amount']}" in line, (line, item)
    expected_line = summary_line("would renew", due, renewals, invoices, totals, 0)
    assert lines[-1] == expected_line, shown.stdout[-2000:]
    assert table_counts(engine) == before  # the command kept nothing either

    run = bill_run(db_url, UNTIL.isoformat(), "--batch", "64")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == summary_line(
        "renewed", due, renewals, invoices, totals, 0
    )
    # what the dry run showed is what was issued, numbers included, tenant by tenant
    for currency, tenant in tenants.items():
        issued = new_documents(engine, tenant, after)
        assert issued == [doc for doc in preview.documents if doc["currency"] == currency]
        checks.assert_same_as_book(checks.read_store(engine, tenant), books[currency])
        checks.check_invariants(engine, tenant)
    assert due_count(engine, UNTIL) == 0
    empty = bill_run(db_url, UNTIL.isoformat(), "--dry-run")
    assert empty.stdout.splitlines() == [summary_line("would renew", 0, 0, 0, {}, 0)]


def corrupt(engine, tenant: int, key: str, state: str | None = None) -> str:
    """Replace the stored state of ``key``'s current terms (unreadable by default); the
    state it had."""
    sub, terms = t.subscriptions.c, t.subscription_terms.c
    with engine.begin() as connection:
        row = connection.execute(
            select(sub.id, sub.version).where(sub.tenant_id == tenant, sub.key == key)
        ).one()
        where = (terms.subscription_id == row.id) & (terms.version == row.version)
        before = connection.execute(select(terms.state).where(where)).scalar_one()
        connection.execute(update(t.subscription_terms).where(where).values(state=state or "{"))
    return before


def versions(engine, tenant: int) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(
            connection.execute(
                select(t.subscriptions.c.key, t.subscriptions.c.version).where(
                    t.subscriptions.c.tenant_id == tenant
                )
            ).all()
        )


def assert_same_but_numbers(stored: checks.Stored, book) -> None:
    assert checks.document_multiset(stored.documents) == checks.document_multiset(book.documents)
    assert {k: checks.unnumbered_state(s) for k, s in stored.subscriptions.items()} == {
        k: checks.unnumbered_state(s) for k, s in book.subscriptions.items()
    }
    assert set(stored.renewals) == set(book.renewals)


def test_a_failing_renewal_is_reported_and_the_rest_of_its_batch_commits(db_url, engine):
    plan = world.plan(200, 21, accounts=200)
    tenant = world.record(engine, plan)
    book = world.expected(plan, UNTIL)
    order = list(world.claim_order(world.replay(plan), UNTIL))
    victim = order[len(order) // 2]  # in the middle of the one batch
    others = {key: n for key, n in Counter(k for k, _ in book.renewals).items() if key != victim}
    own = sum(1 for (key, _) in book.renewals if key == victim)
    invoices = sum(1 for (key, _), n in book.renewals.items() if n and key != victim)
    totals = {"EUR": renewal_totals(book)["EUR"]}
    for (key, _), number in book.renewals.items():
        if key == victim and number:
            totals["EUR"] -= next(d for d in book.documents if d.number == number).total.minor
    state = corrupt(engine, tenant, victim)
    versions_before = versions(engine, tenant)

    run = bill_run(db_url, UNTIL.isoformat(), "--batch", "1000")
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    summary = summary_line("renewed", len(order) - 1, sum(others.values()), invoices, totals, 1)
    assert summary in lines, run.stdout[-2000:]
    failed = [line for line in lines if line.strip().startswith("failed ")]
    assert len(failed) == 1 and failed[0].strip().startswith(f"failed {victim}: CodecError"), failed
    # the rest of the batch committed; the failed subscription is untouched and still due
    after = versions(engine, tenant)
    for key, version in after.items():
        assert version == versions_before[key] + (others.get(key, 0)), key
    assert due_count(engine, UNTIL) == 1
    with engine.connect() as connection:
        renewed = Counter(
            connection.execute(
                select(t.subscriptions.c.key)
                .join(t.renewals, t.renewals.c.subscription_id == t.subscriptions.c.id)
                .where(t.subscriptions.c.tenant_id == tenant)
            ).scalars()
        )
    assert renewed == Counter(others)

    # the next bill run reports it again, and renews it once it can be read
    again = bill_run(db_url, UNTIL.isoformat())
    assert again.returncode == 1
    assert summary_line("renewed", 0, 0, 0, {}, 1) in again.stdout.splitlines()
    corrupt(engine, tenant, victim, state)
    checks.check_invariants(engine, tenant)
    last = run_until_done(engine, UNTIL, run_id=new_run_id())
    assert (last.subscriptions, last.renewals, last.failures) == (1, own, {})
    stored = checks.read_store(engine, tenant)
    assert_same_but_numbers(stored, book)
    checks.check_invariants(engine, tenant)


def test_a_renewal_failing_after_its_invoice_leaves_no_trace(db_url, engine, monkeypatch):
    """The failure comes after the renewal numbered and recorded its invoice and moved the
    subscription (at its renewal key): the batch drops what it kept for it, renewed alone
    under a savepoint it fails again and the savepoint takes all of it back, the next
    renewal of the batch takes the same number, and no event is published for it."""
    plan = world.plan(120, 31, accounts=120)
    tenant = world.record(engine, plan)
    book = world.expected(plan, UNTIL)
    order = list(world.claim_order(world.replay(plan), UNTIL))
    invoiced = {key for (key, _), number in book.renewals.items() if number}
    victim = next(key for key in order[len(order) // 2 :] if key in invoiced)
    before = versions(engine, tenant)
    with engine.connect() as connection:
        lines_before = connection.execute(
            select(func.count()).where(t.document_lines.c.subscription_key == victim)
        ).scalar_one()

    original = StoreBook.renewed

    def renewed(self, sub_id, due_at, document):
        if sub_id == victim:
            assert document is not None  # after the invoice was numbered and recorded
            raise RuntimeError("renewal key refused")
        return original(self, sub_id, due_at, document)

    monkeypatch.setattr(StoreBook, "renewed", renewed)
    summary = run_batch(engine, UNTIL, run_id=new_run_id(), batch=1000)
    assert summary.failures == {victim: "RuntimeError: renewal key refused"}
    assert summary.subscriptions == len(order) - 1
    assert run_batch(engine, UNTIL, run_id=new_run_id(), batch=1000, skip=set()).failures
    monkeypatch.undo()

    checks.check_invariants(engine, tenant)  # gapless: the victim's number was reused
    assert versions(engine, tenant)[victim] == before[victim]
    with engine.connect() as connection:
        assert (
            connection.execute(
                select(func.count()).where(t.document_lines.c.subscription_key == victim)
            ).scalar_one()
            == lines_before
        )
        payloads = connection.execute(
            select(t.outbox.c.payload).where(t.outbox.c.tenant_id == tenant)
        ).scalars()
        assert not [p for p in payloads if f'"{victim}"' in p]
    last = run_until_done(engine, UNTIL, run_id=new_run_id())
    assert (last.subscriptions, last.failures) == (1, {})
    stored = checks.read_store(engine, tenant)
    assert_same_but_numbers(stored, book)
    checks.check_invariants(engine, tenant)
    issued = [doc for doc in stored.documents if isinstance(doc, Invoice)]
    assert issued[-1].lines[0].subscription == victim  # renewed last: the last number


def break_catalog(engine, tenant: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(t.catalog_versions)
            .where(t.catalog_versions.c.tenant_id == tenant)
            .values(policy="{")
        )


def test_a_tenant_that_cannot_be_loaded_fails_alone(db_url, engine, monkeypatch):
    """Two tenants due at once, the first one's catalog unreadable: the broken tenant's
    subscriptions are reported as failures, the other tenant is renewed."""
    broken = world.record(engine, world.plan(20, 41, accounts=20))
    healthy_plan = world.plan(20, 42, accounts=20, currency="USD")
    healthy = world.record(engine, healthy_plan)
    break_catalog(engine, broken)
    monkeypatch.setattr(store, "_VERSIONS", {})  # as in a new process: nothing decoded yet
    due = due_count(engine, UNTIL)
    try:
        outcome = run_until_done(engine, UNTIL, run_id=new_run_id(), batch=1000)
    except CodecError as exc:
        outcome = exc
    renewed = checks.read_store(engine, healthy).renewals
    assert set(renewed) == set(world.expected(healthy_plan, UNTIL).renewals), (
        f"the healthy tenant was not renewed; the bill run gave {outcome!r}"
    )
    assert isinstance(outcome, Summary), outcome
    assert len(outcome.failures) + outcome.subscriptions == due


def test_cli_reports_a_worker_that_stopped_with_an_error(tmp_path):
    """A tenant whose catalog cannot be read: the command does not hang; it ends with
    status 1 and names each subscription that failed and why."""
    url = f"sqlite:///{tmp_path / 'hang.db'}"
    engine = make_engine(url)
    migrate(engine)
    break_catalog(engine, world.record(engine, world.plan(10, 43)))
    engine.dispose()
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            [*PROGRAM, "bill-run", "--until", UNTIL.isoformat(), "--database", url],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    pytest.fail("the bill run neither failed nor ended")
                time.sleep(0.05)
            hung = False
            try:
                out, _ = proc.communicate(timeout=3)  # the worker is dead: time to notice
            except subprocess.TimeoutExpired:
                hung = True
        finally:
            if proc.poll() is None:
                proc.kill()
                out, _ = proc.communicate()
    assert not hung, "bill-run still waits after its workers ended"
    assert proc.returncode == 1
    assert "failed" in out and "tenant configuration: CodecError" in out
