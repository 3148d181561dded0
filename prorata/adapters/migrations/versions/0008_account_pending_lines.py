"""Lines waiting on an account for its next invoice: the pending lines and credit of a
subscription cancelled at once without a final invoice (Stripe's prorate=true with
invoice_now=false), as codec text; NULL when none.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("pending_lines", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("pending_lines")
