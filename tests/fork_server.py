"""Fork servers for the SIGKILL tests of checkout (``tests/store/crash_worker.py``) and of
the bill run (``tests/billrun/kill_worker.py``): a worker module run as a subprocess forks a
worker on ``go …`` (answering ``pid <n>``; the worker says ``ready`` once it is set up) and
reaps it on ``reap`` (answering ``status <raw wait status>``), one line per answer.

:func:`serve_forks` is the worker module's side, :class:`ForkServer` the test's;
:func:`wait_for_backends` waits for a killed worker's PostgreSQL server processes."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlalchemy import select as sql_select

from prorata.adapters.database import make_engine

REPO = Path(__file__).resolve().parents[1]
ANSWER_TIMEOUT = 120  # seconds for one answer of the fork server


class ForkServer:
    """``python -m <module> <args>`` in the repository, its errors in ``stderr``."""

    def __init__(self, module: str, args: list[str], stderr: Path) -> None:
        self.stderr_path = stderr
        self._stderr = stderr.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
        )
        self.pid: int | None = None  # the worker running

    def errors(self) -> str:
        """The end of what the fork server and its workers wrote to stderr."""
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def ask(self, command: str | None) -> list[str]:
        """Send ``command`` (if any) and read a line of answer, split into words."""
        if command is not None:
            self.proc.stdin.write(f"{command}\n".encode())
            self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], ANSWER_TIMEOUT)
        answer = self.proc.stdout.readline().decode() if ready else ""
        if not answer.endswith("\n"):
            pytest.fail(f"the fork server did not answer {command!r}:\n{self.errors()}")
        return answer.split()

    def fork(self, command: str) -> list[list[str]]:
        """Send ``go …`` and read its two answers; the worker's pid is kept in ``pid``."""
        answers = [self.ask(command), self.ask(None)]
        pids = [int(answer[1]) for answer in answers if answer[0] == "pid"]
        assert len(pids) == 1, (answers, self.errors())
        self.pid = pids[0]
        return answers

    def close(self) -> None:
        """Stop the worker (if any) and the fork server, which exits at end of input."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            self.proc.stdout.close()
            self._stderr.close()


def serve_forks(child: Callable[[list[str]], object]) -> None:
    """The worker module's loop: ``go <args>`` forks ``child(args)`` (which must end its
    process), ``reap`` waits for it; answers are written in one ``write`` each, since the
    child writes to the same pipe."""
    pid = None
    for line in sys.stdin:
        command, *args = line.split()
        if command == "go":
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                child(args)
                os._exit(70)  # pragma: no cover - a child ends its process itself
            os.write(1, f"pid {pid}\n".encode())
        elif command == "reap":
            _, status = os.waitpid(pid, 0)
            os.write(1, f"status {status}\n".encode())
            pid = None
        else:
            raise SystemExit(f"unknown command {line!r}")


def wait_for_backends(url: str, pids: list[int]) -> None:
    """Wait until the PostgreSQL server processes ``pids`` of a killed worker have ended: a
    worker killed after sending COMMIT may still see its transaction commit, since the
    server finishes what it was sent. The crash is over when they are gone."""
    if not pids:
        return
    engine = make_engine(url, pool=False)
    try:
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            with engine.connect() as connection:
                alive = connection.execute(
                    sql_select(func.count())
                    .select_from(text("pg_stat_activity"))
                    .where(text("pid = ANY(:pids)").bindparams(pids=pids))
                ).scalar_one()
            if not alive:
                return
            assert time.monotonic() < deadline, f"server processes {pids} outlive their worker"
            time.sleep(0.005)
    finally:
        engine.dispose()
