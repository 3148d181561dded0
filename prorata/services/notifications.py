"""E-mails to the customer at each step of a payment or a request, from the outbox.

``fan_out`` turns each outbox event of :data:`TOPICS` into one e-mail per person who
receives the account's billing mail (its owners and billing contacts), written in the
account's language with amounts formatted by Babel; ``send_pending`` sends them by SMTP.

Invariants: an (event, recipient) pair gets at most one e-mail row (unique key), so fanning
out twice, or from two processes, adds nothing; an e-mail is marked ``sent`` only after
the SMTP server accepted it (a crash in between sends it again: at least once); after
``MAX_ATTEMPTS`` failures it is ``failed`` and kept with its last error.
"""

from __future__ import annotations

import json
import smtplib
from datetime import datetime
from decimal import Decimal
from email.message import EmailMessage

from babel.numbers import format_currency
from sqlalchemy import Engine, and_, insert, select, update

from prorata.adapters import schema as t

MAX_ATTEMPTS = 5
TOPICS = (
    "payment.failed",
    "payment.succeeded",
    "subscription.past_due",
    "subscription.suspended",
    "subscription.cancelled",
    "subscription.reactivated",
    "refund.succeeded",
    "request.fulfilled",
)
RECEIVING_ROLES = ("owner", "billing_contact")

_MAIL = {
    "en": {
        "payment.failed": (
            "Payment of invoice {invoice} failed",
            "We could not collect {amount} for invoice {invoice} ({outcome}).{retry}",
        ),
        "payment.succeeded": (
            "Payment received for invoice {invoice}",
            "We received {amount} for invoice {invoice}. Thank you.",
        ),
        "subscription.past_due": (
            "Your subscription {subscription} is past due",
            "Invoice {invoice} is unpaid: please update your payment method or pay it.",
        ),
        "subscription.suspended": (
            "Your subscription {subscription} is suspended",
            "Invoice {invoice} is still unpaid after our last attempt; the service is "
            "suspended until it is paid.",
        ),
        "subscription.cancelled": (
            "Your subscription {subscription} is cancelled",
            "Invoice {invoice} is still unpaid after our last attempt; the subscription "
            "has been cancelled.",
        ),
        "subscription.reactivated": (
            "Your subscription {subscription} is active again",
            "Thank you: everything is paid and the service is active again.",
        ),
        "refund.succeeded": (
            "Refund of {amount}",
            "We refunded {amount} (credit note {credit_note}) to your payment method.",
        ),
        "request.fulfilled": (
            "Your service {subscription} is ready",
            "The change you ordered (request {number}) has been set up and is ready to use.",
        ),
    },
    "fr": {
        "payment.failed": (
            "Échec du paiement de la facture {invoice}",
            "Nous n'avons pas pu prélever {amount} pour la facture {invoice} ({outcome}).{retry}",
        ),
        "payment.succeeded": (
            "Paiement reçu pour la facture {invoice}",
            "Nous avons bien reçu {amount} pour la facture {invoice}. Merci.",
        ),
        "subscription.past_due": (
            "Votre abonnement {subscription} est en retard de paiement",
            "La facture {invoice} est impayée : mettez à jour votre moyen de paiement ou "
            "réglez-la.",
        ),
        "subscription.suspended": (
            "Votre abonnement {subscription} est suspendu",
            "La facture {invoice} reste impayée après notre dernière tentative ; le service "
            "est suspendu jusqu'à son règlement.",
        ),
        "subscription.cancelled": (
            "Votre abonnement {subscription} est résilié",
            "La facture {invoice} reste impayée après notre dernière tentative ; "
            "l'abonnement a été résilié.",
        ),
        "subscription.reactivated": (
            "Votre abonnement {subscription} est de nouveau actif",
            "Merci : tout est réglé et le service est de nouveau actif.",
        ),
        "refund.succeeded": (
            "Remboursement de {amount}",
            "Nous avons remboursé {amount} (avoir {credit_note}) sur votre moyen de paiement.",
        ),
        "request.fulfilled": (
            "Votre service {subscription} est prêt",
            "La modification commandée (demande {number}) est en place et prête à l'emploi.",
        ),
    },
}
_OUTCOMES = {
    "en": {
        "declined": "card declined",
        "insufficient_funds": "insufficient funds",
        "requires_action": "your confirmation is needed",
        "no_payment_method": "no payment method on file",
    },
    "fr": {
        "declined": "carte refusée",
        "insufficient_funds": "provision insuffisante",
        "requires_action": "votre confirmation est nécessaire",
        "no_payment_method": "aucun moyen de paiement enregistré",
    },
}
_RETRY = {"en": " We will try again on {when}.", "fr": " Nous réessaierons le {when}."}
_LOCALES = {"en": "en_US", "fr": "fr_FR"}


