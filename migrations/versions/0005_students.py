"""students as data: the student table, and the student a gate decision is about

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "student",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("backend", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("base_url", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=True),
        sa.Column("share_percent", sa.Float(), nullable=False),
        sa.Column("monthly_cost_usd", sa.Float(), nullable=True),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("trained_on", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("retired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("gate_decision") as batch:
        batch.add_column(
            sa.Column("student", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch.create_index(batch.f("ix_gate_decision_student"), ["student"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gate_decision") as batch:
        batch.drop_index(batch.f("ix_gate_decision_student"))
        batch.drop_column("student")
    op.drop_table("student")
