"""Users' choices of 2D classes (over the automatic selection), when each 2D classification
ran, and workers' heartbeats.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cryolive_class_choice",
        sa.Column("particle_classification_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("selected", sa.Boolean(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("chosen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("particle_classification_id", name="pk_cryolive_class_choice"),
    )
    op.create_table(
        "cryolive_classification_time",
        sa.Column(
            "particle_classification_group_id", sa.Integer(), autoincrement=False, nullable=False
        ),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint(
            "particle_classification_group_id", name="pk_cryolive_classification_time"
        ),
    )
    op.create_table(
        "cryolive_worker_heartbeat",
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("queues", sa.String(255), nullable=False),
        sa.Column("consumers", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(128), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("beat_at", sa.DateTime(), nullable=False),
        sa.Column("handled", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("worker", name="pk_cryolive_worker_heartbeat"),
    )
    op.create_index(
        "ix_cryolive_worker_heartbeat_beat_at", "cryolive_worker_heartbeat", ["beat_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_cryolive_worker_heartbeat_beat_at", table_name="cryolive_worker_heartbeat")
    op.drop_table("cryolive_worker_heartbeat")
    op.drop_table("cryolive_classification_time")
    op.drop_table("cryolive_class_choice")
