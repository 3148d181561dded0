"""What every API route receives: who calls (authenticated, with a scope checked), the
instant of the call, its idempotency key and request id, and the engine.

Credentials: ``Authorization: Bearer <token>`` with an API token (``prt_…``) or a portal
session (``prs_…``); the portal may send the session in the ``prorata_session`` cookie
instead. A token must hold the route's scope; a session acts with its user's roles, which
the services check.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from prorata.services.access import Principal
from prorata.services.credentials import authenticate
from prorata.services.errors import Forbidden
from prorata.web.language import request_locale

SESSION_COOKIE = "prorata_session"
bearer = HTTPBearer(auto_error=False, description="An API token (prt_…) or a session (prs_…)")


@dataclass(frozen=True)
class Call:
    engine: Engine
    principal: Principal
    at: datetime
    request_id: str
    key: str | None = None


def _principal(request: Request, credentials: HTTPAuthorizationCredentials | None, scope: str):
    raw = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    now = request.app.state.clock()
    principal = authenticate(request.app.state.engine, raw, now=now, locale=request_locale(request))
    if principal.scopes is not None and scope not in principal.scopes:
        raise Forbidden("insufficient_scope", code="insufficient_scope", scope=scope)
    if getattr(request.state, "request_id", None) is None:  # set by the app's middleware
        request.state.request_id = uuid.uuid4().hex
    return principal, now


def reader(scope: str = "read") -> Callable[..., Call]:
    """A dependency for routes that change nothing."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Call:
        principal, now = _principal(request, credentials, scope)
        return Call(request.app.state.engine, principal, now, request.state.request_id)

    return dependency


def writer(scope: str = "write") -> Callable[..., Call]:
    """A dependency for routes that change something; they take an ``Idempotency-Key``."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                min_length=1,
                max_length=200,
                description="Replays of a key return the first response; reuse with "
                "another request is refused (idempotency_key_reused).",
            ),
        ] = None,
    ) -> Call:
        principal, now = _principal(request, credentials, scope)
        return Call(
            request.app.state.engine, principal, now, request.state.request_id, idempotency_key
        )

    return dependency


# What routes declare: the caller with the scope the route needs, and paging.
Read = Annotated[Call, Depends(reader("read"))]
Write = Annotated[Call, Depends(writer("write"))]
Support = Annotated[Call, Depends(writer("support"))]
Admin = Annotated[Call, Depends(writer("admin"))]
AdminRead = Annotated[Call, Depends(reader("admin"))]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
