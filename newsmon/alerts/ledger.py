"""The persistent alert ledger: exactly one email per (rule, story), checkpoints per rule.

A story is an event story (``story_id``: every report of one action, any outlet or language),
else a cluster of wire copies (``cluster_id``), else a single article. Each (rule, story) row
moves ``pending -> sending -> sent``:

* matches are recorded as ``pending`` in the same transaction that advances the rule's
  checkpoint, so nothing found is lost and no window is searched twice;
* just before handing a message to SMTP its stories become ``sending`` (committed), and
  only after the server accepted it ``sent`` (committed); a refused or failed message
  goes back to ``pending`` and leaves with the next run;
* crash window: if the process dies after the server accepted a message but before
  ``sent`` was committed, the row is still ``sending`` at the next start. We re-queue
  it (at-least-once) rather than drop it (at-most-once): a missed export-control alert
  costs more than a rare duplicate. The retry says so in its body and carries the same
  Message-ID (always for immediate mails; for a digest when its batch is unchanged), so
  mail clients that de-duplicate by Message-ID show it once.

Later reports of a story already mailed are **more coverage**: they go into one row per story
keyed ``more:<story>`` that the digest run sends (same states, same guarantees); once sent, the
next new reports of that story re-open it. Which reports a (rule, story) has seen is kept in
``story_articles``, so a report is mailed as new coverage at most once.

Runs are serialised by a lock (see ``run``), so a ``sending`` row at start can only come
from a crashed run.

The ledger is an SQLite file under the data dir, or the shared state database
(``NEWSMON_STATE_URL``); the same statements run on both (``newsmon.state``). An existing
SQLite file gains the tables it lacks when opened (``CREATE TABLE IF NOT EXISTS``); the shared
database gets them from its migrations (``story_articles``: 0002).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from newsmon.errors import NewsmonError
from newsmon.models import Article, utcnow
from newsmon.state import StateDb, memory_engine, shared_engine, sqlite_file_engine

State = Literal["pending", "sending", "sent"]

# Bounds the ledger row (and thus the mail): enough copies to list, enough text to snippet.
MAX_STORED_COPIES = 20
MAX_STORED_TEXT = 20_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    rule TEXT PRIMARY KEY,
    indexed_until TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stories (
    rule TEXT NOT NULL,
    story TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent')),
    articles TEXT NOT NULL,
    matched_at TEXT NOT NULL,
    message_id TEXT,
    sent_at TEXT,
    maybe_sent INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule, story)
);
CREATE TABLE IF NOT EXISTS story_articles (
    rule TEXT NOT NULL,
    story TEXT NOT NULL,
    article TEXT NOT NULL,
    PRIMARY KEY (rule, story, article)
);
"""
MORE = "more:"  # the key prefix of a story's later coverage
_META = sa.MetaData()
_CHECKPOINTS = sa.Table(
    "checkpoints", _META, sa.Column("rule", sa.Text, primary_key=True), sa.Column("indexed_until", sa.Text)
)
_STORIES = sa.Table(
    "stories",
    _META,
    *(sa.Column(name, sa.Text, primary_key=name in ("rule", "story")) for name in ("rule", "story", "state")),
    *(sa.Column(name, sa.Text) for name in ("articles", "matched_at", "message_id", "sent_at")),
    sa.Column("maybe_sent", sa.Integer),
    sa.Column("seq", sa.BigInteger),  # shared database only; an SQLite file has its rowid
)
_STORY_ARTICLES = sa.Table(
    "story_articles",
    _META,
    *(sa.Column(name, sa.Text, primary_key=True) for name in ("rule", "story", "article")),
)


def story_key(article: Article) -> str:
    if article.story_id:
        return f"story:{article.story_id}"
    return f"cluster:{article.cluster_id}" if article.cluster_id else f"article:{article.id}"


@dataclass
class Story:
    """The articles of one story that matched one rule, earliest first."""

    rule: str
    key: str
    articles: list[Article]
    maybe_sent: bool = False  # a crashed run may have mailed it already
    # More coverage: the reports not mailed before (``articles`` holds the earlier ones too).
    new_ids: frozenset[str] = frozenset()

    @property
    def primary(self) -> Article:
        return self.articles[0]

    @property
    def more_coverage(self) -> bool:
        return self.key.startswith(MORE)


def group_stories(rule: str, articles: Iterable[Article]) -> list[Story]:
    """Group matched articles by story, keeping the order in which stories first appear."""
    grouped: dict[str, list[Article]] = {}
    for article in articles:
        grouped.setdefault(story_key(article), []).append(article)
    return [Story(rule, key, _merge([], group)) for key, group in grouped.items()]


def _first_reported(article: Article) -> tuple[datetime, str]:
    when = article.published or article.first_seen or article.fetched
    # Extractors sometimes yield naive datetimes; comparing them with aware ones would raise.
    return (when if when.tzinfo else when.replace(tzinfo=UTC), article.source)


