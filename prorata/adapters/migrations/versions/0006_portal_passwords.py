"""Portal passwords: a scrypt hash per user who signs in to the customer portal or the back
office with an e-mail address and a password.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_passwords",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hash", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_portal_passwords_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_portal_passwords")),
    )


def downgrade() -> None:
    op.drop_table("portal_passwords")
