"""Delivering the outbox to webhook endpoints: fan-out, then signed POSTs with retries.

Invariants:
- fan-out turns each outbox row not yet published into one ``pending`` delivery per active
  endpoint of its tenant whose topics match (``*`` or the exact topic), and stamps the row
  ``published_at`` in the same transaction; the unique (endpoint, event) pair makes it
  idempotent, and on PostgreSQL ``FOR UPDATE SKIP LOCKED`` gives concurrent dispatchers
  disjoint rows (SQLite has one writer at a time);
- a delivery is claimed before it is sent: a short transaction moves its
  ``next_attempt_at`` to the end of a lease and counts the attempt; the POST happens
  outside any transaction; another short transaction records the attempt. A claim whose
  dispatcher died is claimed again once its lease ends. ``attempts`` is the claim's fencing
  token: a late result from a claim that lost its lease never overwrites the newer claim's
  state, except that a 2xx always marks the delivery delivered;
- delivery is at least once: the event id (``evt_<outbox id>``) is the same on every
  attempt, so receivers deduplicate on it; a 2xx answer is success, anything else
  (redirects included) is a failure, retried after :func:`backoff` until ``max_attempts``,
  then the delivery is ``failed``;
- only active endpoints are sent to; a deactivated endpoint's pending deliveries wait;
- every instant comes from the injected ``now``, so tests move a clock instead of sleeping;
  only ``duration_ms`` is measured on the real monotonic clock.

Requests are signed as :mod:`prorata.core.signing` describes, with the endpoint's secret
and, while a rotation's overlap lasts, its previous secret too. They go only where
:mod:`prorata.adapters.destinations` allows (public addresses unless the operator allows
private ones), to the address that was checked.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import structlog
from sqlalchemy import Connection, Engine, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from prorata.adapters import schema as t
from prorata.adapters.destinations import DestinationRefused, Destinations
from prorata.core import signing

log = structlog.get_logger(__name__)

USER_AGENT = "prorata-webhooks"
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
ERROR_LENGTH = 500  # webhook_attempts.error
SNIPPET_BYTES = 200  # how much of an error answer's body is kept

_d, _e, _o, _a = t.webhook_deliveries, t.webhook_endpoints, t.outbox, t.webhook_attempts


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 30 s, 60 s, 120 s, … capped at
    6 hours; deterministic."""
    exponent = min(max(attempts - 1, 0), 20)
    return min(BACKOFF_FIRST * 2**exponent, BACKOFF_CAP)


