"""The report of a profiled bill run (``bench/bill_run.py --profile``): cProfile's top
functions by cumulative and by internal time, the internal time summed per area of the
code (SQLAlchemy, the driver, the codec, the core, the batch path's own code) and the
cumulative time of a few entry points."""

from __future__ import annotations

import cProfile
import io
import pstats


def _area(path: str, name: str) -> str:
    if "sqlite3" in name or "psycopg" in path or "psycopg" in name or "socket" in name:
        return "database driver and server (sqlite3 / psycopg calls, waits)"
    if "/sqlalchemy/sql/" in path:
        return "SQLAlchemy sql/: statement building, cache keys, compiling, params"
    if "/sqlalchemy/" in path:
        return "SQLAlchemy engine/ and rest: execution, results, rows"
    if path.endswith("prorata/adapters/codec.py") or "/json/" in path or "_json" in name:
        return "codec (prorata.adapters.codec and json)"
    if path.endswith(
        (
            "prorata/adapters/renewal_batch.py",
            "prorata/adapters/batch_reading.py",
            "prorata/adapters/batch_writing.py",
        )
    ):
        return "the batch path (prorata.adapters.renewal_batch, batch_reading, batch_writing)"
    if "/prorata/core/" in path:
        return "prorata.core (own code)"
    if "/prorata/" in path:
        return "prorata services and adapters (own code)"
    return "stdlib and other (datetime, zoneinfo, decimal, dataclasses, … called by all)"


def areas(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Internal time summed per area of the code."""
    totals: dict[str, float] = {}
    for (path, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        area = _area(path, name)
        totals[area] = totals.get(area, 0.0) + tottime
    return sorted(totals.items(), key=lambda item: -item[1])


ENTRY_POINTS = (
    ("prorata/adapters/codec.py", "encode"),
    ("prorata/adapters/codec.py", "decode"),
    ("prorata/core/lifecycle.py", "advance"),
    ("prorata/core/documents.py", "issue_invoice"),
    ("prorata/services/bill_run.py", "_claim"),
    ("prorata/adapters/batch_reading.py", "read_batch"),
    ("prorata/adapters/renewal_batch.py", "write"),
    ("prorata/adapters/batch_writing.py", "prepare_rows"),
    ("prorata/adapters/batch_writing.py", "write_prepared"),
    ("prorata/services/bill_run.py", "_renew_one"),
    ("prorata/services/recording.py", "publish_outcome"),
    ("sqlalchemy/engine/base.py", "execute"),
    ("sqlalchemy/sql/elements.py", "_compile_w_cache"),
    ("sqlalchemy/engine/default.py", "do_execute"),
    ("sqlalchemy/engine/default.py", "do_executemany"),
)


def entry_points(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Cumulative time of a few functions (recursion counted once by cProfile)."""
    found = []
    for suffix, function in ENTRY_POINTS:
        cumulative = sum(
            ct
            for (path, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items()
            if path.endswith(suffix) and name == function
        )
        found.append((f"{suffix}:{function}", cumulative))
    return found


def print_report(profiler: cProfile.Profile) -> None:
    """Print the report of ``profiler``'s run."""
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(25)
        text_ = out.getvalue()
        print(f"\n-- top 25 by {order} --\n{text_[text_.find('   ncalls') :]}")
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    print(f"-- internal time by area (profiled total {total:.2f} s) --")
    for area, seconds in areas(stats):
        print(f"{100 * seconds / total:5.1f} %  {seconds:7.2f} s  {area}")
    print("-- cumulative time of entry points --")
    for where, seconds in entry_points(stats):
        print(f"{100 * seconds / total:5.1f} %  {seconds:7.2f} s  {where}")
    print(flush=True)
