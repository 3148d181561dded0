"""The seller's identity on its documents (tenants), the buyer's address (accounts), and
the rendered PDFs of documents and receipts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "renderings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "document_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_renderings_document_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_renderings_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_renderings_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renderings")),
        sa.UniqueConstraint("document_id", name=op.f("uq_renderings_document_id")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_renderings_payment_id")),
    )
    with op.batch_alter_table("renderings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_renderings_tenant_id"), ["tenant_id"], unique=False)

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=True))

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("legal_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("address", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("country", sa.String(length=2), server_default="FR", nullable=False)
        )
        batch_op.add_column(sa.Column("vat_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("siren", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("payment_terms_days", sa.Integer(), server_default="30", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("payment_terms_days")
        batch_op.drop_column("siren")
        batch_op.drop_column("vat_id")
        batch_op.drop_column("country")
        batch_op.drop_column("address")
        batch_op.drop_column("legal_name")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("country")
        batch_op.drop_column("address")

    with op.batch_alter_table("renderings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_renderings_tenant_id"))

    op.drop_table("renderings")
