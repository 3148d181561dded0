"""Every API error as ``application/problem+json`` (RFC 9457), in the caller's language.

A problem carries ``type`` (a stable URI per code), ``title`` (the code's short name),
``status``, ``detail`` (the sentence, in fr or en from ``Accept-Language``), ``code`` (the
spec's refusal code or a validation code: what clients branch on), ``instance`` (the
request path) and, when known, the error's parameters (``params``) and validation
``errors``. Unexpected failures are 500 problems with a reference that is also logged;
their transaction was rolled back, so nothing changed.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from prorata.services import messages
from prorata.services.errors import ServiceError
from prorata.web.language import request_locale

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://prorata.dev/problems/"
log = structlog.get_logger("prorata.api")


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    params: dict[str, Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
    }
    if params:
        body["params"] = {
            k: v if isinstance(v, int | str | None) else str(v) for k, v in params.items()
        }
    if errors:
        body["errors"] = errors
    response = JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)
    response.headers["Content-Language"] = request_locale(request)
    return response


def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem(
        request,
        exc.status,
        exc.code,
        exc.message_in(request_locale(request)),
        params=exc.params,
        headers=headers,
    )


def _field(loc: tuple | list, kind: str | None = None) -> str:
    if kind == "json_invalid":
        return "body"
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[-1] if loc else "request")


_REASONS_FR = {
    "missing": "champ obligatoire manquant",
    "extra_forbidden": "champ inconnu",
    "int_parsing": "un nombre entier est attendu",
    "int_type": "un nombre entier est attendu",
    "string_type": "une chaîne est attendue",
    "bool_type": "un booléen est attendu",
    "bool_parsing": "un booléen est attendu",
    "list_type": "une liste est attendue",
    "dict_type": "un objet est attendu",
    "model_attributes_type": "un objet est attendu",
    "greater_than_equal": "valeur trop petite",
    "less_than_equal": "valeur trop grande",
    "greater_than": "valeur trop petite",
    "less_than": "valeur trop grande",
    "string_too_short": "texte trop court",
    "string_too_long": "texte trop long",
    "too_short": "trop peu d'éléments",
    "too_long": "trop d'éléments",
    "literal_error": "valeur non permise",
    "enum": "valeur non permise",
    "json_invalid": "JSON invalide",
    "string_pattern_mismatch": "format non valide",
}


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    locale = request_locale(request)
    errors = []
    for error in exc.errors():
        reason = error.get("msg", "invalid")
        if error.get("type") in messages.MESSAGES:  # ours: it names the value and says why
            reason = messages.render(error["type"], locale, error.get("ctx") or {})
        elif locale == "fr":
            reason = _REASONS_FR.get(error.get("type", ""), reason)
        errors.append(
            {
                "field": _field(error.get("loc", ()), error.get("type")),
                "type": error.get("type"),
                "reason": reason,
            }
        )
    first = errors[0] if errors else {"field": "request", "reason": "invalid"}
    detail = messages.render("validation_failed", locale, first)
    return problem(request, 422, "validation_failed", detail, errors=errors)


def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    locale = request_locale(request)
    if exc.status_code == 404:
        detail = messages.render("not_found", locale, {"kind": "route", "id": request.url.path})
        return problem(request, 404, "not_found", detail)
    if exc.status_code == 405:
        detail = messages.render("method_not_allowed", locale, {"method": request.method})
        return problem(request, 405, "method_not_allowed", detail, headers=exc.headers)
    if exc.status_code == 400:
        detail = messages.render("unreadable_body", locale, {})
        return problem(request, 400, "unreadable_body", detail)
    code = {401: "unauthenticated", 403: "forbidden"}.get(exc.status_code, "http_error")
    return problem(request, exc.status_code, code, str(exc.detail), headers=exc.headers)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    reference = uuid.uuid4().hex[:12]
    log.exception("unexpected_error", reference=reference, path=request.url.path)
    detail = messages.render("internal_error", request_locale(request), {"reference": reference})
    return problem(request, 500, "internal_error", detail, params={"reference": reference})


def refuse_nul(request: Request) -> JSONResponse | None:
    """A problem for a NUL character in the path (it names nothing: 404) or the query
    (422), before any route runs; None when there is none."""
    locale = request_locale(request)
    if "\x00" in request.url.path or "%00" in request.url.path:
        detail = messages.render("not_found", locale, {"kind": "route", "id": request.url.path})
        return problem(request, 404, "not_found", detail)
    if "\x00" in unquote(request.url.query):
        error = {
            "field": "query",
            "type": "nul_character",
            "reason": "NUL characters are not allowed",
        }
        detail = messages.render("validation_failed", locale, error)
        return problem(request, 422, "validation_failed", detail, errors=[error])
    return None


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


PROBLEM_RESPONSE = {
    "description": "A problem (RFC 9457)",
    "content": {
        MEDIA_TYPE: {
            "schema": {
                "type": "object",
                "required": ["type", "title", "status", "detail", "code"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "code": {"type": "string"},
                    "instance": {"type": "string"},
                    "params": {"type": "object"},
                    "errors": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    },
}