def _merge(old: Iterable[Article], new: Iterable[Article]) -> list[Article]:
    by_id = {a.id: a for a in old}
    by_id.update((a.id, a) for a in new)  # a re-indexed copy replaces the stored one
    return sorted(by_id.values(), key=_first_reported)[:MAX_STORED_COPIES]


def _dump(articles: list[Article]) -> str:
    trimmed = [
        a.model_dump(mode="json", exclude={"tokens", "id", "content_hash"})
        | {"text": a.text[:MAX_STORED_TEXT]}
        for a in articles
    ]
    return json.dumps(trimmed, ensure_ascii=False)


def _load(payload: str) -> list[Article]:
    return [Article.model_validate(item) for item in json.loads(payload)]


def _story_row(rule: str, key: str) -> sa.ColumnElement[bool]:
    return (_STORIES.c.rule == rule) & (_STORIES.c.story == key)


def _record_coverage(conn: sa.Connection, story: Story, mailed: list[Article]) -> None:
    """Queue the reports of ``story`` that its (rule, story) has not seen as more coverage."""
    seen_query = sa.select(_STORY_ARTICLES.c.article).where(
        (_STORY_ARTICLES.c.rule == story.rule) & (_STORY_ARTICLES.c.story == story.key)
    )
    seen = {a.id for a in mailed} | set(conn.execute(seen_query).scalars())
    new = [a for a in story.articles if a.id not in seen]
    if not new:
        return
    # The mailed row lists every report known (bounded), so the next coverage shows them all.
    conn.execute(
        sa.update(_STORIES)
        .where(_story_row(story.rule, story.key))
        .values(articles=_dump(_merge(mailed, new)))
    )
    key = MORE + story.key
    where = _story_row(story.rule, key)
    row = conn.execute(sa.select(_STORIES.c.state, _STORIES.c.articles).where(where)).first()
    now = utcnow().isoformat()
    if row is None:
        conn.execute(
            sa.insert(_STORIES).values(
                rule=story.rule, story=key, state="pending", articles=_dump(new), matched_at=now, maybe_sent=0
            )
        )
    elif row[0] == "pending":
        conn.execute(sa.update(_STORIES).where(where).values(articles=_dump(_merge(_load(row[1]), new))))
    else:  # its last coverage went out: these reports open the next one
        conn.execute(
            sa.update(_STORIES)
            .where(where)
            .values(
                state="pending",
                articles=_dump(new),
                matched_at=now,
                message_id=None,
                sent_at=None,
                maybe_sent=0,
            )
        )


