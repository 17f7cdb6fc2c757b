"""The shared state: crawl stores (every source's rows, by a source column), the inbox queue
between the crawl and the analysis, and the alert ledger.

The columns follow the embedded SQLite stores (``crawlers/store.py``, ``alerts/ledger.py``),
whose statements run here unchanged.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # --- crawl state (crawlers.store.CrawlStore)
    op.create_table(
        "seen",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("url", sa.Text, primary_key=True),
        sa.Column("article_id", sa.Text),
        sa.Column("skip", sa.Text),
        sa.Column("lastmod", sa.Text),
        sa.Column("seen_at", sa.Text, nullable=False),
    )
    op.create_table(
        "articles",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("canonical_url", sa.Text, nullable=False),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Text, nullable=False),
        sa.Column("last_seen", sa.Text, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("source", sa.Text, nullable=False, index=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("article", sa.Text, nullable=False),
    )
    op.create_table(
        "http_cache",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("stored", sa.Float, nullable=False),
    )
    op.create_table(
        "meta",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    # --- the hand-off from the crawl to the analysis (newsmon.inbox)
    op.create_table(
        "inbox",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("article", sa.Text, nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    # --- the alert ledger (alerts.ledger.Ledger)
    op.create_table(
        "checkpoints",
        sa.Column("rule", sa.Text, primary_key=True),
        sa.Column("indexed_until", sa.Text, nullable=False),
    )
    op.create_table(
        "stories",
        sa.Column("rule", sa.Text, primary_key=True),
        sa.Column("story", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("articles", sa.Text, nullable=False),
        sa.Column("matched_at", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text),
        sa.Column("sent_at", sa.Text),
        sa.Column("maybe_sent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),  # the order stories were found
        sa.CheckConstraint("state IN ('pending', 'sending', 'sent')", name="stories_state"),
    )


def downgrade() -> None:
    for table in ("stories", "checkpoints", "inbox", "meta", "http_cache", "outbox", "articles", "seen"):
        op.drop_table(table)
