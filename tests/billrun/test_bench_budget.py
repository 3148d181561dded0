"""``bench/renewal_budget.py`` on a few subscriptions: it runs, the renewals over the
in-memory book issue what the bill run issues (else it exits 1), and its last line adds up."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_budget_bench_measures_the_same_renewals_and_adds_up():
    done = subprocess.run(
        [sys.executable, "renewal_budget.py", "--subscriptions", "60", "--tries", "1"],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "the same" in done.stdout and "invoices and totals" in done.stdout
    last = done.stdout.strip().splitlines()[-1]
    figures = dict(re.findall(r"(\w+)=(\d+)", last))
    assert set(figures) == {
        "bill_run_us",
        "core_us",
        "codec_us",
        "rows_us",
        "parts_us",
        "budget_sqlite_us",
        "budget_postgresql_us",
    }, last
    core, codec, rows = (int(figures[k]) for k in ("core_us", "codec_us", "rows_us"))
    assert min(core, codec, rows) > 0
    assert abs(int(figures["parts_us"]) - (core + codec + rows)) <= 2  # each rounded alone
    assert int(figures["bill_run_us"]) > core  # the bill run does the core's work and more
    assert (figures["budget_sqlite_us"], figures["budget_postgresql_us"]) == ("240", "360")
