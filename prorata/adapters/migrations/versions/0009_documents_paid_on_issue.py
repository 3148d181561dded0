"""Whether an invoice was paid when it was issued, kept apart from its status (which a later
payment or a void changes): an invoice's PDF states the invoice as issued, so it may say
"paid" only from this.

Invoices written before this revision are marked from what the store holds: nothing was
due, or a succeeded charge without a gateway reference dated at its issue instant and no
collection (the charge recorded with an auto-pay invoice without a gateway token). A
payment by hand recorded at the very instant of issue would read as paid on issue; the
PDFs already stored are not rendered again either way.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ALTER TABLE, also on SQLite: a batch would copy the table, which other tables
    # reference (its DROP fails with foreign keys on once there are rows)
    op.add_column(
        "documents",
        sa.Column("paid_on_issue", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    documents = sa.table(
        "documents",
        sa.column("id"),
        sa.column("type"),
        sa.column("issued_at"),
        sa.column("amount_due_minor"),
        sa.column("paid_on_issue"),
    )
    payments = sa.table(
        "payments",
        sa.column("document_id"),
        sa.column("kind"),
        sa.column("status"),
        sa.column("paid_at"),
        sa.column("reference"),
    )
    collections = sa.table("collections", sa.column("document_id"))
    charged_on_issue = sa.exists().where(
        payments.c.document_id == documents.c.id,
        payments.c.kind == "charge",
        payments.c.status == "succeeded",
        payments.c.paid_at == documents.c.issued_at,
        payments.c.reference.is_(None),
    )
    collected = sa.exists().where(collections.c.document_id == documents.c.id)
    op.execute(
        documents.update()
        .where(
            documents.c.type == "invoice",
            sa.or_(documents.c.amount_due_minor == 0, sa.and_(charged_on_issue, ~collected)),
        )
        .values(paid_on_issue=sa.true())
    )


def downgrade() -> None:
    op.drop_column("documents", "paid_on_issue")  # SQLite 3.35 or newer
