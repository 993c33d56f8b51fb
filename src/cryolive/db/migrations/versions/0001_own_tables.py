"""cryolive's own tables: natural keys, local credentials, work ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cryolive_work_key",
        sa.Column("natural_key", sa.BINARY(16), nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.func.current_timestamp(), nullable=False
        ),
        sa.PrimaryKeyConstraint("natural_key", name="pk_cryolive_work_key"),
    )
    op.create_table(
        "cryolive_credential",
        sa.Column("person_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name="pk_cryolive_credential"),
    )
    op.create_table(
        "cryolive_work_item",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_cryolive_work_item"),
    )
    op.create_index(
        "ix_cryolive_work_item_open", "cryolive_work_item", ["done_at", "dispatched_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_cryolive_work_item_open", table_name="cryolive_work_item")
    op.drop_table("cryolive_work_item")
    op.drop_table("cryolive_credential")
    op.drop_table("cryolive_work_key")
