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

Runs are serialised by a lock file (see ``run``), so a ``sending`` row at start can
only come from a crashed run.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from newsmon.models import Article, utcnow

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


def _record_coverage(conn: sqlite3.Connection, story: Story, mailed: list[Article]) -> None:
    """Queue the reports of ``story`` that its (rule, story) has not seen as more coverage."""
    seen = {a.id for a in mailed} | {
        row[0]
        for row in conn.execute(
            "SELECT article FROM story_articles WHERE rule = ? AND story = ?", (story.rule, story.key)
        )
    }
    new = [a for a in story.articles if a.id not in seen]
    if not new:
        return
    # The mailed row lists every report known (bounded), so the next coverage shows them all.
    conn.execute(
        "UPDATE stories SET articles = ? WHERE rule = ? AND story = ?",
        (_dump(_merge(mailed, new)), story.rule, story.key),
    )
    key = MORE + story.key
    row = conn.execute(
        "SELECT state, articles FROM stories WHERE rule = ? AND story = ?", (story.rule, key)
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO stories (rule, story, state, articles, matched_at) VALUES (?, ?, 'pending', ?, ?)",
            (story.rule, key, _dump(new), utcnow().isoformat()),
        )
    elif row[0] == "pending":
        conn.execute(
            "UPDATE stories SET articles = ? WHERE rule = ? AND story = ?",
            (_dump(_merge(_load(row[1]), new)), story.rule, key),
        )
    else:  # its last coverage went out: these reports open the next one
        conn.execute(
            "UPDATE stories SET state = 'pending', articles = ?, matched_at = ?, message_id = NULL,"
            " sent_at = NULL, maybe_sent = 0 WHERE rule = ? AND story = ?",
            (_dump(new), utcnow().isoformat(), story.rule, key),
        )


class Ledger:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._conn.executescript(_SCHEMA)

    @classmethod
    def open(cls, path: Path) -> Ledger:
        conn = sqlite3.connect(path, timeout=30)
        # WAL + synchronous=FULL: a committed "sent" survives a power cut.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return cls(conn)

    @classmethod
    def scratch_copy(cls, path: Path) -> Ledger:
        """An in-memory copy for dry runs: the same code runs, the real ledger is untouched."""
        mem = sqlite3.connect(":memory:")
        if path.exists():
            src = sqlite3.connect(path, timeout=30)
            try:
                src.backup(mem)
            finally:
                src.close()
        return cls(mem)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._conn:  # commits, or rolls back on error
            yield self._conn

    # --- checkpoints

    def checkpoint(self, rule: str) -> datetime | None:
        row = self._conn.execute("SELECT indexed_until FROM checkpoints WHERE rule = ?", (rule,)).fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    # --- matching

    def record_matches(self, rule: str, stories: list[Story], until: datetime) -> dict[str, State | None]:
        """Queue new stories, extend pending ones and advance the checkpoint, atomically.

        Returns each story's state before this call (None for a new story).
        """
        now = utcnow().isoformat()
        before: dict[str, State | None] = {}
        with self._tx() as conn:
            for story in stories:
                row = conn.execute(
                    "SELECT state, articles FROM stories WHERE rule = ? AND story = ?", (rule, story.key)
                ).fetchone()
                before[story.key] = row[0] if row else None
                if row is None:
                    conn.execute(
                        "INSERT INTO stories (rule, story, state, articles, matched_at)"
                        " VALUES (?, ?, 'pending', ?, ?)",
                        (rule, story.key, _dump(story.articles), now),
                    )
                elif row[0] == "pending":
                    # Late copies of a story not yet mailed join it, so they get listed.
                    conn.execute(
                        "UPDATE stories SET articles = ? WHERE rule = ? AND story = ?",
                        (_dump(_merge(_load(row[1]), story.articles)), rule, story.key),
                    )
                else:  # mailed already: its new reports are more coverage, for the digest
                    _record_coverage(conn, story, _load(row[1]))
                conn.executemany(
                    "INSERT OR IGNORE INTO story_articles (rule, story, article) VALUES (?, ?, ?)",
                    [(rule, story.key, a.id) for a in story.articles],
                )
            conn.execute(
                "INSERT INTO checkpoints (rule, indexed_until) VALUES (?, ?)"
                " ON CONFLICT (rule) DO UPDATE SET indexed_until = excluded.indexed_until",
                (rule, until.isoformat()),
            )
        return before

    # --- delivery

    def requeue_interrupted(self) -> int:
        """Put stories left ``sending`` by a crashed run back to ``pending``."""
        with self._tx() as conn:
            return conn.execute(
                "UPDATE stories SET state = 'pending', maybe_sent = 1 WHERE state = 'sending'"
            ).rowcount

    def pending(self, rule: str, *, more_coverage: bool = False) -> list[Story]:
        """The rule's stories waiting to be mailed; ``more_coverage``: instead, the later reports
        of stories mailed before, each shown with the story's earlier reports."""
        rows = self._conn.execute(
            "SELECT story, articles, maybe_sent FROM stories WHERE rule = ? AND state = 'pending'"
            " AND (substr(story, 1, length(?)) = ?) = ?"
            " ORDER BY matched_at, rowid",  # rowid: the order the stories were found
            (rule, MORE, MORE, more_coverage),
        ).fetchall()
        if not more_coverage:
            return [Story(rule, key, _load(payload), bool(maybe)) for key, payload, maybe in rows]
        out = []
        for key, payload, maybe in rows:
            new = _load(payload)
            earlier = self._conn.execute(
                "SELECT articles FROM stories WHERE rule = ? AND story = ?", (rule, key[len(MORE) :])
            ).fetchone()
            shown = _merge(_load(earlier[0]) if earlier else [], new)
            out.append(Story(rule, key, shown, bool(maybe), frozenset(a.id for a in new)))
        return out

    def _set_state(self, stories: list[Story], sql: str, *params: str | None) -> None:
        with self._tx() as conn:
            conn.executemany(
                f"UPDATE stories SET {sql} WHERE rule = ? AND story = ?",
                [(*params, s.rule, s.key) for s in stories],
            )

    def mark_sending(self, stories: list[Story], message_id: str) -> None:
        self._set_state(stories, "state = 'sending', message_id = ?", message_id)

    def mark_sent(self, stories: list[Story]) -> None:
        self._set_state(stories, "state = 'sent', sent_at = ?", utcnow().isoformat())

    def mark_pending(self, stories: list[Story]) -> None:
        self._set_state(stories, "state = 'pending'")

    def states(self, rule: str) -> dict[str, State]:
        """Every story's state for ``rule`` (for reports and tests)."""
        rows = self._conn.execute("SELECT story, state FROM stories WHERE rule = ?", (rule,))
        return dict(rows.fetchall())