def compose(topic: str, payload: dict, locale: str, currency: str) -> tuple[str, str]:
    """The subject and body of the e-mail for one event, in ``locale`` (fr or en)."""
    lang = "fr" if locale.startswith("fr") else "en"
    values = {k: ("" if v is None else v) for k, v in payload.items()}
    if "amount" in payload:
        values["amount"] = format_currency(
            Decimal(payload["amount"]), currency, locale=_LOCALES[lang]
        )
    if "outcome" in payload:
        values["outcome"] = _OUTCOMES[lang].get(payload["outcome"], payload["outcome"])
    retry = ""
    if payload.get("next_attempt_at"):
        when = datetime.fromisoformat(payload["next_attempt_at"]).date().isoformat()
        retry = _RETRY[lang].format(when=when)
    values["retry"] = retry
    subject, body = _MAIL[lang][topic]
    return subject.format(**values), body.format(**values)


def _account_of(connection, tenant_id: int, payload: dict):
    """The account an event concerns: named in it, or the subscription's."""
    accounts = t.accounts
    if "account" in payload:
        where = accounts.c.key == payload["account"]
    else:
        where = accounts.c.id == (
            select(t.subscriptions.c.account_id)
            .where(
                t.subscriptions.c.tenant_id == tenant_id,
                t.subscriptions.c.key == payload["subscription"],
            )
            .scalar_subquery()
        )
    return connection.execute(
        select(accounts.c.id, accounts.c.locale).where(accounts.c.tenant_id == tenant_id, where)
    ).one_or_none()


def fan_out(engine: Engine, *, limit: int = 500) -> int:
    """E-mails for the outbox events that have none yet; how many were written."""
    written = 0
    with engine.begin() as connection:
        events = connection.execute(
            select(t.outbox, t.tenants.c.currency)
            .join(t.tenants, t.tenants.c.id == t.outbox.c.tenant_id)
            .outerjoin(t.emails, t.emails.c.outbox_id == t.outbox.c.id)
            .where(t.outbox.c.topic.in_(TOPICS), t.emails.c.id.is_(None))
            .order_by(t.outbox.c.id)
            .limit(limit)
        ).all()
        for event in events:
            payload = json.loads(event.payload)
            account = _account_of(connection, event.tenant_id, payload)
            if account is None:
                continue
            recipients = connection.execute(
                select(t.users.c.email)
                .join(t.memberships, t.memberships.c.user_id == t.users.c.id)
                .where(
                    t.memberships.c.account_id == account.id,
                    t.memberships.c.role.in_(RECEIVING_ROLES),
                )
                .order_by(t.users.c.email)
            ).scalars()
            subject, body = compose(event.topic, payload, account.locale, event.currency)
            rows = [
                {
                    "tenant_id": event.tenant_id,
                    "outbox_id": event.id,
                    "recipient": email,
                    "locale": account.locale,
                    "subject": subject,
                    "body": body,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": event.created_at,
                }
                for email in dict.fromkeys(recipients)
            ]
            if rows:
                connection.execute(insert(t.emails), rows)
                written += len(rows)
    return written


def send_pending(engine: Engine, host: str, port: int, sender: str, now: datetime) -> int:
    """Send the pending e-mails by SMTP; how many the server accepted."""
    with engine.connect() as connection:
        pending = connection.execute(
            select(t.emails).where(t.emails.c.status == "pending").order_by(t.emails.c.id)
        ).all()
    sent = 0
    for mail in pending:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = mail.recipient
        message["Subject"] = mail.subject
        message["Content-Language"] = mail.locale
        message.set_content(mail.body)
        error = None
        try:
            with smtplib.SMTP(host, port, timeout=10) as smtp:
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        with engine.begin() as connection:
            if error is None:
                values = {"status": "sent", "sent_at": now, "attempts": mail.attempts + 1}
                sent += 1
            else:
                failed = mail.attempts + 1 >= MAX_ATTEMPTS
                values = {
                    "status": "failed" if failed else "pending",
                    "attempts": mail.attempts + 1,
                    "last_error": error,
                }
            connection.execute(
                update(t.emails)
                .where(and_(t.emails.c.id == mail.id, t.emails.c.status == "pending"))
                .values(**values)
            )
    return sent