class Ledger:
    def __init__(self, db: StateDb) -> None:
        self._db = db
        if not db.shared:  # the shared database is created by its migrations
            db.run_script(_SCHEMA)
        # The order stories were found in.
        self._found_order = _STORIES.c.seq if db.shared else sa.literal_column("rowid")

    @classmethod
    def open(cls, path: Path) -> Ledger:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return cls(StateDb(sqlite_file_engine(path)))
        except sa.exc.DatabaseError as exc:
            raise NewsmonError(f"alert ledger {path} is unreadable ({exc.orig}); move it away") from None

    @classmethod
    def open_shared(cls, url: str) -> Ledger:
        return cls(StateDb(shared_engine(url)))

    @classmethod
    def scratch_copy(cls, source: Path | Ledger) -> Ledger:
        """An in-memory copy for dry runs: the same code runs, the real ledger is untouched."""
        copy = cls(StateDb(memory_engine()))
        real = source if isinstance(source, Ledger) else Ledger.open(source) if source.exists() else None
        if real is not None:
            try:
                copy.take(real)
            finally:
                if real is not source:
                    real.close()
        return copy

    def take(self, other: Ledger) -> tuple[int, int]:
        """Copy ``other``'s checkpoints and stories into this ledger, in the order the stories
        were found; a rule or story this one has keeps its row. (rules, stories) given."""
        columns = [c for c in _STORIES.c if c.name != "seq"]
        with other._db.tx() as conn:
            checkpoints = [dict(r._mapping) for r in conn.execute(sa.select(_CHECKPOINTS))]
            stories = [
                dict(r._mapping) for r in conn.execute(sa.select(*columns).order_by(other._found_order))
            ]
            reports = [dict(r._mapping) for r in conn.execute(sa.select(_STORY_ARTICLES))]
        with self._db.tx() as conn:
            for table, rows, key in (
                (_CHECKPOINTS, checkpoints, ["rule"]),
                (_STORIES, stories, ["rule", "story"]),
                (_STORY_ARTICLES, reports, ["rule", "story", "article"]),
            ):
                for row in rows:
                    conn.execute(
                        self._db.upsert(table).values(**row).on_conflict_do_nothing(index_elements=key)
                    )
        return len(checkpoints), len(stories)

    def close(self) -> None:
        self._db.close()

    # --- checkpoints

    def checkpoint(self, rule: str) -> datetime | None:
        with self._db.tx() as conn:
            value = conn.execute(
                sa.select(_CHECKPOINTS.c.indexed_until).where(_CHECKPOINTS.c.rule == rule)
            ).scalar()
        return datetime.fromisoformat(value) if value else None

    # --- matching

    def record_matches(self, rule: str, stories: list[Story], until: datetime) -> dict[str, State | None]:
        """Queue new stories, extend pending ones and advance the checkpoint, atomically.

        Returns each story's state before this call (None for a new story).
        """
        now = utcnow().isoformat()
        before: dict[str, State | None] = {}
        with self._db.tx() as conn:
            for story in stories:
                where = _story_row(rule, story.key)
                row = conn.execute(sa.select(_STORIES.c.state, _STORIES.c.articles).where(where)).first()
                before[story.key] = row[0] if row else None
                if row is None:
                    conn.execute(
                        sa.insert(_STORIES).values(
                            rule=rule,
                            story=story.key,
                            state="pending",
                            articles=_dump(story.articles),
                            matched_at=now,
                            maybe_sent=0,
                        )
                    )
                elif row[0] == "pending":
                    # Late copies of a story not yet mailed join it, so they get listed.
                    merged = _dump(_merge(_load(row[1]), story.articles))
                    conn.execute(sa.update(_STORIES).where(where).values(articles=merged))
                else:  # mailed already: its new reports are more coverage, for the digest
                    _record_coverage(conn, story, _load(row[1]))
                if story.articles:
                    seen = self._db.upsert(_STORY_ARTICLES).values(
                        [{"rule": rule, "story": story.key, "article": a.id} for a in story.articles]
                    )
                    conn.execute(seen.on_conflict_do_nothing())
            upsert = self._db.upsert(_CHECKPOINTS).values(rule=rule, indexed_until=until.isoformat())
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=["rule"], set_={"indexed_until": upsert.excluded.indexed_until}
                )
            )
        return before

    # --- delivery

    def requeue_interrupted(self) -> int:
        """Put stories left ``sending`` by a crashed run back to ``pending``."""
        with self._db.tx() as conn:
            return conn.execute(
                sa.update(_STORIES).where(_STORIES.c.state == "sending").values(state="pending", maybe_sent=1)
            ).rowcount

    def pending(self, rule: str, *, more_coverage: bool = False) -> list[Story]:
        """The rule's stories waiting to be mailed; ``more_coverage``: instead, the later reports
        of stories mailed before, each shown with the story's earlier reports."""
        is_more = _STORIES.c.story.startswith(MORE, autoescape=True)
        query = (
            sa.select(_STORIES.c.story, _STORIES.c.articles, _STORIES.c.maybe_sent)
            .where(
                (_STORIES.c.rule == rule) & (_STORIES.c.state == "pending"),
                is_more if more_coverage else sa.not_(is_more),
            )
            .order_by(_STORIES.c.matched_at, self._found_order)
        )
        with self._db.tx() as conn:
            rows = conn.execute(query).all()
            if not more_coverage:
                return [Story(rule, key, _load(payload), bool(maybe)) for key, payload, maybe in rows]
            out = []
            for key, payload, maybe in rows:
                new = _load(payload)
                earlier = conn.execute(
                    sa.select(_STORIES.c.articles).where(_story_row(rule, key.removeprefix(MORE)))
                ).scalar()
                shown = _merge(_load(earlier) if earlier else [], new)
                out.append(Story(rule, key, shown, bool(maybe), frozenset(a.id for a in new)))
        return out

    def _set_state(self, stories: list[Story], **values: str | None) -> None:
        if not stories:
            return
        query = (
            sa.update(_STORIES)
            .where((_STORIES.c.rule == sa.bindparam("r")) & (_STORIES.c.story == sa.bindparam("s")))
            .values(**values)
        )
        with self._db.tx() as conn:
            conn.execute(query, [{"r": s.rule, "s": s.key} for s in stories])

    def mark_sending(self, stories: list[Story], message_id: str) -> None:
        self._set_state(stories, state="sending", message_id=message_id)

    def mark_sent(self, stories: list[Story]) -> None:
        self._set_state(stories, state="sent", sent_at=utcnow().isoformat())

    def mark_pending(self, stories: list[Story]) -> None:
        self._set_state(stories, state="pending")

    def states(self, rule: str) -> dict[str, State]:
        """Every story's state for ``rule`` (for reports and tests)."""
        with self._db.tx() as conn:
            rows = conn.execute(sa.select(_STORIES.c.story, _STORIES.c.state).where(_STORIES.c.rule == rule))
            return {key: state for key, state in rows}
