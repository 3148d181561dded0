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
  with workers always reading the log may never be restarted, and it would grow without
  bound: once a checkpoint finds more than ``limit`` bytes of frames in it, a ``RESTART``
  checkpoint follows at once, which waits for the readers of the moment (at most one
  batch's computing), holding back new writers meanwhile, so that the next commit writes
  the log from its start again. The file keeps its size (about ``limit``) and is
  overwritten in place: truncating it (``TRUNCATE``) held the writers back for the
  file system to free a gigabyte (0.26 s here) and made the next commits allocate it again;
- leaving (``__exit__``) stops the thread and checkpoints what is left (``PASSIVE``);
- on PostgreSQL it does nothing.
"""

from __future__ import annotations

import threading

import structlog
from sqlalchemy import Engine

log = structlog.get_logger(__name__)

LIMIT = 1024 * 2**20  # bytes of write-ahead log before it is started again
EVERY = 0.2  # seconds between checkpoints


class Checkpointer:
    """``with Checkpointer(engine): …``: checkpoints ``engine``'s SQLite database every
    ``every`` seconds in a thread, and starts the log again past ``limit`` bytes."""

    def __init__(self, engine: Engine, *, every: float = EVERY, limit: int = LIMIT) -> None:
        self.engine, self.every, self.limit = engine, every, limit
        self.active = engine.dialect.name == "sqlite" and bool(engine.url.database)
        self.passive = self.emptied = 0  # checkpoints taken: PASSIVE, and RESTART
        self.page_size: int | None = None
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
                frames = self._checkpoint("PASSIVE")
                if frames * self._page_size() > self.limit:
                    self._checkpoint("RESTART")
            except Exception as exc:  # the next round tries again; workers are unaffected
                self.failure = exc
                log.warning("checkpoint_failed", error=f"{type(exc).__name__}: {exc}")

    def _page_size(self) -> int:
        if self.page_size is None:
            with self.engine.connect() as connection:
                self.page_size = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
        return self.page_size

    def _checkpoint(self, mode: str) -> int:
        """One checkpoint; the frames in the log (since it was last started again)."""
        frames = checkpoint(self.engine, mode)
        if mode == "PASSIVE":
            self.passive += 1
        else:
            self.emptied += 1
        return frames


def checkpoint(engine: Engine, mode: str) -> int:
    """One ``PRAGMA wal_checkpoint(mode)`` on ``engine``'s SQLite database (``PASSIVE``,
    ``FULL``, ``RESTART`` or ``TRUNCATE``), outside any transaction: the driver's connection
    is in autocommit (the engine's connect hook). Returns the frames in the log (since the
    log was last started from its beginning; -1 when it is not in WAL mode)."""
    if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
        raise ValueError(f"not a checkpoint mode: {mode!r}")
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f"PRAGMA wal_checkpoint({mode})")
        _busy, frames, _copied = cursor.fetchone()
        cursor.close()
    finally:
        connection.close()
    return frames
