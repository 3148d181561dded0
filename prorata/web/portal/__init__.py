"""The customer portal and the back office, server-rendered on the API's app under
``/portal`` (Jinja2 templates, htmx for partial updates, Babel catalogues in fr and en).

Every page calls the same services as the API; see :mod:`prorata.web.portal.customer` and
:mod:`prorata.web.portal.staff`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parents[1] / "static"


def install(app: FastAPI) -> None:
    """Mount the portal's pages and static files on ``app``."""
    from prorata.web.portal import auth, customer, staff

    portal = APIRouter(prefix="/portal", include_in_schema=False)
    portal.include_router(auth.router)
    portal.include_router(staff.router)
    portal.include_router(customer.router)
    app.include_router(portal)
    app.mount("/portal/static", StaticFiles(directory=STATIC), name="portal-static")
