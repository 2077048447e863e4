"""request routers: the router_model versions and the router_event history

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "router_model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("floor", sa.Float(), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("labels_through", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_router_model_student"), "router_model", ["student"], unique=False)
    op.create_table(
        "router_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("student", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("router_id", sa.Integer(), nullable=True),
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["router_id"], ["router_model.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_router_event_created_at"), "router_event", ["created_at"])
    op.create_index(op.f("ix_router_event_student"), "router_event", ["student"])


def downgrade() -> None:
    op.drop_index(op.f("ix_router_event_student"), table_name="router_event")
    op.drop_index(op.f("ix_router_event_created_at"), table_name="router_event")
    op.drop_table("router_event")
    op.drop_index(op.f("ix_router_model_student"), table_name="router_model")
    op.drop_table("router_model")
