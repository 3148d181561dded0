"""A bill run to be killed: the worker of ``test_sigkill.py``.

Run as ``python -m tests.billrun.kill_worker URL JOURNAL UNTIL`` from the repository root.
Importing prorata takes far longer than the time between two kills, so this process is a
fork server (as ``tests/store/crash_worker.py``): it imports once, then obeys lines on its
standard input and answers on its standard output:

- ``go RUN BATCH``: fork a worker; answer ``pid PID``. The worker writes ``ready`` to the
  same output once its engine exists, then runs
  :func:`~prorata.services.bill_run.run_until_done` up to UNTIL with batches of BATCH
  subscriptions and exits 0 when nothing is left to do (3 if a subscription failed or it
  raised: see stderr);
- ``reap``: wait for that worker; answer ``status WAITSTATUS`` (the raw ``os.waitpid``
  status);
- end of input: exit.

The worker appends JSON lines to JOURNAL, each with one ``os.write`` on an ``O_APPEND``
descriptor: ``backend`` (the server process of each new PostgreSQL connection: the test
waits for it to end after a kill, since a COMMIT sent before the kill may still complete),
``batch`` after each committed batch (subscriptions, renewals, invoices) and ``done``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from datetime import datetime

from sqlalchemy import event, text

from prorata.adapters.database import make_engine
from prorata.services.bill_run import run_until_done
from tests import fork_server

FAILED = 3


class Journal:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self.fd, b"\n")  # a line cut short by a kill ends here

    def log(self, **entry) -> None:
        os.write(self.fd, (json.dumps(entry, sort_keys=True) + "\n").encode())


def work(engine, journal_path: str, until: datetime, run: int, batch: int) -> int:
    journal = Journal(journal_path)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        if engine.dialect.name == "postgresql":
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT pg_backend_pid()")
            journal.log(e="backend", run=run, pid=cursor.fetchone()[0])
            cursor.close()

    def progress(summary) -> None:
        journal.log(
            e="batch",
            run=run,
            subscriptions=summary.subscriptions,
            renewals=summary.renewals,
            invoices=summary.invoices,
        )

    os.write(1, b"ready\n")  # to the test, through the fork server's standard output
    total = run_until_done(engine, until, run_id=f"kill-{run}", batch=batch, progress=progress)
    journal.log(e="done", run=run, failures=total.failures)
    return FAILED if total.failures else 0


def child(engine, journal_path: str, until: datetime, run: int, batch: int) -> None:
    try:
        engine.dispose(close=False)  # connections of its own
        status = work(engine, journal_path, until, run, batch)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(FAILED)
    os._exit(status)


def serve(url: str, journal_path: str, until: datetime) -> None:
    engine = make_engine(url)
    with engine.connect() as connection:  # import the driver, initialise the dialect
        connection.execute(text("SELECT 1"))
        connection.rollback()
    engine.dispose()
    fork_server.serve_forks(
        lambda args: child(engine, journal_path, until, int(args[0]), int(args[1]))
    )


def main(argv: list[str]) -> None:
    url, journal_path, until = argv
    serve(url, journal_path, datetime.fromisoformat(until))


if __name__ == "__main__":
    main(sys.argv[1:])
