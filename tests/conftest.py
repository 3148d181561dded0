"""Shared test fixtures: where the scenarios live, and the two databases.

``db_url`` is parametrised over SQLite (a file in the test's temporary folder) and
PostgreSQL at 127.0.0.1:5432, database ``test`` (``PRORATA_TEST_POSTGRES_URL`` overrides).
Each PostgreSQL test gets its own schema, dropped afterwards. When PostgreSQL cannot be
reached the PostgreSQL tests are skipped, except with ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from prorata.adapters.database import database_url, make_engine, migrate

REPO = Path(__file__).resolve().parents[1]
SHARED_SCENARIOS = REPO.parent / "shared" / "scenarios"
OWN_SCENARIOS = REPO / "scenarios"
POSTGRES_URL = os.environ.get(
    "PRORATA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def shared_scenarios_present() -> bool:
    """The shared scenarios must exist in CI; elsewhere their absence skips their tests."""
    if SHARED_SCENARIOS.is_dir():
        return True
    if os.environ.get("CI") == "true":
        pytest.fail(f"{SHARED_SCENARIOS} is missing while CI=true", pytrace=False)
    return False


def _postgres_admin():
    engine = create_engine(database_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable while CI=true: {exc}")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}")
    return engine


@pytest.fixture(scope="session")
def postgres_admin():
    engine = _postgres_admin()
    yield engine
    engine.dispose()


def postgres_schema_url(schema: str) -> str:
    url = make_url(database_url(POSTGRES_URL))
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def migrated_database(kind: str, request, folder: Path):
    """Yield the URL of a migrated, empty database of ``kind`` (sqlite: a file in
    ``folder``; postgresql: a new schema, dropped afterwards)."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'prorata.db'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url
        return
    admin = request.getfixturevalue("postgres_admin")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = postgres_schema_url(schema)
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A migrated, empty database per test: its URL."""
    yield from migrated_database(request.param, request, tmp_path)


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()
