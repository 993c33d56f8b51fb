"""Alerts (occurrences with history, per-visit opt-in) and paused data collections with their
held work.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cryolive_alert",
        sa.Column("alert_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("data_collection_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.String(1000), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
        sa.Column("delivery", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_cryolive_alert"),
    )
    op.create_index("ix_cryolive_alert_key_cleared_at", "cryolive_alert", ["key", "cleared_at"])
    op.create_index("ix_cryolive_alert_session_id", "cryolive_alert", ["session_id"])
    op.create_table(
        "cryolive_visit_alerts",
        sa.Column("session_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_cryolive_visit_alerts"),
    )
    op.create_table(
        "cryolive_paused_collection",
        sa.Column("data_collection_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("paused_by", sa.String(64), nullable=False),
        sa.Column("paused_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("data_collection_id", name="pk_cryolive_paused_collection"),
    )
    op.create_table(
        "cryolive_held_work",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("data_collection_id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("held_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_cryolive_held_work"),
    )
    op.create_index(
        "ix_cryolive_held_work_data_collection_id", "cryolive_held_work", ["data_collection_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_cryolive_held_work_data_collection_id", table_name="cryolive_held_work")
    op.drop_table("cryolive_held_work")
    op.drop_table("cryolive_paused_collection")
    op.drop_table("cryolive_visit_alerts")
    op.drop_index("ix_cryolive_alert_session_id", table_name="cryolive_alert")
    op.drop_index("ix_cryolive_alert_key_cleared_at", table_name="cryolive_alert")
    op.drop_table("cryolive_alert")
