"""Account changes: on SQLite, a row for every update of an account, written by a trigger.

A bill-run batch on SQLite is computed outside the write lock and checked under it against
what changed meanwhile. Its accounts were read again for that, one random lookup each
with a page cache that another connection's commit has emptied (4 % of the workers' time
at a million, all of it with the write lock held). With this table the check reads only
the rows added since the batch's snapshot (see ``schema.account_changes``). The trigger,
not the code that updates accounts, writes them, so no update can be missed. PostgreSQL
locks a batch's accounts instead: the table is there, empty, and no trigger fills it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_changes")),
        sqlite_autoincrement=True,
    )
    if _sqlite():
        op.execute(
            "CREATE TRIGGER accounts_changed AFTER UPDATE ON accounts "
            "BEGIN INSERT INTO account_changes (account_id) VALUES (NEW.id); END"
        )


def downgrade() -> None:
    if _sqlite():
        op.execute("DROP TRIGGER accounts_changed")
    op.drop_table("account_changes")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
