"""The API over the small world of tests/store/world.py, on SQLite and PostgreSQL.

``api`` gives a TestClient whose clock stands still at ``Api.now`` (2024-02-20 10:00 New
York; move it with ``api.now = ...``), and credentials for every kind of caller:
``api.headers(who)`` with ``who`` one of ``owner``, ``billing_contact``, ``member``,
``stranger`` (owner of another account), ``rival`` (owner in another tenant), ``support``,
``account_manager`` (portal sessions of those users), ``token`` (an API token with every
scope), ``read_token`` (scope ``read`` only), ``expired_token``, ``revoked_token``,
``rival_token`` (another tenant's), or ``none``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from prorata.adapters import schema as t
from prorata.services.credentials import SCOPES, issue_token, open_session_row
from tests.store.world import World, build

SESSION_USERS = ("owner", "billing_contact", "member", "stranger", "support", "account_manager")


@dataclass
class Api:
    client: TestClient
    world: World
    now: datetime
    credentials: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        headers = dict(extra)
        if who != "none":
            headers["Authorization"] = f"Bearer {self.credentials[who]}"
        return headers


def make_credentials(world: World, now: datetime) -> dict[str, str]:
    everything = list(SCOPES)
    found: dict[str, str] = {}
    with world.engine.begin() as connection:
        for who in SESSION_USERS:
            found[who], _ = open_session_row(
                connection, world.tenant, world.users[who], now=now, ttl=timedelta(days=3650)
            )
        found["rival"], _ = open_session_row(
            connection, world.other_tenant, world.users["rival"], now=now, ttl=timedelta(days=3650)
        )
        found["token"] = issue_token(
            connection, world.tenant, name="all", scopes=everything, now=now
        )
        found["read_token"] = issue_token(
            connection, world.tenant, name="read", scopes=["read"], now=now
        )
        found["expired_token"] = issue_token(
            connection,
            world.tenant,
            name="old",
            scopes=everything,
            now=now - timedelta(days=40),
            expires_at=now - timedelta(days=1),
        )
        found["revoked_token"] = issue_token(
            connection, world.tenant, name="revoked", scopes=everything, now=now
        )
        prefix = found["revoked_token"].split("_")[1]
        connection.execute(
            update(t.api_tokens).where(t.api_tokens.c.prefix == prefix).values(revoked_at=now)
        )
        found["rival_token"] = issue_token(
            connection, world.other_tenant, name="rival", scopes=everything, now=now
        )
    return found


@pytest.fixture
def api(engine):
    from prorata.web.app import create_app

    world = build(engine)
    holder = Api(client=None, world=world, now=world.at(20))  # type: ignore[arg-type]
    app = create_app(engine, clock=lambda: holder.now)
    holder.credentials = make_credentials(world, holder.now)
    with TestClient(app, raise_server_exceptions=False) as client:
        holder.client = client
        yield holder
