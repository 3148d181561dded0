"""The database schema (SQLAlchemy Core tables); Alembic migrations create it.

Invariants the schema itself enforces:
- every row belongs to one tenant, directly or through its parent; external keys
  (account, subscription, document number, request number, idempotency key) are unique
  per tenant, never globally, so tenants cannot collide or see each other's ids;
- subscription terms, documents, document lines, ledger entries, payments, the audit log
  and the outbox are append-only: services insert them and never update their content
  (an invoice's ``status`` and an outbox row's delivery columns are the only updates);
- amounts are integers of minor units (``*_minor``) with the currency beside them; rates
  and unit prices are exact decimal text; instants are stored in UTC (:class:`Instant`);
- ``number_series.last`` is the last number issued in a series: numbers are gapless
  because the increment commits or rolls back with the document that uses it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Instant(TypeDecorator):
    """An aware datetime stored in UTC; read back as an aware UTC datetime.

    PostgreSQL keeps it in ``timestamptz``; SQLite, which has no time zones, keeps the
    UTC wall time. Naive datetimes are refused: every instant in prorata has a zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        utc = _in_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def bind_processor(self, dialect):
        """On SQLite, :func:`sqlite_text` at once: the text that ``process_bind_param``
        followed by SQLite's ``DATETIME`` processor writes, made without the naive copy
        and the ``%`` format of every field (a bill run binds several instants a renewal)."""
        if dialect.name == "sqlite":
            return sqlite_text
        return super().bind_processor(dialect)


def _in_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is refused."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: give it a time zone")
    return value.astimezone(UTC)


_TWO_DIGITS = tuple(f"{n:02d}" for n in range(100))


