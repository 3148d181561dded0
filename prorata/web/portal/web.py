"""What every portal page shares: templates (Jinja2, autoescaped, one environment per
language with its Babel catalogue), the signed-in viewer, CSRF, and errors shown as pages.

- **Sessions**: the portal signs people in with a portal session (``prs_…``, the same as the
  API's) kept in the ``prorata_session`` cookie (HttpOnly, SameSite=Lax).
- **CSRF**: every POST must carry the session's token, in the ``csrf`` form field or the
  ``X-CSRF-Token`` header (htmx sends it); the token is an HMAC of the session secret, so
  it is per session and never stored. The login form, before any session, uses a random
  token kept in a cookie of its own (double submit).
- **Errors**: a service error raised by a page becomes an HTML page in the reader's
  language with the error's status; a page that needs a session redirects to the login.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape

from prorata.services import backoffice
from prorata.services.access import Principal
from prorata.services.credentials import authenticate
from prorata.services.errors import ServiceError, Unauthenticated
from prorata.web.deps import SESSION_COOKIE
from prorata.web.language import negotiate
from prorata.web.portal import i18n

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
LANG_COOKIE = "prorata_lang"
LOGIN_CSRF_COOKIE = "prorata_login_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    """The page needs a signed-in user."""


class CsrfFailed(Exception):
    """A POST without the session's CSRF token."""


# templates ---------------------------------------------------------------------------------


@pass_context
def _money(context, amount, currency=None):
    return i18n.money(amount, currency or context["currency"], context["fmt"])


@pass_context
def _day(context, value, form="medium"):
    return i18n.day(value, context["fmt"], form)


@pass_context
def _last_day(context, value, form="medium"):
    return i18n.last_day(value, context["fmt"], form)


@pass_context
def _instant(context, value):
    return i18n.instant(value, context["fmt"])


def _nonzero(amount) -> bool:
    """An amount (decimal text) other than zero."""
    return amount not in (None, "") and Decimal(str(amount)) != 0


def _environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)
    env.filters.update(money=_money, day=_day, last_day=_last_day, instant=_instant)
    env.tests["nonzero"] = _nonzero
    return env


ENVIRONMENTS = {language: _environment(language) for language in i18n.LANGUAGES}


def gettext_for(language: str) -> Callable[[str], str]:
    return i18n.translations(language).gettext


# who is looking ----------------------------------------------------------------------------


def page_language(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in i18n.LANGUAGES:
        return chosen
    return negotiate(request.headers.get("accept-language"))


def csrf_token(raw_session: str) -> str:
    return hmac.new(raw_session.encode(), b"prorata-portal-csrf", hashlib.sha256).hexdigest()


@dataclass
class Viewer:
    """The signed-in person, the page's language and what formats its amounts."""

    request: Request
    principal: Principal
    me: dict
    language: str
    csrf: str
    at: datetime
    flash: list[str] = field(default_factory=list)

    @property
    def engine(self):
        return self.request.app.state.engine

    @property
    def fmt(self) -> str:
        return i18n.format_locale(self.language, self.me["tenant"]["country"])

    @property
    def currency(self) -> str:
        return self.me["tenant"]["currency"]

    @property
    def is_staff(self) -> bool:
        return self.principal.is_staff

    def _(self, text: str, **params: Any) -> str:
        message = gettext_for(self.language)(text)
        return message % params if params else message

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(self.request, template, status=status, viewer=self, **context)


def viewer(request: Request) -> Viewer:
    """The dependency of every signed-in page."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        raise LoginRequired()
    language = page_language(request)
    now = request.app.state.clock()
    try:
        principal = authenticate(request.app.state.engine, raw, now=now, locale=language)
    except Unauthenticated:
        raise LoginRequired() from None
    if principal.kind != "user":
        raise LoginRequired()
    if request.method == "POST":
        _check_csrf(request, csrf_token(raw))
    me = backoffice.whoami(request.app.state.engine, principal, at=now)
    return Viewer(request, principal, me, language, csrf_token(raw), now)


def _check_csrf(request: Request, expected: str) -> None:
    """Compare the token sent (header, else the form field parsed by the route) with the
    session's; the form is read here from the cached body."""
    sent = request.headers.get(CSRF_HEADER) or getattr(request.state, "csrf_field", None)
    if not sent or not hmac.compare_digest(str(sent), expected):
        raise CsrfFailed()


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    seen: Viewer | None = context.get("viewer")
    language = seen.language if seen else page_language(request)
    country = seen.me["tenant"]["country"] if seen else None
    env = ENVIRONMENTS[language]
    base = {
        "request": request,
        "lang": language,
        "fmt": i18n.format_locale(language, country),
        "currency": seen.currency if seen else "EUR",
        "path": request.url.path,
        "here": quote(
            str(request.url.path) + ("?" + request.url.query if request.url.query else "")
        ),
    }
    html = env.get_template(template).render(base | context)
    response = HTMLResponse(html, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Language"] = language
    return response


def new_key() -> str:
    """An idempotency key for a form: a reload or a double click replays, not repeats."""
    return f"portal-{uuid.uuid4().hex}"


def login_csrf(request: Request) -> str:
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


# errors as pages ---------------------------------------------------------------------------


class PortalRoute(APIRoute):
    """Routes whose failures are pages: service errors in the reader's language, a missing
    session sends to the login, a missing CSRF token is refused (403)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            if request.method == "POST" and CSRF_HEADER not in request.headers:
                form = await request.form()
                request.state.csrf_field = form.get(CSRF_FIELD)
            try:
                return await handler(request)
            except LoginRequired:
                target = request.url.path
                if request.method == "GET" and request.url.query:
                    target += "?" + request.url.query
                return RedirectResponse(f"/portal/login?next={quote(target)}", status_code=303)
            except CsrfFailed:
                return error_page(request, 403, "csrf", None)
            except ServiceError as exc:
                return error_page(request, exc.status, exc.code, exc)

        return route


def error_page(request: Request, status: int, code: str, exc: ServiceError | None) -> HTMLResponse:
    language = page_language(request)
    message = exc.message_in(language) if exc is not None else None
    return render(request, "error.html", status=status, code=code, message=message)
