"""Account changes: a row for every update of an account, written by a trigger.

A bill-run batch on SQLite is computed outside the write lock and checked under it against
what changed meanwhile. Its accounts were read again for that, one random lookup each
with a page cache that another connection's commit has emptied (4 % of the workers' time
at a million, all of it with the write lock held). With this table the check reads only
the rows added since the batch's snapshot (see ``schema.account_changes``). The trigger,
not the code that updates accounts, writes them, so no update can be missed.

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
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER accounts_changed AFTER UPDATE ON accounts "
            "BEGIN INSERT INTO account_changes (account_id) VALUES (NEW.id); END"
        )
    else:
        op.execute(
            "CREATE FUNCTION note_account_change() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO account_changes (account_id) VALUES (NEW.id); "
            "RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER accounts_changed AFTER UPDATE ON accounts "
            "FOR EACH ROW EXECUTE FUNCTION note_account_change()"
        )


def downgrade() -> None:
    op.execute("DROP TRIGGER accounts_changed" + ("" if _sqlite() else " ON accounts"))
    if not _sqlite():
        op.execute("DROP FUNCTION note_account_change()")
    op.drop_table("account_changes")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
