"""Payments: gateway tokens on accounts, failed attempts and refunds as payments, the
collections that follow each invoice through dunning, and the e-mails that tell the
customer.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_token", sa.String(length=200), nullable=True))

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="charge", nullable=False)
        )
        batch_op.add_column(
            sa.Column("status", sa.String(length=24), server_default="succeeded", nullable=False)
        )
        batch_op.add_column(sa.Column("reference", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("refund_of", _ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_payments_refund_of_payments"), "payments", ["refund_of"], ["id"]
        )

    op.create_table(
        "collections",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("document_id", _ID, nullable=False),
        sa.Column("subscriptions", sa.Text(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", sa.String(length=24), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_collections_document_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_collections_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
        sa.UniqueConstraint("document_id", name=op.f("uq_collections_document_id")),
    )
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collections_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_collections_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "emails",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("outbox_id", _ID, nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_emails_outbox_id_outbox")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_emails_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emails")),
        sa.UniqueConstraint("outbox_id", "recipient", name=op.f("uq_emails_outbox_id_recipient")),
    )
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.create_index("ix_emails_pending", ["status", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_emails_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_emails_tenant_id"))
        batch_op.drop_index("ix_emails_pending")
    op.drop_table("emails")
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collections_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_collections_next_attempt_at"))
    op.drop_table("collections")

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_payments_refund_of_payments"), type_="foreignkey")
        batch_op.drop_column("refund_of")
        batch_op.drop_column("reference")
        batch_op.drop_column("status")
        batch_op.drop_column("kind")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("payment_token")
