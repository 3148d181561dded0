"""The bill-run bench's copies (``bench/replicate.py``): a copy of the generated tenant is
the same company under other keys and numbers, so it renews to the same amounts."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from prorata.adapters import schema as t
from prorata.adapters.database import make_engine
from prorata.services.bill_run import due_count, new_run_id, run_until_done

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bill_run as bench

BASE = 40


def _bill(url: str):
    engine = make_engine(url)
    try:
        summary = run_until_done(engine, bench.UNTIL, run_id=new_run_id(), batch=25)
        left = due_count(engine, bench.UNTIL)
        with engine.connect() as connection:
            numbers = connection.execute(select(t.documents.c.number)).scalars().all()
            keys = connection.execute(select(t.subscriptions.c.key)).scalars().all()
            accounts = connection.execute(select(t.accounts.c.key)).scalars().all()
            lines = connection.execute(select(func.count()).select_from(t.document_lines))
            lines = lines.scalar_one()
            collections = connection.execute(select(func.count()).select_from(t.collections))
            lines = (lines, collections.scalar_one())
    finally:
        engine.dispose()
    return summary, left, numbers, keys, accounts, lines


@pytest.fixture
def two_databases(request, tmp_path):
    """Two migrated databases of the same kind: one generated, one generated and copied."""
    from tests.conftest import migrated_database

    kind = request.param
    first = migrated_database(kind, request, tmp_path / "one")
    second = migrated_database(kind, request, tmp_path / "copies")
    yield next(first), next(second)
    for made in (first, second):
        next(made, None)


@pytest.mark.parametrize("two_databases", ["sqlite", "postgresql"], indirect=True)
def test_copies_renew_as_the_generated_subscriptions_do(two_databases):
    alone_url, copied_url = two_databases
    for url, n in ((alone_url, BASE), (copied_url, 3 * BASE)):
        engine = make_engine(url)
        counts = bench.populate(engine, n, BASE, bench.SEED)
        engine.dispose()
        assert counts["subscriptions"] == n
    alone, left, numbers, _, accounts, lines = _bill(alone_url)
    copied, left_copied, numbers_c, keys_c, accounts_c, lines_c = _bill(copied_url)

    assert not alone.failures and not copied.failures
    assert left == left_copied == 0
    assert alone.renewals == BASE
    assert copied.renewals == 3 * BASE
    assert copied.invoices == 3 * alone.invoices
    assert copied.totals == {cur: 3 * minor for cur, minor in alone.totals.items()}
    assert lines_c == (3 * lines[0], 3 * lines[1])  # document lines, collections
    assert lines[1] > 0
    # other keys and numbers: every one distinct, each copy's the base's shifted
    assert len(set(numbers_c)) == len(numbers_c) == 3 * len(numbers)
    assert len(set(keys_c)) == len(keys_c) == 3 * BASE
    assert set(keys_c) == {f"s{i}" for i in range(3 * BASE)}
    assert len(set(accounts_c)) == len(accounts_c) == 3 * len(accounts)
    assert Counter(n.split("-")[0] for n in numbers_c) == Counter(
        {s: 3 * c for s, c in Counter(n.split("-")[0] for n in numbers).items()}
    )
