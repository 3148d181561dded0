"""The audit log and the outbox: rows written in the same transaction as the change.

Invariants: both are append-only; an audit row names the actor, the account acted for when
staff act on a customer's behalf, the subject and its state before and after; an outbox
row is an event for webhooks and mail, delivered after commit by whoever reads the outbox.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, insert

from prorata.adapters import schema as t

# ``json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)``'s reading of a value,
# written by orjson (compact, about ten times faster); what orjson refuses (keys that are not
# text, integers beyond 64 bits) is written by the stdlib's encoder. Both give the same data
# to ``json.loads``: datetimes and dataclasses go to ``str`` as in the stdlib, not orjson's
# own forms.
_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError
        return _ENCODER.encode(value)


def audit(
    connection: Connection,
    tenant_id: int,
    *,
    at: datetime,
    actor_user_id: int | None,
    actor_role: str,
    action: str,
    subject: str,
    before: Any = None,
    after: Any = None,
    on_behalf_of: int | None = None,
    request_id: str | None = None,
) -> None:
    connection.execute(
        insert(t.audit_log).values(
            tenant_id=tenant_id,
            at=at,
            actor_user_id=actor_user_id,
            actor_role=actor_role,
            on_behalf_of=on_behalf_of,
            action=action,
            subject=subject,
            before=_json(before),
            after=_json(after),
            request_id=request_id,
        )
    )


_INSERT_EVENT = insert(t.outbox)


def emit(connection: Connection, tenant_id: int, topic: str, payload: Any, at: datetime) -> None:
    connection.execute(
        _INSERT_EVENT,
        {"tenant_id": tenant_id, "topic": topic, "payload": _json(payload), "created_at": at},
    )
