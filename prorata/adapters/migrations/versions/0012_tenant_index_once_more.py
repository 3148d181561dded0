"""The tenant's own index dropped on the other tables where a unique constraint leads with
tenant_id (as 0007 did for documents and the outbox): catalog versions, accounts, users,
subscriptions, requests, idempotency keys and carts. Each answered nothing the unique
constraint's index does not, and cost one more b-tree entry for every row written; on
PostgreSQL also for every update of a subscription's head (a bill run's renewal), which
changes its indexed due instant, so that every index of the table takes a new entry.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = (
    "catalog_versions",
    "accounts",
    "users",
    "subscriptions",
    "requests",
    "idempotency_keys",
    "carts",
)


def upgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_tenant_id", table_name=table)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.create_index(f"ix_{table}_tenant_id", table, ["tenant_id"])
