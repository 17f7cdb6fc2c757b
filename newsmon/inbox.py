"""The inbox queue: the hand-off from the crawl to the analysis when the state is shared
(``NEWSMON_STATE_URL``); the embedded default hands off by files under ``NEWSMON_DATA_DIR/inbox``.

A crawl moves its store's outbox into the queue in one transaction (``crawlers.store``). An
analysis worker claims a batch with ``SELECT ... FOR UPDATE SKIP LOCKED``, so workers on several
hosts take different batches; the rows leave the queue in the transaction that claimed them,
after their articles were indexed (or spooled). A worker that dies mid-batch ends its session:
the transaction rolls back and the batch is claimed again, and re-indexing is an idempotent
upsert by article id, so nothing is lost and nothing doubled. Only article JSON passes through
here, never through Airflow's XCom.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from newsmon.state import StateDb, shared_engine

_META = sa.MetaData()
INBOX = sa.Table(
    "inbox",
    _META,
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("kind", sa.Text),  # new | updated
    sa.Column("article", sa.Text),  # Article JSON
    sa.Column("queued_at", sa.DateTime(timezone=True)),
)


def enqueue(conn: sa.Connection, rows: list[tuple[str, str]]) -> None:
    """Queue ``(kind, article JSON)`` rows, in the caller's transaction."""
    if rows:
        conn.execute(sa.insert(INBOX), [{"kind": kind, "article": article} for kind, article in rows])


@contextmanager
def claim(url: str, limit: int) -> Iterator[list[str]]:
    """Up to ``limit`` queued articles (JSON) that no other worker holds, oldest first.

    They leave the queue when the block ends; on an error (or when this process dies) they stay.
    """
    db = StateDb(shared_engine(url))
    try:
        with db.tx() as conn:
            query = sa.select(INBOX.c.seq, INBOX.c.article).order_by(INBOX.c.seq).limit(limit)
            rows = conn.execute(query.with_for_update(skip_locked=True)).all()
            yield [article for _, article in rows]
            if rows:
                conn.execute(sa.delete(INBOX).where(INBOX.c.seq.in_([seq for seq, _ in rows])))
    finally:
        db.close()


def queued(url: str, before: datetime | None = None) -> int:
    """How many articles wait in the queue (claimed ones included); ``before``: queued before then."""
    query = sa.select(sa.func.count()).select_from(INBOX)
    if before is not None:
        query = query.where(INBOX.c.queued_at < before)
    db = StateDb(shared_engine(url))
    try:
        with db.tx() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        db.close()
