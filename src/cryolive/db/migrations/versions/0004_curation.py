"""Exposure curation: each data collection's thresholds and each movie's decision (ISPyB has
no column for either).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cryolive_curation_thresholds",
        sa.Column("data_collection_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("thresholds", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=True),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("data_collection_id", name="pk_cryolive_curation_thresholds"),
    )
    op.create_table(
        "cryolive_curation_decision",
        sa.Column("movie_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data_collection_id", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("manual", sa.String(8), nullable=True),
        sa.Column("manual_by", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("movie_id", name="pk_cryolive_curation_decision"),
    )
    op.create_index(
        "ix_cryolive_curation_decision_data_collection_id",
        "cryolive_curation_decision",
        ["data_collection_id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_cryolive_curation_decision_data_collection_id",
        table_name="cryolive_curation_decision",
    )
    op.drop_table("cryolive_curation_decision")
    op.drop_table("cryolive_curation_thresholds")
