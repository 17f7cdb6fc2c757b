"""The alert ledger's ``story_articles``: which reports each (rule, story) has seen, so a report
of a story already mailed is sent as more coverage at most once (``alerts.ledger``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "story_articles",
        sa.Column("rule", sa.Text, primary_key=True),
        sa.Column("story", sa.Text, primary_key=True),
        sa.Column("article", sa.Text, primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("story_articles")
