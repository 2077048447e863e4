"""judge scores, kept apart from human reviews

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "judge_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("template_version", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("pair_ts", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("student_score", sa.Float(), nullable=True),
        sa.Column("teacher_score", sa.Float(), nullable=True),
        sa.Column("preferred", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("consistent", sa.Boolean(), nullable=True),
        sa.Column("calls", sa.JSON(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pair_id", "template_version", "model"),
    )
    with op.batch_alter_table("judge_score", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_judge_score_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_judge_score_pair_id"), ["pair_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_judge_score_template_version"), ["template_version"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("judge_score", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_judge_score_template_version"))
        batch_op.drop_index(batch_op.f("ix_judge_score_pair_id"))
        batch_op.drop_index(batch_op.f("ix_judge_score_created_at"))
    op.drop_table("judge_score")
