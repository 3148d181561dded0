"""``bench/renewal_instructions.py``: its measured process renews the generated database,
and its count is the difference of the two processes' counts divided by the renewals (a
stand-in for valgrind, which would take minutes, reports a count of its own)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"

# runs the measured command (after valgrind's own options) and reports a count that
# depends on which process it ran: 5,000,000 with the bill run, 1,000,000 without
FAKE_VALGRIND = """#!/bin/sh
while [ "${1#--}" != "$1" ]; do shift; done
"$@" || exit $?
case "$*" in
  *"--child renew"*) echo "==1== Collected : 5000000" >&2 ;;
  *) echo "==1== Collected : 1000000" >&2 ;;
esac
"""


def test_the_instruction_bench_counts_the_renewals_apart_from_the_imports(tmp_path):
    fake = tmp_path / "valgrind"
    fake.write_text(FAKE_VALGRIND)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    source = tmp_path / "source.db"
    done = subprocess.run(
        [sys.executable, "renewal_instructions.py", "--subscriptions", "40", "--source", source],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "VALGRIND": str(fake)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    figures = dict(re.findall(r"(\w+)=(\d+)", last))
    assert figures == {"instructions_per_renewal": str(4_000_000 // 40), "renewals": "40"}, last
    assert source.exists()  # kept, so that two versions of the code count on the same data
