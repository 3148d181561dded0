"""The HTTP entry point: the API under ``/v1`` (OpenAPI 3.1 at ``/openapi.json``, docs at
``/docs``), a health check, and the webhook dispatcher running beside the server.

:func:`create_app` builds an app over an engine; ``prorata serve`` and the tests call it.
Only this entry point reads the clock (``clock``), and every route hands the instant to the
services, so tests can run the API at any date.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine

from prorata import __version__
from prorata.web import problems
from prorata.web.routes import accounts, billing, documents, payments, webhooks

log = structlog.get_logger("prorata.api")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")  # else a new id replaces the caller's

DESCRIPTION = """\
prorata's API: preview and apply subscription changes, carts and checkout, cancellations,
seats, requests for support, invoices, credit notes, receipts, account credit and webhooks.

Authenticate with `Authorization: Bearer <token>`: an API token (`prt_…`, scopes `read`,
`write`, `support`, `admin`) or a portal session (`prs_…`, the user's roles). Send an
`Idempotency-Key` on every POST. Errors are `application/problem+json` with a stable `code`;
`Accept-Language: fr` gives French messages.
"""


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(
    engine: Engine | None = None,
    *,
    clock: Callable[[], datetime] = _now,
    dispatch_webhooks: bool = False,
) -> FastAPI:
    """The API over ``engine`` (default: ``PRORATA_DATABASE_URL`` or ``./var/prorata.db``).
    ``dispatch_webhooks`` runs the webhook dispatcher and the collector of due payments
    (both network-bound) in threads while the app is up. The document renderer is
    CPU-bound: ``prorata serve`` runs it in a process of its own (:func:`render_forever`),
    so rendering never holds up the API."""
    if engine is None:
        from prorata.adapters.database import make_engine

        engine = make_engine()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        stop = threading.Event()
        workers: list[threading.Thread] = []
        dispatcher = None
        if dispatch_webhooks:
            from prorata.adapters.webhook_delivery import Dispatcher

            dispatcher = Dispatcher(engine)
            workers.append(
                threading.Thread(target=dispatcher.run_forever, args=(stop,), name="webhooks")
            )
            # dunning retries and refunds fall due while the app runs; collect them
            from prorata.services.collection_run import collect_forever
            from prorata.web.routes.payments import gateway

            workers.append(
                threading.Thread(
                    target=collect_forever,
                    args=(engine, gateway(), clock, stop),
                    name="collections",
                )
            )
        for worker in workers:
            worker.daemon = True
            worker.start()
        yield
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
        if dispatcher is not None:
            dispatcher.close()

    app = FastAPI(
        title="prorata",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses={
            400: problems.PROBLEM_RESPONSE,
            401: problems.PROBLEM_RESPONSE,
            403: problems.PROBLEM_RESPONSE,
            404: problems.PROBLEM_RESPONSE,
            409: problems.PROBLEM_RESPONSE,
            422: problems.PROBLEM_RESPONSE,
            500: problems.PROBLEM_RESPONSE,
        },
    )
    app.state.engine = engine
    app.state.clock = clock
    problems.install(app)

    @app.middleware("http")
    async def request_log(request: Request, call_next):
        """Every response names its request (``X-Request-Id``: the caller's, else a new one);
        one structured log line per request."""
        given = request.headers.get("x-request-id", "")
        request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.state.request_id = request_id
        started = time.perf_counter()
        refused = problems.refuse_nul(request)
        response = refused if refused is not None else await call_next(request)
        response.headers["X-Request-Id"] = request_id
        log.info(
            "request",
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 1),
            request_id=request_id,
        )
        return response

    v1 = APIRouter(prefix="/v1")
    for module in (billing, accounts, documents, payments, webhooks):
        v1.include_router(module.router)
    app.include_router(v1)

    from prorata.web import portal

    portal.install(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<title>prorata</title></head><body><h1>prorata</h1>"
            "<p>The subscription-change engine is running.</p>"
            "<ul><li><a href='/portal/'>Customer portal and back office</a></li>"
            "<li><a href='/docs'>API documentation</a></li>"
            "<li><a href='/openapi.json'>OpenAPI</a></li>"
            "<li><a href='/healthz'>health</a></li></ul></body></html>"
        )

    @app.get("/healthz", tags=["health"], summary="Liveness")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def render_forever(engine: Engine, stop: threading.Event, interval: float = 2.0) -> None:
    """Render committed documents that have no PDF yet until ``stop``; never dies."""
    from prorata.services.renderings import render_pending

    while not stop.is_set():
        try:
            busy = render_pending(engine, now=_now())
        except Exception:
            log.exception("render_failed")
            busy = 0
        if not busy:
            stop.wait(interval)


def app_from_environment() -> FastAPI:
    """The served app (uvicorn factory): the configured database, webhooks dispatched."""
    return create_app(dispatch_webhooks=True)
