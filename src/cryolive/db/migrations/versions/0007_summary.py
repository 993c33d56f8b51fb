"""The series summary: one compact row per movie and per motion-correction program, kept by
the writer, so a collection's charts read one table (cryolive's own: ISPyB's tables are only
read). Backfilled from the movies and results already recorded.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cryolive_series_row",
        sa.Column("data_collection_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("motion_program_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("movie_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("movie_number", sa.Integer(), nullable=True),
        sa.Column("created_s", sa.BigInteger(), nullable=True),
        sa.Column("path", sa.String(255), nullable=True),
        sa.Column("motion_correction_id", sa.Integer(), nullable=True),
        sa.Column("total_motion", sa.Float(), nullable=True),
        sa.Column("ctf_program_id", sa.Integer(), nullable=True),
        sa.Column("defocus", sa.Float(), nullable=True),
        sa.Column("astigmatism", sa.Float(), nullable=True),
        sa.Column("resolution", sa.Float(), nullable=True),
        sa.Column("ice_program_id", sa.Integer(), nullable=True),
        sa.Column("ice_median", sa.Float(), nullable=True),
        sa.Column("picker_program_id", sa.Integer(), nullable=True),
        sa.Column("particles", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint(
            "data_collection_id",
            "motion_program_id",
            "movie_id",
            name="pk_cryolive_series_row",
        ),
    )
    # The backfill copies with the writer's own statements, so both fill the table alike.
    from cryolive.db.repo.series import backfill_summary

    backfill_summary(op.get_bind())


def downgrade() -> None:
    op.drop_table("cryolive_series_row")
