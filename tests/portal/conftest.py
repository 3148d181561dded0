"""The portal over the demo data (``prorata setup``'s tenants, users and passwords).

The demo is loaded once per session into a template SQLite file (at :data:`DEMO_NOW`);
each test gets a copy, so journeys never see each other's changes.

- ``portal``: the app behind a TestClient (fast; HTML checked as text), with ``login``.
- ``site``: the same app served by uvicorn on a free loopback port, for Playwright; its
  database and clock are swapped per test. ``browser`` is Debian's Chromium
  (``/usr/bin/chromium``, installed by ``make test``), never a downloaded one.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from prorata.adapters import schema as t
from prorata.adapters.database import make_engine, migrate
from prorata.entrypoints.setup import DEMO_PASSWORD, load_demo
from prorata.services.access import Principal

DEMO_NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    path = folder / "demo.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    load_demo(engine, now=DEMO_NOW)
    engine.dispose()  # the last connection closed checkpoints the WAL into the file
    return path


@pytest.fixture
def demo_engine(demo_template, tmp_path) -> Engine:
    path = tmp_path / "portal.db"
    shutil.copy(demo_template, path)
    wal = demo_template.with_name(demo_template.name + "-wal")
    if wal.exists():
        shutil.copy(wal, path.with_name(path.name + "-wal"))
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@dataclass
class Clock:
    now: datetime = DEMO_NOW

    def __call__(self) -> datetime:
        return self.now


def tenant_of(engine: Engine, slug: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(t.tenants.c.id).where(t.tenants.c.slug == slug)
        ).scalar_one()


def system(engine: Engine, slug: str) -> Principal:
    """The tenant acting as itself (test arrangements made through the services)."""
    return Principal(tenant_of(engine, slug), "system")


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Portal:
    engine: Engine
    clock: Clock
    client: TestClient
    language: str = "en"
    pages: list[str] = field(default_factory=list)

    def login(self, email: str, language: str = "en") -> TestClient:
        self.language = language
        self.client.cookies.clear()
        self.client.cookies.set("prorata_lang", language)
        page = self.client.get("/portal/login")
        token = CSRF.search(page.text).group(1)
        answer = self.client.post(
            "/portal/login",
            data={"email": email, "password": DEMO_PASSWORD, "csrf": token},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        return self.client

    def csrf(self, path: str = "/portal/products") -> str:
        return CSRF.search(self.client.get(path).text).group(1)


@pytest.fixture
def portal(demo_engine):
    from prorata.web.app import create_app

    clock = Clock()
    app = create_app(demo_engine, clock=clock)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield Portal(demo_engine, clock, client)


# a real server and a real browser -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Site:
    url: str
    app: object
    clock: Clock
    engine: Engine | None = None


@pytest.fixture(scope="session")
def server():
    import uvicorn

    from prorata.web.app import create_app

    clock = Clock()
    app = create_app(make_engine("sqlite://"), clock=clock)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", workers=1)
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True, name="portal-server")
    thread.start()
    deadline = time.monotonic() + 20
    while not runner.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the portal server did not start")
        time.sleep(0.05)
    yield Site(f"http://127.0.0.1:{port}", app, clock)
    runner.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def site(server, demo_engine):
    """The served app, over this test's copy of the demo, at the demo instant."""
    server.app.state.engine = demo_engine
    server.clock.now = DEMO_NOW
    server.engine = demo_engine
    yield server


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing while CI=true (make test installs it)")
        pytest.skip(f"{CHROMIUM} is missing: run make test (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, site):
    """``open_page(email, language)``: a new browser context signed in as ``email``."""
    contexts = []

    def open_as(email: str, language: str):
        context = browser.new_context(
            locale="fr-FR" if language == "fr" else "en-US",
            accept_downloads=True,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{site.url}/portal/login")
        page.get_by_label("E-mail" if language == "en" else "Adresse e-mail").fill(email)
        page.get_by_label("Password" if language == "en" else "Mot de passe").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in" if language == "en" else "Connexion").click()
        page.wait_for_url(re.compile(r".*/portal/(products|backoffice).*"))
        return page

    yield open_as
    for context in contexts:
        context.close()
