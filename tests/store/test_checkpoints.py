"""The checkpointer beside writers that leave checkpoints to it (the bill run's workers)."""

from __future__ import annotations

import os
import time

from sqlalchemy import func, select

from prorata.adapters import schema as t
from prorata.adapters.checkpoints import Checkpointer, checkpoint
from prorata.adapters.database import make_engine, migrate


def _log_size(path) -> int:
    wal = f"{path}-wal"
    return os.path.getsize(wal) if os.path.exists(wal) else 0


def _write(engine, rows: int) -> None:
    """``rows`` commits of one row of about half a page each."""
    for _ in range(rows):
        with engine.begin() as connection:
            connection.execute(
                t.outbox.insert().values(
                    tenant_id=1, topic="test", payload="x" * 2000, created_at=t.now_utc()
                )
            )


def _tenant(engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            t.tenants.insert().values(
                id=1, slug="t", name="t", currency="EUR", timezone="UTC", created_at=t.now_utc()
            )
        )


def test_workers_without_autocheckpoint_leave_the_log_to_the_checkpointer(tmp_path):
    path = tmp_path / "c.db"
    url = f"sqlite:///{path}"
    made = []  # every engine of the test, disposed at its end

    def engine(**settings):
        made.append(make_engine(url, **settings))
        return made[-1]

    try:
        _check_the_log_is_left_to_the_checkpointer(path, engine)
    finally:
        for each in made:
            each.dispose()


def _check_the_log_is_left_to_the_checkpointer(path, engine) -> None:
    migrate(engine())
    writer = engine(autocheckpoint=False)
    for each, expected in ((writer, 0), (engine(), 1000)):
        with each.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == expected
    _tenant(writer)
    _write(writer, 1500)  # past SQLite's own threshold (1,000 pages): nothing checkpointed
    grown = _log_size(path)
    assert grown > 1500 * 2000
    with Checkpointer(engine(), every=0.01, limit=100_000) as checkpointer:
        # a reader holding a snapshot all along: PASSIVE checkpoints cannot start the log
        # again, the RESTART past the limit waits for it and does
        with engine().connect() as held:
            held.execution_options(sqlite_begin="DEFERRED")
            with held.begin():
                held.execute(select(func.count()).select_from(t.outbox)).scalar_one()
                time.sleep(0.3)  # checkpoints come and go meanwhile
        _write(writer, 50)
    assert checkpointer.failure is None
    assert checkpointer.passive >= 1 and checkpointer.emptied >= 1
    assert _log_size(path) <= grown  # overwritten in place, not truncated
    # the 50 commits after the restart wrote the log from its start
    assert 0 < checkpoint(engine(), "PASSIVE") < 500
    with writer.connect() as connection:  # every row committed is there
        assert connection.execute(select(func.count()).select_from(t.outbox)).scalar_one() == 1550


def test_the_checkpointer_does_nothing_on_postgresql(engine):
    checkpointer = Checkpointer(engine)
    with checkpointer:
        pass
    assert (checkpointer.passive, checkpointer.emptied) == (
        (0, 0) if engine.dialect.name == "postgresql" else (1, 0)
    )
