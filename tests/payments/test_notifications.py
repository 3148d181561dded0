"""The customer is told of each dunning step by e-mail: outbox events become e-mails in the
account's language, sent by SMTP to a local debugging server, each exactly once."""

from __future__ import annotations

import email
import email.policy
import socket
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from prorata.adapters import schema as t
from prorata.adapters.gateways import SandboxGateway
from prorata.adapters.tenants import add_membership, add_user
from prorata.scenario.on_store import simulate_on_store
from prorata.services import notifications
from tests.payments.test_collect_on_store import _drive, _scenario


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


def _people(engine):
    with engine.begin() as connection:
        tenant = connection.execute(
            select(t.tenants.c.id).where(t.tenants.c.slug == "dunning")
        ).scalar_one()
        for key, role in (("bad", "owner"), ("bad", "billing_contact"), ("bad", "member")):
            account = connection.execute(
                select(t.accounts.c.id).where(
                    t.accounts.c.tenant_id == tenant, t.accounts.c.key == key
                )
            ).scalar_one()
            user = add_user(connection, tenant, f"{role}@{key}.example", locale="fr")
            add_membership(connection, user, account, role)


def test_dunning_steps_are_mailed_in_the_accounts_language(engine, smtp):
    inbox, port = smtp
    simulate_on_store(_scenario(run_until=False), engine, slug="dunning")
    _people(engine)
    _drive(engine, SandboxGateway(), _scenario().run_until)
    now = datetime(2024, 3, 10, tzinfo=UTC)
    written = notifications.fan_out(engine)
    assert notifications.fan_out(engine) == 0  # once per event and recipient
    assert notifications.send_pending(engine, "127.0.0.1", port, "billing@prorata.test", now)
    assert notifications.send_pending(engine, "127.0.0.1", port, "x@y", now) == 0
    assert len(inbox.messages) == written
    # the member does not receive billing mail; owner and billing contact do, in French
    assert {m["To"] for m in inbox.messages} == {"owner@bad.example", "billing_contact@bad.example"}
    subjects = [m["Subject"] for m in inbox.messages if m["To"] == "owner@bad.example"]
    assert subjects[:3] == [
        "Échec du paiement de la facture INV-0004",
        "Votre abonnement b1 est en retard de paiement",
        "Échec du paiement de la facture INV-0004",
    ]
    assert "Votre abonnement b1 est suspendu" in subjects
    first = next(m for m in inbox.messages if m["Subject"].startswith("Échec"))
    body = first.get_content()
    assert "49,00\xa0€" in body and "carte refusée" in body and "2024-02-07" in body


def test_a_server_that_refuses_keeps_the_mail_pending_then_failed(engine):
    simulate_on_store(_scenario(run_until=False), engine, slug="dunning")
    _people(engine)
    _drive(engine, SandboxGateway(), _scenario().run_until)
    notifications.fan_out(engine)
    now = datetime(2024, 3, 10, tzinfo=UTC)
    closed = _free_port()  # nothing listens there
    for _ in range(notifications.MAX_ATTEMPTS):
        assert notifications.send_pending(engine, "127.0.0.1", closed, "b@p", now) == 0
    with engine.connect() as connection:
        states = set(connection.execute(select(t.emails.c.status)).scalars())
        errors = connection.execute(select(t.emails.c.last_error)).scalars().all()
    assert states == {"failed"} and all("Error" in e for e in errors)