def sqlite_text(value: datetime | None) -> str | None:
    """How SQLite keeps an instant: its UTC wall time as ``YYYY-MM-DD HH:MM:SS.ffffff``
    (``isoformat(" ", "microseconds")`` without the offset, put together from the fields:
    ``isoformat`` formats its fields and the offset through C's ``printf``, several times
    the cost, and a bill run binds several instants a renewal)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = _in_utc(value)
    two = _TWO_DIGITS
    micro = value.microsecond
    return (
        f"{value.year:04d}-{two[value.month]}-{two[value.day]} "
        f"{two[value.hour]}:{two[value.minute]}:{two[value.second]}."
        f"{'000000' if micro == 0 else f'{micro:06d}'}"
    )


def _id() -> Column:
    return Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _tenant(index: bool = True) -> Column:
    """The owning tenant; indexed unless another index of the table leads with it."""
    return Column("tenant_id", ForeignKey("tenants.id"), nullable=False, index=index)


def _created() -> Column:
    return Column("created_at", Instant, nullable=False)


def now_utc() -> datetime:
    """Only adapters read the clock; the core is given instants."""
    return datetime.now(UTC)


tenants = Table(
    "tenants",
    metadata,
    _id(),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("timezone", String(64), nullable=False),
    _created(),
    # the seller's identity on its documents (migration 0003)
    Column("legal_name", String(200)),
    Column("address", Text),  # lines separated by newlines
    Column("country", String(2), nullable=False, server_default="FR"),
    Column("vat_id", String(32)),
    Column("siren", String(16)),
    Column("payment_terms_days", Integer, nullable=False, server_default="30"),
)

catalog_versions = Table(
    "catalog_versions",
    metadata,
    _id(),
    _tenant(),
    Column("version", Integer, nullable=False),
    Column("catalog", Text, nullable=False),  # codec text of core.catalog.Catalog
    Column("policy", Text, nullable=False),  # codec text of core.policy.Policy
    Column("policy_spec", Text, nullable=False),  # JSON as written by the tenant
    _created(),
    UniqueConstraint("tenant_id", "version"),
)

accounts = Table(
    "accounts",
    metadata,
    _id(),
    _tenant(),
    Column("key", String(100), nullable=False),
    Column("name", String(200), nullable=False, server_default=""),
    Column("locale", String(16), nullable=False),
    Column("auto_pay", Boolean, nullable=False),
    Column("payment_method", String(32)),
    Column("tax_rate", String(16), nullable=False),  # percent, exact decimal text
    Column("vat_id", String(32)),
    _created(),
    Column("address", Text),  # the buyer's address on documents; lines separated by newlines
    Column("country", String(2)),
    Column("payment_token", String(200)),  # a gateway token, never a card number (0005)
    # codec text of the documents.Line tuple waiting for the account's next invoice (an
    # ended subscription's pending lines, 0008); NULL when none
    Column("pending_lines", Text),
    UniqueConstraint("tenant_id", "key"),
)

# SQLite: one row for every update of an account row, written by a trigger on ``accounts``
# (0011), whatever statement made it. Ids follow the order in which the writes were
# committed (one writer at a time) and are never used twice (AUTOINCREMENT, even if rows
# are deleted), so the rows above the largest id a reader saw are exactly the updates
# committed since: a bill-run batch computed outside the write lock checks its accounts
# that way (batch_reading.py). A rebuilt ``accounts`` (a batch ALTER in recreate mode)
# loses the trigger: create it again (tests/store/test_database.py checks it is there).
# PostgreSQL locks a batch's accounts instead: no trigger, the table stays empty.
account_changes = Table(
    "account_changes",
    metadata,
    _id(),
    Column("account_id", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    sqlite_autoincrement=True,
)

users = Table(
    "users",
    metadata,
    _id(),
    _tenant(),
    Column("email", String(254), nullable=False),
    Column("name", String(200), nullable=False, server_default=""),
    Column("locale", String(16), nullable=False, server_default="en"),
    Column("staff_role", String(32)),  # support | account_manager | NULL (a customer)
    _created(),
    UniqueConstraint("tenant_id", "email"),
)

memberships = Table(
    "memberships",
    metadata,
    _id(),
    Column("user_id", ForeignKey("users.id"), nullable=False),
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("role", String(32), nullable=False),  # owner | billing_contact | member
    UniqueConstraint("user_id", "account_id"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    _id(),
    _tenant(),
    Column("key", String(100), nullable=False),
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("version", Integer, nullable=False),  # the current terms' version
    Column("status", String(16), nullable=False),
    Column("plan", String(100), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("due_at", Instant),  # next renewal or scheduled end; NULL when nothing is due
    _created(),
    UniqueConstraint("tenant_id", "key"),
    Index("ix_subscriptions_due", "tenant_id", "due_at"),
)

subscription_terms = Table(
    "subscription_terms",
    metadata,
    _id(),
    Column("subscription_id", ForeignKey("subscriptions.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("valid_from", Instant, nullable=False),
    Column("reason", String(32), nullable=False),  # subscribe | change | renewal | ...
    Column("plan", String(100), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("period_start", Instant),
    Column("period_end", Instant),
    Column("state", Text, nullable=False),  # codec text of core.subscription.Subscription
    _created(),
    UniqueConstraint("subscription_id", "version"),
)

seat_assignments = Table(
    "seat_assignments",
    metadata,
    _id(),
    Column("subscription_id", ForeignKey("subscriptions.id"), nullable=False),
    Column("user_id", ForeignKey("users.id"), nullable=False),
    Column("assigned_at", Instant, nullable=False),
    Column("assigned_by", ForeignKey("users.id")),
    Column("released_at", Instant),
    Column("released_by", ForeignKey("users.id")),
    Index(
        "uq_seat_assignments_held",
        "subscription_id",
        "user_id",
        unique=True,
        sqlite_where=text("released_at IS NULL"),
        postgresql_where=text("released_at IS NULL"),
    ),
)

orders = Table(
    "orders",
    metadata,
    _id(),
    _tenant(),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("created_by", ForeignKey("users.id")),
    Column("status", String(16), nullable=False),  # completed | partly_pending
    _created(),
)

order_items = Table(
    "order_items",
    metadata,
    _id(),
    Column("order_id", ForeignKey("orders.id"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("subscription_id", ForeignKey("subscriptions.id"), nullable=False),
    Column("action", Text, nullable=False),  # codec text of core.model.Change
    Column("expected_version", Integer),
    Column("outcome", String(16), nullable=False),  # applied | scheduled | requested
    UniqueConstraint("order_id", "position"),
)

requests = Table(
    "requests",
    metadata,
    _id(),
    _tenant(),
    Column("number", Integer, nullable=False),
    Column("subscription_id", ForeignKey("subscriptions.id"), nullable=False, index=True),
    Column("reason", String(32), nullable=False),  # approval_required | manual_fulfillment
    Column("action", Text, nullable=False),  # codec text of the Change or Cancel
    Column("state", String(16), nullable=False),  # pending | approved | rejected | fulfilled
    Column("order_id", ForeignKey("orders.id")),
    Column("requested_by", ForeignKey("users.id")),
    Column("decided_by", ForeignKey("users.id")),
    Column("decided_at", Instant),
    _created(),
    UniqueConstraint("tenant_id", "number"),
)

number_series = Table(
    "number_series",
    metadata,
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("series", String(16), primary_key=True),
    Column("last", Integer, nullable=False),
)

documents = Table(
    "documents",
    metadata,
    _id(),
    _tenant(index=False),  # unique (tenant_id, number) leads with it
    Column("number", String(32), nullable=False),
    Column("type", String(16), nullable=False),  # invoice | credit_note
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("issued_at", Instant, nullable=False),
    Column("subtotal_minor", BigInteger, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("credit_applied_minor", BigInteger, nullable=False),
    Column("credit_added_minor", BigInteger, nullable=False),
    Column("amount_due_minor", BigInteger, nullable=False),
    Column("tax_rate", String(16), nullable=False),
    Column("status", String(16)),  # invoices: open | paid | void, as they are now
    # invoices: paid when issued (nothing due, or auto-pay without a gateway token: its
    # charge recorded with it); never changed, unlike status. What its PDF may say
    Column("paid_on_issue", Boolean, nullable=False, server_default=false()),
    Column("refers_to", String(32)),  # credit notes: the invoice corrected
    Column("credited_to", String(16)),  # credit notes: account | refund | invoice
    Column("order_id", ForeignKey("orders.id")),
    UniqueConstraint("tenant_id", "number"),
)

document_lines = Table(
    "document_lines",
    metadata,
    _id(),
    Column("document_id", ForeignKey("documents.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("subscription_key", String(100), nullable=False),
    Column("plan", String(100), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("period_start", Instant),
    Column("period_end", Instant),
    Column("fraction", String(64)),  # "numerator/denominator"
    Column("unit_price", String(32)),
    Column("explanation", Text, nullable=False, server_default=""),
    UniqueConstraint("document_id", "position"),
)

payments = Table(
    "payments",
    metadata,
    _id(),
    _tenant(),
    Column("document_id", ForeignKey("documents.id"), nullable=False, index=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("method", String(32)),
    Column("paid_at", Instant, nullable=False),
    # migration 0005: failed attempts and refunds are payments too
    Column("kind", String(16), nullable=False, server_default="charge"),  # charge | refund
    Column("status", String(24), nullable=False, server_default="succeeded"),
    Column("reference", String(64)),  # the gateway's id
    Column("refund_of", ForeignKey("payments.id")),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    _id(),
    _tenant(),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # + adds credit, - consumes it
    Column("document_number", String(32), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("at", Instant, nullable=False),
    Index("ix_ledger_entries_account", "account_id", "currency"),
)

audit_log = Table(
    "audit_log",
    metadata,
    _id(),
    _tenant(),
    Column("at", Instant, nullable=False),
    Column("actor_user_id", ForeignKey("users.id")),
    Column("actor_role", String(32), nullable=False),
    Column("on_behalf_of", ForeignKey("accounts.id")),  # set when staff act for a customer
    Column("action", String(64), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("before", Text),
    Column("after", Text),
    Column("request_id", String(100)),
)

outbox = Table(
    "outbox",
    metadata,
    _id(),
    _tenant(index=False),  # ix_outbox_unpublished (tenant_id, published_at) leads with it
    Column("topic", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    _created(),
    Column("published_at", Instant),  # set when fanned out to the webhook endpoints
    Column("attempts", Integer, nullable=False, server_default="0"),
    Index("ix_outbox_unpublished", "tenant_id", "published_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _id(),
    _tenant(),
    Column("key", String(200), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("response", Text, nullable=False),
    _created(),
    UniqueConstraint("tenant_id", "key"),
)

# --- API access, carts and webhooks (migration 0002) --------------------------------------

api_tokens = Table(
    "api_tokens",
    metadata,
    _id(),
    _tenant(),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),  # public part, for lookup
    Column("secret_hash", String(64), nullable=False),  # sha256 hex of the whole token
    Column("scopes", String(200), nullable=False),  # space-separated
    _created(),
    Column("expires_at", Instant),
    Column("revoked_at", Instant),
)

sessions = Table(
    "sessions",
    metadata,
    _id(),
    _tenant(),
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False, unique=True),  # sha256 hex
    _created(),
    Column("expires_at", Instant, nullable=False),
    Column("revoked_at", Instant),
)

carts = Table(
    "carts",
    metadata,
    _id(),
    _tenant(),
    Column("key", String(40), nullable=False),
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("created_by", ForeignKey("users.id")),
    Column("status", String(16), nullable=False),  # open | checked_out
    Column("order_id", ForeignKey("orders.id")),
    _created(),
    UniqueConstraint("tenant_id", "key"),
)

cart_items = Table(
    "cart_items",
    metadata,
    _id(),
    Column("cart_id", ForeignKey("carts.id"), nullable=False, index=True),
    Column("subscription_key", String(100), nullable=False),
    Column("body", Text, nullable=False),  # JSON of the ChangeInput
    UniqueConstraint("cart_id", "subscription_key"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    _id(),
    _tenant(),
    Column("url", String(2000), nullable=False),
    Column("topics", String(1000), nullable=False),  # space-separated; "*" for all
    Column("secret", String(100), nullable=False),
    Column("previous_secret", String(100)),  # still signed with until previous_expires_at
    Column("previous_expires_at", Instant),
    Column("active", Boolean, nullable=False),
    _created(),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(),
    _tenant(),
    Column("endpoint_id", ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("outbox_id", ForeignKey("outbox.id"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Instant),
    Column("delivered_at", Instant),
    _created(),
    UniqueConstraint("endpoint_id", "outbox_id"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    _id(),
    Column("delivery_id", ForeignKey("webhook_deliveries.id"), nullable=False, index=True),
    Column("at", Instant, nullable=False),
    Column("status_code", Integer),  # NULL: no HTTP answer (refused, timeout)
    Column("error", String(500)),
    Column("duration_ms", Integer, nullable=False),
)


# --- rendered documents (migration 0003) --------------------------------------------------

renderings = Table(
    "renderings",
    metadata,
    _id(),
    _tenant(),
    Column("document_id", ForeignKey("documents.id"), unique=True),  # an invoice or credit note
    Column("payment_id", ForeignKey("payments.id"), unique=True),  # or a payment's receipt
    Column("media_type", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    _created(),
)

# --- bill runs (migration 0004) -----------------------------------------------------------

renewals = Table(
    "renewals",
    metadata,
    _id(),
    _tenant(),
    Column("subscription_id", ForeignKey("subscriptions.id"), nullable=False),
    Column("due_at", Instant, nullable=False),  # the period end (or scheduled end) renewed
    Column("document_number", String(32)),  # the renewal invoice, if one was issued
    Column("bill_run", String(40)),  # which bill run renewed it (NULL: caught up by a service)
    _created(),
    # exactly once: a subscription is renewed once for each instant it fell due; instant
    # first, so that a bill run's keys, written in due order, land side by side (0010)
    UniqueConstraint("due_at", "subscription_id"),
)

# the bill run claims across tenants by due instant
Index("ix_subscriptions_due_claim", subscriptions.c.due_at, subscriptions.c.id)

# --- collections (migration 0005) ---------------------------------------------------------

collections = Table(
    "collections",
    metadata,
    _id(),
    _tenant(),
    Column("document_id", ForeignKey("documents.id"), nullable=False, unique=True),
    Column("subscriptions", Text, nullable=False),  # JSON list of subscription keys
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("state", String(16), nullable=False),  # due | retrying | exhausted | paid | void
    Column("attempts", Integer, nullable=False),
    Column("first_failed_at", Instant),
    Column("next_attempt_at", Instant, index=True),
    Column("last_outcome", String(24)),
    Column("lease_until", Instant),  # a collector holds it until then (gateway call running)
)

# the customer's e-mails about their payments and requests, one per event and recipient
emails = Table(
    "emails",
    metadata,
    _id(),
    _tenant(),
    Column("outbox_id", ForeignKey("outbox.id"), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    _created(),
    Column("sent_at", Instant),
    Column("last_error", Text),
    UniqueConstraint("outbox_id", "recipient"),
    Index("ix_emails_pending", "status", "id"),
)

# --- portal passwords (migration 0006) ----------------------------------------------------

portal_passwords = Table(
    "portal_passwords",
    metadata,
    Column("user_id", ForeignKey("users.id"), primary_key=True),
    Column("hash", String(200), nullable=False),  # scrypt$n$r$p$salt$digest (hex)
    Column("updated_at", Instant, nullable=False),
)