def event_body(outbox_id: int, topic: str, created_at: datetime, payload: str) -> bytes:
    """The JSON body of an event, as sent and signed."""
    document = {
        "id": f"evt_{outbox_id}",
        "type": topic,
        "created_at": created_at.isoformat(),
        "data": json.loads(payload),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Claim:
    """One delivery claimed by this dispatcher until ``lease_until``; ``attempts`` is the
    attempt number of this claim (its fencing token)."""

    delivery_id: int
    attempts: int
    lease_until: datetime
    endpoint_id: int
    url: str
    secret: str
    previous_secret: str | None
    previous_expires_at: datetime | None
    outbox_id: int
    topic: str
    body: bytes

    @property
    def event_id(self) -> str:
        return f"evt_{self.outbox_id}"

    def secrets(self, now: datetime) -> list[str]:
        """The secrets to sign with at ``now``: the current one, then the previous one while
        its overlap lasts."""
        keys = [self.secret]
        if (
            self.previous_secret
            and self.previous_expires_at is not None
            and now < self.previous_expires_at
        ):
            keys.append(self.previous_secret)
        return keys


@dataclass(frozen=True)
class _Result:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return _success(self.status_code)


def _utc_now() -> datetime:
    return t.now_utc()


class Dispatcher:
    """Fans the outbox out to endpoints and delivers what is due; several may run at once
    against one database (threads or processes)."""

    def __init__(
        self,
        engine: Engine,
        *,
        client: httpx.Client | None = None,
        now: Callable[[], datetime] = _utc_now,
        timeout: float = 10.0,
        lease_seconds: int = 60,
        max_attempts: int = 12,
        batch: int = 100,
        destinations: Destinations | None = None,
    ) -> None:
        if lease_seconds <= timeout:
            raise ValueError(
                f"lease_seconds ({lease_seconds}) must exceed the request timeout ({timeout})"
            )
        if max_attempts < 1 or batch < 1:
            raise ValueError("max_attempts and batch must be at least 1")
        self.engine = engine
        self.now = now
        self.timeout = timeout
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.batch = batch
        self.destinations = Destinations.from_env() if destinations is None else destinations
        self._owns_client = client is None
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    # lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the HTTP client if this dispatcher made it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _now(self) -> datetime:
        value = self.now()
        if value.tzinfo is None:
            raise ValueError("the dispatcher's clock must return aware datetimes")
        return value

    @property
    def _locking(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # fan-out -----------------------------------------------------------------------------
    def fan_out(self) -> int:
        """Fan out up to ``batch`` unpublished outbox rows; how many were published."""
        now = self._now()
        with self.engine.begin() as connection:
            query = (
                select(_o.c.id, _o.c.tenant_id, _o.c.topic)
                .where(_o.c.published_at.is_(None))
                .order_by(_o.c.id)
                .limit(self.batch)
            )
            if self._locking:
                query = query.with_for_update(skip_locked=True)
            events = connection.execute(query).all()
            if not events:
                return 0
            endpoints = connection.execute(
                select(_e.c.id, _e.c.tenant_id, _e.c.topics).where(
                    _e.c.tenant_id.in_({event.tenant_id for event in events}),
                    _e.c.active.is_(True),
                )
            ).all()
            rows = [
                {
                    "tenant_id": event.tenant_id,
                    "endpoint_id": endpoint.id,
                    "outbox_id": event.id,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for event in events
                for endpoint in endpoints
                if endpoint.tenant_id == event.tenant_id and _matches(endpoint.topics, event.topic)
            ]
            if rows:
                _insert_new(connection, rows)
            connection.execute(
                update(_o)
                .where(_o.c.id.in_([event.id for event in events]), _o.c.published_at.is_(None))
                .values(published_at=now)
            )
        log.debug("webhooks.fanned_out", events=len(events), deliveries=len(rows))
        return len(events)

    # claims ------------------------------------------------------------------------------
    def claim_due(self) -> list[Claim]:
        """Claim up to ``batch`` due deliveries of active endpoints for one lease."""
        now = self._now()
        lease_until = now + self.lease
        due = (
            _d.c.status == "pending",
            or_(_d.c.next_attempt_at.is_(None), _d.c.next_attempt_at <= now),
        )
        with self.engine.begin() as connection:
            query = (
                select(_d.c.id)
                .join(_e, _e.c.id == _d.c.endpoint_id)
                .where(*due, _e.c.active.is_(True))
                .order_by(_d.c.id)
                .limit(self.batch)
            )
            if self._locking:
                query = query.with_for_update(of=_d, skip_locked=True)
            ids = connection.execute(query).scalars().all()
            if not ids:
                return []
            claimed = dict(
                connection.execute(
                    update(_d)
                    .where(_d.c.id.in_(ids), *due)
                    .values(attempts=_d.c.attempts + 1, next_attempt_at=lease_until)
                    .returning(_d.c.id, _d.c.attempts)
                ).all()
            )
            rows = connection.execute(
                select(
                    _d.c.id,
                    _d.c.outbox_id,
                    _e.c.id.label("endpoint_id"),
                    _e.c.url,
                    _e.c.secret,
                    _e.c.previous_secret,
                    _e.c.previous_expires_at,
                    _o.c.topic,
                    _o.c.payload,
                    _o.c.created_at,
                )
                .join(_e, _e.c.id == _d.c.endpoint_id)
                .join(_o, _o.c.id == _d.c.outbox_id)
                .where(_d.c.id.in_(list(claimed)))
                .order_by(_d.c.id)
            ).all()
        return [
            Claim(
                delivery_id=row.id,
                attempts=claimed[row.id],
                lease_until=lease_until,
                endpoint_id=row.endpoint_id,
                url=row.url,
                secret=row.secret,
                previous_secret=row.previous_secret,
                previous_expires_at=row.previous_expires_at,
                outbox_id=row.outbox_id,
                topic=row.topic,
                body=event_body(row.outbox_id, row.topic, row.created_at, row.payload),
            )
            for row in rows
        ]

    def release(self, claim: Claim) -> None:
        """Give back a claim that was never sent: due now, and the attempt not counted. A
        no-op if the claim already lost its lease."""
        with self.engine.begin() as connection:
            connection.execute(
                update(_d)
                .where(
                    _d.c.id == claim.delivery_id,
                    _d.c.status == "pending",
                    _d.c.attempts == claim.attempts,
                )
                .values(attempts=_d.c.attempts - 1, next_attempt_at=self._now())
            )

    # sending -----------------------------------------------------------------------------
    def deliver(self, claim: Claim) -> bool | None:
        """POST one claimed event and record the attempt: True on 2xx, False on failure,
        None if not sent because the lease could end before the request times out (the
        claim is released)."""
        result = self._attempt(claim)
        return None if result is None else result.ok

    def _attempt(self, claim: Claim) -> _Result | None:
        started = self._now()
        if started + timedelta(seconds=self.timeout) > claim.lease_until:
            self.release(claim)
            return None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Prorata-Event-Id": claim.event_id,
            "Prorata-Signature": signing.signature_header(
                claim.secrets(started), int(started.timestamp()), claim.body
            ),
        }
        status_code: int | None = None
        error: str | None = None
        clock = time.monotonic()
        try:
            target = self.destinations.target(claim.url)
        except DestinationRefused as exc:  # nothing sent; retried, as a refused connection
            self.record(claim, status_code=None, error=f"DestinationRefused: {exc}", duration_ms=0)
            return _Result(None, str(exc))
        try:
            with self.client.stream(
                "POST",
                target.url,
                content=claim.body,
                headers={**headers, **target.headers},
                timeout=self.timeout,
                extensions=dict(target.extensions),
            ) as response:
                status_code = response.status_code
                if not response.is_success:
                    error = f"HTTP {status_code}{_snippet(response)}"
        except Exception as exc:  # refused, timed out, bad URL: no HTTP answer
            error = f"{type(exc).__name__}: {exc}"
        duration_ms = int((time.monotonic() - clock) * 1000)
        self.record(claim, status_code=status_code, error=error, duration_ms=duration_ms)
        return _Result(status_code, error)

    def record(
        self, claim: Claim, *, status_code: int | None, error: str | None, duration_ms: int
    ) -> None:
        """Log one attempt of ``claim`` and move its delivery on: delivered on 2xx, else
        pending after :func:`backoff`, or failed after ``max_attempts``."""
        at = self._now()
        ok = _success(status_code)
        with self.engine.begin() as connection:
            connection.execute(
                insert(_a).values(
                    delivery_id=claim.delivery_id,
                    at=at,
                    status_code=status_code,
                    error=None if error is None else error[:ERROR_LENGTH],
                    duration_ms=max(duration_ms, 0),
                )
            )
            if ok:
                connection.execute(
                    update(_d)
                    .where(_d.c.id == claim.delivery_id, _d.c.status != "delivered")
                    .values(status="delivered", delivered_at=at, next_attempt_at=None)
                )
            else:
                exhausted = claim.attempts >= self.max_attempts
                connection.execute(
                    update(_d)
                    .where(
                        _d.c.id == claim.delivery_id,
                        _d.c.status == "pending",
                        _d.c.attempts == claim.attempts,
                    )
                    .values(
                        status="failed" if exhausted else "pending",
                        next_attempt_at=None if exhausted else at + backoff(claim.attempts),
                    )
                )
        event = "webhooks.delivered" if ok else "webhooks.attempt_failed"
        (log.info if ok else log.warning)(
            event,
            delivery=claim.delivery_id,
            event_id=claim.event_id,
            url=claim.url,
            attempt=claim.attempts,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )

    def deliver_due(self) -> int:
        """Claim what is due and send it; how many attempts were recorded. Once an endpoint
        gives no HTTP answer (refused, timed out), its other claims of the round are
        recorded as failed attempts without being sent."""
        unreachable: dict[int, str] = {}
        made = 0
        for claim in self.claim_due():
            try:
                reason = unreachable.get(claim.endpoint_id)
                if reason is not None:
                    self.record(
                        claim,
                        status_code=None,
                        error=f"not sent: the endpoint gave no answer a moment ago ({reason})",
                        duration_ms=0,
                    )
                    made += 1
                    continue
                result = self._attempt(claim)
                if result is None:
                    continue
                made += 1
                if result.status_code is None:
                    unreachable[claim.endpoint_id] = (result.error or "no answer")[:200]
            except Exception:
                # This claim's lease ends and it is claimed again; the others go on.
                log.exception("webhooks.delivery_crashed", delivery=claim.delivery_id)
        return made

    # loops -------------------------------------------------------------------------------
    def run_once(self) -> tuple[int, int]:
        """One round: (outbox rows published, delivery attempts made)."""
        return self.fan_out(), self.deliver_due()

    def run_until_idle(self, max_rounds: int = 1000) -> tuple[int, int]:
        """Rounds until nothing is left to publish and nothing is due; the totals."""
        published = attempted = 0
        for _ in range(max_rounds):
            fanned, made = self.run_once()
            published, attempted = published + fanned, attempted + made
            if not fanned and not made:
                break
        return published, attempted

    def run_forever(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Rounds until ``stop`` is set: at once after a busy round, else after
        ``interval`` seconds. An exception is logged and the loop goes on."""
        while not stop.is_set():
            busy = False
            try:
                fanned, made = self.run_once()
                busy = bool(fanned or made)
            except Exception:
                log.exception("webhooks.round_failed")
            if not busy:
                stop.wait(interval)


def _success(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


def _matches(topics: str, topic: str) -> bool:
    names = topics.split()
    return "*" in names or topic in names


def _insert_new(connection: Connection, rows: list[dict]) -> None:
    """Insert the deliveries that do not exist yet (unique endpoint and event)."""
    dialect = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(
        dialect(_d).values(rows).on_conflict_do_nothing(index_elements=["endpoint_id", "outbox_id"])
    )


def _snippet(response: httpx.Response) -> str:
    """The start of an error answer's body, read no further than needed."""
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= SNIPPET_BYTES:
                break
    except httpx.HTTPError:
        pass
    text = data[:SNIPPET_BYTES].decode("utf-8", "replace").strip()
    return f": {' '.join(text.split())}" if text else ""
