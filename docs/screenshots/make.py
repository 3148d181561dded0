"""Screenshots of the portal's main pages (``make screenshots``): the demo data in a temporary
SQLite file, the app served on a free loopback port, Debian's Chromium through Playwright.
Writes the PNGs beside this file."""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from prorata.adapters.database import make_engine, migrate  # noqa: E402
from prorata.entrypoints.setup import DEMO_PASSWORD, load_demo  # noqa: E402
from prorata.web.app import create_app  # noqa: E402

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# (file, user, language, path, what to do first)
SHOTS = [
    ("product-fr.png", "owner@boulangerie.example", "fr", "/portal/products/site-web", None),
    ("products-fr.png", "owner@boulangerie.example", "fr", "/portal/products", None),
    (
        "change-summary-en.png",
        "billing@helpdesk.example",
        "en",
        "/portal/products/support-seats/change?tier=2&quantity=5",
        None,
    ),
    (
        "checkout-en.png",
        "billing@helpdesk.example",
        "en",
        "/portal/products/support-seats/checkout?tier=2&quantity=5",
        None,
    ),
    ("billing-fr.png", "owner@hotel.example", "fr", "/portal/billing", None),
    ("licence-orders-fr.png", "owner@devshop.example", "fr", "/portal/products", None),
    (
        "seats-en.png",
        "billing@helpdesk.example",
        "en",
        "/portal/products/support-seats/seats",
        None,
    ),
    (
        "backoffice-queue-fr.png",
        "support@kajoom-hosting.example",
        "fr",
        "/portal/backoffice",
        "manual",
    ),
    (
        "backoffice-audit-en.png",
        "manager@aircall-contract.example",
        "en",
        "/portal/backoffice/subscriptions/standard",
        None,
    ),
]


def _manual_request(engine) -> None:
    """A manual set-up waiting in the kajoom back office (seed 000)."""
    from sqlalchemy import select

    from prorata.adapters import schema as t
    from prorata.services.access import Principal
    from prorata.services.subscriptions import ChangeInput, checkout

    with engine.connect() as connection:
        tenant = connection.execute(
            select(t.tenants.c.id).where(t.tenants.c.slug == "kajoom-hosting")
        ).scalar_one()
    checkout(
        engine, Principal(tenant, "system"), [ChangeInput("site-web", plan="business")], at=NOW
    )


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    engine = make_engine(f"sqlite:///{folder / 'demo.db'}")
    migrate(engine)
    load_demo(engine, now=NOW)
    _manual_request(engine)
    app = create_app(engine, clock=lambda: NOW)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for name, user, language, path, _ in SHOTS:
            context = browser.new_context(
                locale="fr-FR" if language == "fr" else "en-US",
                viewport={"width": 1200, "height": 820},
            )
            page = context.new_page()
            page.goto(f"{base}/portal/login")
            page.fill("#email", user)
            page.fill("#password", DEMO_PASSWORD)
            page.click("button[type=submit].primary")
            page.wait_for_load_state()
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(HERE / name), full_page=False)
            context.close()
            print(HERE / name)
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    main()
