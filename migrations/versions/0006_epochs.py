"""evidence epochs: the gate_epoch table, and the epoch a gate decision's evidence is from

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gate_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("config_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("student_version", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_gate_epoch_student"), "gate_epoch", ["student"], unique=False)
    with op.batch_alter_table("gate_decision") as batch:
        batch.add_column(sa.Column("epoch_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_gate_decision_epoch_id_gate_epoch"), "gate_epoch", ["epoch_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("gate_decision") as batch:
        batch.drop_constraint(batch.f("fk_gate_decision_epoch_id_gate_epoch"), type_="foreignkey")
        batch.drop_column("epoch_id")
    op.drop_index(op.f("ix_gate_epoch_student"), table_name="gate_epoch")
    op.drop_table("gate_epoch")
