"""How each closed work item ended: done, failed (for a reason retrying cannot fix) or cancelled.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cryolive_work_item") as table:
        table.add_column(sa.Column("outcome", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cryolive_work_item") as table:
        table.drop_column("outcome")
