"""The tenant's own index dropped where another index leads with tenant_id: documents
(unique tenant_id, number) and the outbox (tenant_id, published_at). Each was one more
b-tree insert for every document and event, and answered nothing the other does not.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_documents_tenant_id", table_name="documents")
    op.drop_index("ix_outbox_tenant_id", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_tenant_id", "outbox", ["tenant_id"])
    op.create_index("ix_documents_tenant_id", "documents", ["tenant_id"])
