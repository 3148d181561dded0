"""SQLite checkpoints taken by a thread of their own, off the bill-run workers' way.

In WAL mode with ``synchronous=NORMAL`` a commit writes the log and syncs nothing; the
checkpoint that copies the log into the database syncs the log before and the database
after, and by default the connection that commits runs it (every 1,000 pages). In a bill
run those syncs stall the workers: 37 µs of wall time per renewal over 200,000 renewals
with two workers (strace), about a tenth of a renewal. A :class:`Checkpointer` runs beside
workers whose engines were made with ``make_engine(url, autocheckpoint=False)`` and
checkpoints for them, in a thread that waits on the disk while the workers compute.

Invariants:
- durability is as before: the same checkpoints, with the same syncs, only in another
  thread; a commit is durable exactly when it was;
- a checkpoint is ``PASSIVE`` (it never waits for, nor blocks, a reader or a writer), so
  with workers always reading it may never reach the end of the log, and the log would
  grow without bound: once the log is larger than ``limit`` bytes a ``TRUNCATE``
  checkpoint waits for the readers of the moment (at most one batch's computing) and
  empties it, holding back new writers meanwhile;
- leaving (``__exit__``) stops the thread and checkpoints what is left (``PASSIVE``);
- on PostgreSQL it does nothing.
"""

from __future__ import annotations

import os
import threading

import structlog
from sqlalchemy import Engine

log = structlog.get_logger(__name__)

LIMIT = 1024 * 2**20  # bytes of write-ahead log before it is emptied
EVERY = 0.2  # seconds between checkpoints


class Checkpointer:
    """``with Checkpointer(engine): …``: checkpoints ``engine``'s SQLite database every
    ``every`` seconds in a thread, and empties the log past ``limit`` bytes."""

    def __init__(self, engine: Engine, *, every: float = EVERY, limit: int = LIMIT) -> None:
        self.engine, self.every, self.limit = engine, every, limit
        self.active = engine.dialect.name == "sqlite" and bool(engine.url.database)
        self.log_path = f"{engine.url.database}-wal" if self.active else ""
        self.passive = self.emptied = 0  # checkpoints taken, of each kind
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpointer", daemon=True)

    def __enter__(self) -> Checkpointer:
        if self.active:
            self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        if not self.active:
            return
        self._stop.set()
        self._thread.join()
        self._checkpoint("PASSIVE")

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self._checkpoint("TRUNCATE" if self._log_size() > self.limit else "PASSIVE")
            except Exception as exc:  # the next round tries again; workers are unaffected
                self.failure = exc
                log.warning("checkpoint_failed", error=f"{type(exc).__name__}: {exc}")

    def _log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def _checkpoint(self, mode: str) -> None:
        checkpoint(self.engine, mode)
        if mode == "PASSIVE":
            self.passive += 1
        else:
            self.emptied += 1


def checkpoint(engine: Engine, mode: str) -> None:
    """One ``PRAGMA wal_checkpoint(mode)`` on ``engine``'s SQLite database (``PASSIVE``,
    ``FULL``, ``RESTART`` or ``TRUNCATE``), outside any transaction: the driver's connection
    is in autocommit (the engine's connect hook)."""
    if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
        raise ValueError(f"not a checkpoint mode: {mode!r}")
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f"PRAGMA wal_checkpoint({mode})")
        cursor.fetchall()
        cursor.close()
    finally:
        connection.close()
