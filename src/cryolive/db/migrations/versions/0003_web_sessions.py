"""Web sessions recorded on the server, so logout, a password change and staff revocation end
them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cryolive_web_session",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_cryolive_web_session"),
    )
    op.create_index("ix_cryolive_web_session_person_id", "cryolive_web_session", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_cryolive_web_session_person_id", table_name="cryolive_web_session")
    op.drop_table("cryolive_web_session")
