"""Webhook endpoints of a tenant: create, list, read, update, rotate the secret, delete, and
the delivery log (deliveries are made by :mod:`prorata.adapters.webhook_delivery`).

Invariants:
- only the tenant's staff and API tokens manage endpoints (:class:`Forbidden` for anyone
  else); another tenant's endpoint reads exactly like one that does not exist
  (:class:`NotFound`);
- an endpoint's ``url`` is an absolute http(s) URL with a host; its ``topics`` are exact
  topic names, or ``["*"]`` alone for every topic; topics are matched when an event is
  fanned out, so a change applies to events not yet fanned out;
- the signing secret is returned only by :func:`create_endpoint` and :func:`rotate_secret`
  and never written to the audit log; after a rotation the previous secret still signs
  (alongside the new one) until ``at + overlap_seconds``, and only one previous secret is
  kept: rotating again drops the older one;
- deleting deactivates: the endpoint and its delivery log stay readable; an inactive
  endpoint gets no new deliveries and its pending ones wait (reactivating resumes them);
- every change writes one audit row with subject ``webhook_endpoint:<id>``; a call that
  changes nothing writes none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, insert, select, update

from prorata.adapters import schema as t
from prorata.core import signing
from prorata.services import access
from prorata.services.access import Principal
from prorata.services.errors import InvalidRequest, NotFound
from prorata.services.recording import audit_action
from prorata.services.transaction import Work, run

ALL_TOPICS = "*"
MAX_URL = 2000  # webhook_endpoints.url
MAX_TOPIC = 64  # outbox.topic
MAX_TOPICS_TEXT = 1000  # webhook_endpoints.topics
MAX_OVERLAP = 30 * 86400
MAX_DELIVERIES = 500
MAX_ID = 2**63 - 1  # ids beyond a 64-bit integer cannot exist (nor be bound on SQLite)
_ACTION = "webhooks"  # prorata.services.messages.ACTIONS


# validation ------------------------------------------------------------------------------


def _invalid(code: str, field: str, value: Any, why: str) -> InvalidRequest:
    return InvalidRequest("invalid_value", code=code, field=field, value=value, why=why)


def validate_url(url: Any) -> str:
    """``url`` if it is an absolute http or https URL with a host, else ``invalid_url``."""
    if not isinstance(url, str):
        raise _invalid("invalid_url", "url", url, "expected a URL as text")
    if not url:
        raise _invalid("invalid_url", "url", url, "it is empty")
    if len(url) > MAX_URL:
        raise _invalid("invalid_url", "url", url, f"it is longer than {MAX_URL} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise _invalid("invalid_url", "url", url, "it contains spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        shown = parts.scheme or "none"
        raise _invalid("invalid_url", "url", url, f"the scheme must be http or https, not {shown}")
    if not parts.hostname:
        raise _invalid("invalid_url", "url", url, "it has no host")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise _invalid(
            "invalid_url", "url", url, "its port is not a number from 0 to 65535"
        ) from None
    return url


def validate_topics(topics: Any) -> list[str]:
    """The topic names, deduplicated in order, or ``["*"]``; else ``invalid_topics``."""
    if isinstance(topics, str) or not isinstance(topics, Sequence):
        raise _invalid("invalid_topics", "topics", topics, "expected a list of topic names")
    if not topics:
        raise _invalid(
            "invalid_topics", "topics", topics, 'name at least one topic, or ["*"] for all'
        )
    names: list[str] = []
    for topic in topics:
        if not isinstance(topic, str) or not topic:
            raise _invalid(
                "invalid_topics", "topics", topics, f"{topic!r} is not a non-empty topic name"
            )
        if any(ch.isspace() or not ch.isprintable() for ch in topic):
            raise _invalid(
                "invalid_topics", "topics", topics, f"{topic!r} contains spaces or control chars"
            )
        if len(topic) > MAX_TOPIC:
            raise _invalid(
                "invalid_topics", "topics", topics, f"{topic!r} is longer than {MAX_TOPIC}"
            )
        if ALL_TOPICS in topic and topic != ALL_TOPICS:
            raise _invalid(
                "invalid_topics", "topics", topics, f'{topic!r}: only "*" alone is a wildcard'
            )
        if topic not in names:
            names.append(topic)
    if ALL_TOPICS in names and len(names) > 1:
        raise _invalid(
            "invalid_topics", "topics", topics, '"*" stands alone: it already means every topic'
        )
    if len(" ".join(names)) > MAX_TOPICS_TEXT:
        raise _invalid(
            "invalid_topics", "topics", topics, f"more than {MAX_TOPICS_TEXT} characters in all"
        )
    return names


def _validate_active(active: Any) -> bool:
    if not isinstance(active, bool):
        raise _invalid("invalid_active", "active", active, "expected true or false")
    return active


def _validate_overlap(overlap: Any) -> int:
    if (
        isinstance(overlap, bool)
        or not isinstance(overlap, int)
        or not (0 <= overlap <= MAX_OVERLAP)
    ):
        raise _invalid(
            "invalid_overlap",
            "overlap_seconds",
            overlap,
            f"expected whole seconds from 0 to {MAX_OVERLAP}",
        )
    return overlap


def _validate_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not (1 <= limit <= MAX_DELIVERIES):
        raise _invalid(
            "invalid_limit", "limit", limit, f"expected a whole number from 1 to {MAX_DELIVERIES}"
        )
    return limit


# views -----------------------------------------------------------------------------------


def _instant(work: Work, value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(work.at.tzinfo).isoformat()


def _endpoint_view(work: Work, row) -> dict[str, Any]:
    """An endpoint without its secrets."""
    rotating = row.previous_secret is not None and row.previous_expires_at is not None
    return {
        "id": int(row.id),
        "url": row.url,
        "topics": row.topics.split(),
        "active": bool(row.active),
        "created_at": _instant(work, row.created_at),
        "previous_secret_expires_at": _instant(work, row.previous_expires_at) if rotating else None,
    }


def event_id(outbox_id: int) -> str:
    """The id receivers deduplicate on: the same for every attempt of one event."""
    return f"evt_{int(outbox_id)}"


# access and loading ----------------------------------------------------------------------


def _load(work: Work, endpoint_id: Any, *, lock: bool = False):
    if (
        isinstance(endpoint_id, bool)
        or not isinstance(endpoint_id, int)
        or not 0 < endpoint_id <= MAX_ID
    ):
        raise NotFound(kind="webhook_endpoint", id=endpoint_id)
    query = select(t.webhook_endpoints).where(
        t.webhook_endpoints.c.id == endpoint_id,
        t.webhook_endpoints.c.tenant_id == work.principal.tenant_id,
    )
    if lock and work.connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = work.connection.execute(query).one_or_none()
    if row is None:
        raise NotFound(kind="webhook_endpoint", id=endpoint_id)
    return row


def _audit(work: Work, action: str, endpoint_id: int, before: Any, after: Any) -> None:
    audit_action(
        work, f"webhook_endpoint.{action}", f"webhook_endpoint:{endpoint_id}", before, after
    )


def _change(work: Work, endpoint_id: int, **values: Any):
    work.connection.execute(
        update(t.webhook_endpoints)
        .where(
            t.webhook_endpoints.c.id == endpoint_id,
            t.webhook_endpoints.c.tenant_id == work.principal.tenant_id,
        )
        .values(**values)
    )
    return _load(work, endpoint_id)


# services --------------------------------------------------------------------------------


def create_endpoint(
    engine: Engine,
    principal: Principal,
    *,
    url: str,
    topics: list[str] | None,
    at: datetime,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """A new active endpoint; the response is the only one that shows its ``secret``.
    ``topics=None`` subscribes to every topic."""

    def apply(work: Work) -> dict:
        access.ensure_staff(work.principal, _ACTION)
        checked_url = validate_url(url)
        names = validate_topics([ALL_TOPICS] if topics is None else topics)
        secret = signing.new_secret()
        endpoint_id = work.connection.execute(
            insert(t.webhook_endpoints)
            .values(
                tenant_id=work.principal.tenant_id,
                url=checked_url,
                topics=" ".join(names),
                secret=secret,
                active=True,
                created_at=work.at,
            )
            .returning(t.webhook_endpoints.c.id)
        ).scalar_one()
        view = _endpoint_view(work, _load(work, endpoint_id))
        _audit(work, "create", endpoint_id, None, view)
        return view | {"secret": secret}

    body = {"url": url, "topics": topics}
    return run(
        engine,
        principal,
        "webhooks.create_endpoint",
        body,
        apply,
        at=at,
        key=key,
        request_id=request_id,
    )


def list_endpoints(engine: Engine, principal: Principal, *, at: datetime) -> list[dict]:
    """Every endpoint of the tenant, active or not, oldest first; no secrets."""

    def apply(work: Work) -> list[dict]:
        access.ensure_staff(work.principal, _ACTION)
        rows = work.connection.execute(
            select(t.webhook_endpoints)
            .where(t.webhook_endpoints.c.tenant_id == work.principal.tenant_id)
            .order_by(t.webhook_endpoints.c.id)
        )
        return [_endpoint_view(work, row) for row in rows]

    return run(engine, principal, "webhooks.list_endpoints", {}, apply, at=at, write=False)


def get_endpoint(engine: Engine, principal: Principal, endpoint_id: int, *, at: datetime) -> dict:
    """One endpoint, without its secrets."""

    def apply(work: Work) -> dict:
        access.ensure_staff(work.principal, _ACTION)
        return _endpoint_view(work, _load(work, endpoint_id))

    body = {"endpoint": endpoint_id}
    return run(engine, principal, "webhooks.get_endpoint", body, apply, at=at, write=False)


def update_endpoint(
    engine: Engine,
    principal: Principal,
    endpoint_id: int,
    *,
    at: datetime,
    url: str | None = None,
    topics: list[str] | None = None,
    active: bool | None = None,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """Change the given fields (``None``: unchanged); the endpoint without its secrets."""

    def apply(work: Work) -> dict:
        access.ensure_staff(work.principal, _ACTION)
        row = _load(work, endpoint_id, lock=True)
        values: dict[str, Any] = {}
        if url is not None and validate_url(url) != row.url:
            values["url"] = url
        if topics is not None:
            text = " ".join(validate_topics(topics))
            if text != row.topics:
                values["topics"] = text
        if active is not None and _validate_active(active) != row.active:
            values["active"] = active
        before = _endpoint_view(work, row)
        if not values:
            return before
        after = _endpoint_view(work, _change(work, row.id, **values))
        _audit(work, "update", row.id, before, after)
        return after

    body = {"endpoint": endpoint_id, "url": url, "topics": topics, "active": active}
    return run(
        engine,
        principal,
        "webhooks.update_endpoint",
        body,
        apply,
        at=at,
        key=key,
        request_id=request_id,
    )


def rotate_secret(
    engine: Engine,
    principal: Principal,
    endpoint_id: int,
    *,
    at: datetime,
    overlap_seconds: int = 86400,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """A new ``secret`` (shown in this response only); the current one keeps signing,
    alongside it, until ``at + overlap_seconds`` (0: it stops at once)."""

    def apply(work: Work) -> dict:
        access.ensure_staff(work.principal, _ACTION)
        overlap = _validate_overlap(overlap_seconds)
        row = _load(work, endpoint_id, lock=True)
        secret = signing.new_secret()
        keep = overlap > 0
        changed = _change(
            work,
            row.id,
            secret=secret,
            previous_secret=row.secret if keep else None,
            previous_expires_at=work.at + timedelta(seconds=overlap) if keep else None,
        )
        after = _endpoint_view(work, changed)
        _audit(work, "rotate_secret", row.id, _endpoint_view(work, row), after)
        return after | {"secret": secret}

    body = {"endpoint": endpoint_id, "overlap_seconds": overlap_seconds}
    return run(
        engine,
        principal,
        "webhooks.rotate_secret",
        body,
        apply,
        at=at,
        key=key,
        request_id=request_id,
    )


def delete_endpoint(
    engine: Engine,
    principal: Principal,
    endpoint_id: int,
    *,
    at: datetime,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """Deactivate the endpoint; it and its delivery log stay readable."""

    def apply(work: Work) -> dict:
        access.ensure_staff(work.principal, _ACTION)
        row = _load(work, endpoint_id, lock=True)
        before = _endpoint_view(work, row)
        if not row.active:
            return before
        after = _endpoint_view(work, _change(work, row.id, active=False))
        _audit(work, "delete", row.id, before, after)
        return after

    body = {"endpoint": endpoint_id}
    return run(
        engine,
        principal,
        "webhooks.delete_endpoint",
        body,
        apply,
        at=at,
        key=key,
        request_id=request_id,
    )


def list_deliveries(
    engine: Engine, principal: Principal, endpoint_id: int, *, at: datetime, limit: int = 50
) -> list[dict]:
    """The endpoint's newest ``limit`` deliveries, newest first, each with its attempts
    (oldest first) under ``attempt_log``; ``attempts`` counts the attempts claimed."""

    def apply(work: Work) -> list[dict]:
        access.ensure_staff(work.principal, _ACTION)
        count = _validate_limit(limit)
        endpoint = _load(work, endpoint_id)
        d, o, a = t.webhook_deliveries, t.outbox, t.webhook_attempts
        rows = work.connection.execute(
            select(
                d.c.id,
                d.c.outbox_id,
                o.c.topic,
                d.c.status,
                d.c.attempts,
                d.c.next_attempt_at,
                d.c.delivered_at,
                d.c.created_at,
            )
            .join(o, o.c.id == d.c.outbox_id)
            .where(d.c.endpoint_id == endpoint.id, d.c.tenant_id == work.principal.tenant_id)
            .order_by(d.c.id.desc())
            .limit(count)
        ).all()
        log: dict[int, list[dict]] = {row.id: [] for row in rows}
        if rows:
            attempts = work.connection.execute(
                select(a)
                .where(a.c.delivery_id.in_(list(log)))
                .order_by(a.c.delivery_id, a.c.at, a.c.id)
            )
            for attempt in attempts:
                log[attempt.delivery_id].append(
                    {
                        "at": _instant(work, attempt.at),
                        "status_code": attempt.status_code,
                        "error": attempt.error,
                        "duration_ms": attempt.duration_ms,
                    }
                )
        return [
            {
                "id": int(row.id),
                "event_id": event_id(row.outbox_id),
                "topic": row.topic,
                "status": row.status,
                "attempts": row.attempts,
                "next_attempt_at": _instant(work, row.next_attempt_at)
                if row.status == "pending"
                else None,
                "delivered_at": _instant(work, row.delivered_at),
                "created_at": _instant(work, row.created_at),
                "attempt_log": log[row.id],
            }
            for row in rows
        ]

    body = {"endpoint": endpoint_id, "limit": limit}
    return run(engine, principal, "webhooks.list_deliveries", body, apply, at=at, write=False)
