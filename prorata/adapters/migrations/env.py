"""Alembic environment: migrates the connection it is given, or the configured URL."""

from __future__ import annotations

from alembic import context

from prorata.adapters.schema import metadata

config = context.config


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from prorata.adapters.database import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url"), pool=False)
    with engine.begin() as conn:
        _run(conn)
