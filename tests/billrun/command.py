"""``prorata bill-run`` as a subprocess (its workers are processes of their own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# ``prorata`` with this interpreter (``python -m prorata.entrypoints.cli`` has no main guard)
PROGRAM = [sys.executable, "-c", "from prorata.entrypoints.cli import main; main()"]


def bill_run(url: str, until: str, *options: str) -> subprocess.CompletedProcess:
    """Run ``prorata bill-run --until UNTIL --database URL OPTIONS``; Rich writes lines of
    up to 1000 columns, so none is wrapped."""
    return subprocess.run(
        [*PROGRAM, "bill-run", "--until", until, "--database", url, *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "1000"},
    )
