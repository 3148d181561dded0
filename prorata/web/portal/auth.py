"""Signing in and out, and choosing the page language."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from prorata.services import backoffice
from prorata.services.access import Principal
from prorata.services.credentials import create_session, revoke_session
from prorata.services.errors import Unauthenticated
from prorata.web.deps import SESSION_COOKIE
from prorata.web.portal import i18n
from prorata.web.portal.web import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    PortalRoute,
    csrf_token,
    login_csrf,
    page_language,
    render,
)

router = APIRouter(route_class=PortalRoute)


def safe_next(target: str | None) -> str:
    """Only a page of the portal: never another site (no open redirect)."""
    if target and target.startswith("/portal") and "//" not in target and "\\" not in target:
        return target
    return "/portal/"


def _login_page(request: Request, *, status=200, error=None, email="", next_="", choices=()):
    token = login_csrf(request)
    response = render(
        request,
        "login.html",
        status=status,
        csrf=token,
        error=error,
        email=email,
        next=safe_next(next_),
        choices=choices,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", path="/portal/login"
    )
    return response


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str = "") -> Response:
    return _login_page(request, next_=next)


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
    tenant: Annotated[int | None, Form()] = None,
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not hmac.compare_digest(csrf, expected):
        return render(request, "error.html", status=403, code="csrf", message=None)
    engine = request.app.state.engine
    now = request.app.state.clock()
    try:
        matches = backoffice.check_login(engine, email, password)
    except Unauthenticated as exc:
        return _login_page(
            request,
            status=401,
            error=exc.message_in(page_language(request)),
            email=email,
            next_=next,
        )
    if tenant is not None:
        matches = [m for m in matches if m[0] == tenant] or matches
    if len(matches) > 1:
        return _login_page(request, email=email, next_=next, choices=matches)
    tenant_id, user_id, _ = matches[0]
    system = Principal(tenant_id, "system")
    session = create_session(engine, system, user_id, at=now)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session["token"],
        httponly=True,
        samesite="lax",
        path="/",
        max_age=12 * 3600,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/portal/login")
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    raw = request.cookies.get(SESSION_COOKIE)
    sent = request.headers.get("x-csrf-token") or csrf
    if raw and hmac.compare_digest(sent, csrf_token(raw)):
        revoke_session(request.app.state.engine, raw, now=request.app.state.clock())
    response = RedirectResponse("/portal/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/language/{language}", include_in_schema=False)
def choose_language(language: str, next: str = "") -> Response:
    response = RedirectResponse(safe_next(next), status_code=303)
    if language in i18n.LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, language, samesite="lax", path="/", max_age=365 * 24 * 3600
        )
    return response
