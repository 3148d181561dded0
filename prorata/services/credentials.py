"""API tokens and portal sessions: issued once, stored hashed, resolved to a Principal.

Invariants:
- a secret is shown once, when issued; the database keeps only its SHA-256, so a copy of
  the database cannot be replayed against the API;
- an API token reads ``prt_<prefix>_<secret>``: the prefix finds the row, the hash of the
  whole token must match (compared in constant time);
- a session reads ``prs_<secret>`` and acts as its user, with the user's roles; it expires;
- tokens carry scopes (:data:`SCOPES`); a token acts for the whole tenant like its support
  staff, limited by its scopes; sessions have no scopes, their user's roles limit them;
- unknown, expired and revoked credentials are refused with distinct codes and nothing
  else: a caller learns no more than "this credential does not work, and why".
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, insert, select, update

from prorata.adapters import schema as t
from prorata.services import access
from prorata.services.access import Principal
from prorata.services.errors import InvalidRequest, NotFound, Unauthenticated, ensure_id
from prorata.services.recording import audit_action
from prorata.services.transaction import Work, run

SCOPES = {
    "read": "read the catalog, accounts, subscriptions, documents and requests",
    "write": "preview and apply changes, subscribe, cancel, assign seats",
    "support": "approve, reject and fulfil requests",
    "admin": "manage accounts, users, webhook endpoints and portal sessions",
}
SESSION_TTL = timedelta(hours=12)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_scopes(scopes: list[str] | str) -> list[str]:
    items = scopes.split() if isinstance(scopes, str) else list(scopes)
    unknown = [s for s in items if s not in SCOPES]
    if not items or unknown:
        raise InvalidRequest(
            "invalid_value",
            field="scopes",
            value=" ".join(items),
            why="expected some of " + ", ".join(SCOPES),
        )
    return sorted(set(items))


def issue_token(
    connection: Connection,
    tenant_id: int,
    *,
    name: str,
    scopes: list[str] | str,
    now: datetime,
    expires_at: datetime | None = None,
) -> str:
    """A new API token of ``tenant_id``; the returned text is its only copy."""
    prefix = secrets.token_hex(6)
    raw = f"prt_{prefix}_{secrets.token_urlsafe(24)}"
    connection.execute(
        insert(t.api_tokens).values(
            tenant_id=tenant_id,
            name=name,
            prefix=prefix,
            secret_hash=_digest(raw),
            scopes=" ".join(parse_scopes(scopes)),
            created_at=now,
            expires_at=expires_at,
        )
    )
    return raw


def open_session_row(
    connection: Connection, tenant_id: int, user_id: int, *, now: datetime, ttl=SESSION_TTL
) -> tuple[str, datetime]:
    """A new session of ``user_id``: its secret (only copy) and when it expires."""
    raw = f"prs_{secrets.token_urlsafe(32)}"
    expires = now + ttl
    connection.execute(
        insert(t.sessions).values(
            tenant_id=tenant_id,
            user_id=user_id,
            secret_hash=_digest(raw),
            created_at=now,
            expires_at=expires,
        )
    )
    return raw, expires


def _check_live(expires_at: datetime | None, revoked_at: datetime | None, now: datetime) -> None:
    if revoked_at is not None:
        raise Unauthenticated("token_revoked", code="token_revoked")
    if expires_at is not None and expires_at <= now:
        raise Unauthenticated("token_expired", code="token_expired", at=expires_at.isoformat())


def authenticate(
    engine: Engine, raw: str | None, *, now: datetime, locale: str | None
) -> Principal:
    """The principal behind ``raw`` (a token or session secret), reading in ``locale``."""
    if not raw:
        raise Unauthenticated("unauthenticated")
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="DEFERRED")  # a read: no write lock
        if raw.startswith("prt_") and raw.count("_") >= 2:
            prefix = raw.split("_", 2)[1]
            row = connection.execute(
                select(t.api_tokens).where(t.api_tokens.c.prefix == prefix)
            ).one_or_none()
            if row is None or not hmac.compare_digest(row.secret_hash, _digest(raw)):
                raise Unauthenticated("invalid_token", code="invalid_token")
            _check_live(row.expires_at, row.revoked_at, now)
            return Principal(
                row.tenant_id, "token", locale=locale, scopes=frozenset(row.scopes.split())
            )
        if raw.startswith("prs_"):
            row = connection.execute(
                select(t.sessions).where(t.sessions.c.secret_hash == _digest(raw))
            ).one_or_none()
            if row is None:
                raise Unauthenticated("invalid_token", code="invalid_token")
            _check_live(row.expires_at, row.revoked_at, now)
            principal = access.load_principal(connection, row.tenant_id, row.user_id)
            return Principal(
                principal.tenant_id,
                "user",
                principal.user_id,
                principal.staff_role,
                principal.memberships,
                locale=locale,
            )
    raise Unauthenticated("invalid_token", code="invalid_token")


def create_session(engine: Engine, principal: Principal, user_id: int, *, at: datetime) -> dict:
    """A portal session for ``user_id``, opened by the seller's backend (a token with the
    ``admin`` scope) when its customer clicks "billing" in the seller's product."""

    def apply(work: Work) -> dict:
        access.ensure_staff(work.principal, "sessions")
        ensure_id("user", user_id)
        found = work.connection.execute(
            select(t.users.c.id).where(
                t.users.c.id == user_id, t.users.c.tenant_id == work.principal.tenant_id
            )
        ).one_or_none()
        if found is None:
            raise NotFound(kind="user", id=user_id)
        raw, expires = open_session_row(
            work.connection, work.principal.tenant_id, user_id, now=work.at
        )
        audit_action(work, "session.open", f"user:{user_id}")
        return {"user": user_id, "token": raw, "expires_at": expires.isoformat()}

    # No idempotent replay: a replayed response would hand out the secret a second time.
    return run(engine, principal, "session.open", {"user": user_id}, apply, at=at)


def revoke_session(engine: Engine, raw: str, *, now: datetime) -> None:
    """Log out: the session stops working at once."""
    with engine.begin() as connection:
        connection.execute(
            update(t.sessions)
            .where(t.sessions.c.secret_hash == _digest(raw), t.sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
