"""A batch's rows converted before the write lock is taken (``Recorder.prepare``) are
written as they stand when the batch is written: a row kept, or dropped, after the
preparation is neither lost nor written twice, and number placeholders are replaced by
the numbers taken at the write."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select

from prorata.adapters import schema as t
from prorata.adapters.batch_reading import Batch
from prorata.adapters.renewal_batch import Recorder

AT = datetime(2024, 3, 1, 12, tzinfo=UTC)
EVENT = insert(t.outbox)


def _tenant(connection) -> int:
    return connection.execute(
        insert(t.tenants)
        .values(slug="prep", name="Prep", currency="EUR", timezone="UTC", created_at=AT)
        .returning(t.tenants.c.id)
    ).scalar_one()


def _event(tenant: int, payload: str) -> dict:
    return {"tenant_id": tenant, "topic": "invoice.issued", "payload": payload, "created_at": AT}


def _payloads(connection) -> list[str]:
    return list(connection.execute(select(t.outbox.c.payload).order_by(t.outbox.c.id)).scalars())


def test_a_row_kept_after_the_preparation_is_written_with_the_rest(engine):
    with engine.begin() as connection:
        tenant = _tenant(connection)
        recorder = Recorder(connection, Batch({}, {}))
        first = recorder.placeholder(tenant, "INV")
        recorder.execute(EVENT, _event(tenant, f'{{"number": "{first}"}}'))
        recorder.prepare()
        second = recorder.placeholder(tenant, "INV")
        recorder.execute(EVENT, _event(tenant, f'{{"number": "{second}"}}'))
        numbered = recorder.write(connection)
        assert _payloads(connection) == ['{"number": "INV-0001"}', '{"number": "INV-0002"}']
        assert numbered(second) == "INV-0002"


def test_a_row_dropped_after_the_preparation_is_not_written(engine):
    with engine.begin() as connection:
        tenant = _tenant(connection)
        recorder = Recorder(connection, Batch({}, {}))
        recorder.execute(EVENT, _event(tenant, "kept"))
        mark = recorder.mark()
        recorder.execute(EVENT, _event(tenant, "dropped"))
        recorder.prepare()
        recorder.discard(mark)
        recorder.write(connection)
        assert _payloads(connection) == ["kept"]
        # the recorder starts afresh: a second write writes only what came since
        recorder.execute(EVENT, _event(tenant, "next"))
        recorder.prepare()
        recorder.write(connection)
        assert _payloads(connection) == ["kept", "next"]
