"""Instructions a renewal executes, counted by callgrind: a figure that does not move with
the machine's speed.

This VM's speed drifts by a factor of two within an hour, and two runs of the same bill
run minutes apart differ by 10-15 % on the wall clock: a change worth a few percent cannot
be told from noise that way. ``valgrind --tool=callgrind`` counts the instructions a
process executes, the same for the same program and input whatever else the machine is
doing. This bench generates ``--subscriptions`` N of :mod:`bill_run`'s mix once into a
SQLite file (``--source``, kept between runs so that two versions of the code can be
measured on the same database), then runs, each under callgrind on a fresh copy:

- the bill run, one worker in this process (``run_until_done``, the garbage collector set
  as a bill-run worker sets it), after the imports and the engine;
- the same process stopping before the bill run;

and prints the difference divided by the renewals: the instructions of the renewals alone
(claims, reads, the core, the codec, the writes and commits; imports counted apart). The
last line reads ``instructions_per_renewal=<n> renewals=<n>``. ``VALGRIND`` names another
valgrind binary.

User-space instructions only: the kernel's share (the write-ahead log's writes, page
reads) is not counted, nor waiting. Measure with the wall clock too (``bill_run.py``) but
decide between two versions of the code on this count.

    .venv/bin/python bench/renewal_instructions.py [--subscriptions 4000]
        [--source /tmp/prorata-instructions.db]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bill_run import SEED, UNTIL, populate, settle

from prorata.adapters.database import make_engine, migrate

_COLLECTED = re.compile(r"Collected : (\d+)")


def prepare(source: Path, subscriptions: int) -> None:
    """The generated database at ``source`` (made once; delete it to make it again),
    brought to the code's revision (one kept from an older one: migrations only add)."""
    made = source.exists()
    engine = make_engine(f"sqlite:///{source}")
    migrate(engine)
    if not made:
        populate(engine, subscriptions, min(subscriptions, 20_000), SEED)
        settle(engine)
    engine.dispose()


def child(source: Path, renew: bool) -> None:
    """One measured process: a copy of ``source``, then the bill run (``renew``) or not."""
    from prorata.entrypoints.cli import worker_gc
    from prorata.services.bill_run import new_run_id, run_until_done

    with tempfile.TemporaryDirectory(prefix="prorata-instructions-") as folder:
        copy = Path(folder) / "run.db"
        shutil.copy(source, copy)
        engine = make_engine(f"sqlite:///{copy}")
        worker_gc()
        renewals = 0
        if renew:
            summary = run_until_done(engine, UNTIL, run_id=new_run_id())
            if summary.failures:
                raise SystemExit(f"the bill run failed: {summary.failures}")
            renewals = summary.renewals
        engine.dispose()
    print(f"renewals={renewals}", flush=True)


def counted(source: Path, renew: bool, valgrind: str) -> tuple[int, int]:
    """Instructions of one child process under callgrind, and the renewals it made."""
    with tempfile.TemporaryDirectory(prefix="prorata-callgrind-") as folder:
        done = subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={Path(folder) / 'callgrind.out'}",
                sys.executable,
                __file__,
                "--child",
                "renew" if renew else "imports",
                "--source",
                str(source),
            ],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
        )
    if done.returncode != 0:
        raise SystemExit(f"the measured process failed:\n{done.stdout}\n{done.stderr}")
    instructions = _COLLECTED.search(done.stderr)
    renewals = re.search(r"renewals=(\d+)", done.stdout)
    if instructions is None or renewals is None:
        raise SystemExit(f"no count in callgrind's output:\n{done.stderr[-2000:]}")
    return int(instructions.group(1)), int(renewals.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=4_000)
    parser.add_argument("--source", type=Path, default=None)
    parser.add_argument("--child", choices=("renew", "imports"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscriptions < 1:
        parser.error("--subscriptions must be at least 1")
    if args.subscriptions > 20_000 and args.subscriptions % 20_000:
        parser.error("--subscriptions above 20,000 must be a multiple of it (copies)")
    source = args.source or Path(tempfile.gettempdir()) / (
        f"prorata-instructions-{args.subscriptions}.db"
    )
    if args.child:
        child(source, args.child == "renew")
        return
    valgrind = os.environ.get("VALGRIND") or shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    prepare(source, args.subscriptions)
    whole, renewals = counted(source, True, valgrind)
    before, _ = counted(source, False, valgrind)
    if not renewals:
        raise SystemExit("nothing was due")
    print(f"measured on {source}: {whole:,} instructions with the bill run, {before:,} without")
    per_renewal = (whole - before) // renewals
    print(f"instructions_per_renewal={per_renewal} renewals={renewals}", flush=True)


if __name__ == "__main__":
    main()
