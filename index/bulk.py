"""Idempotent, lossless bulk indexing of articles.

Per chunk of articles: read the stored copies (``mget``, realtime, across every index
behind the alias so documents in rolled-over indices are found too), then

* not stored      -> ``create`` through the alias (fails with 409 if someone else just did);
* same ``content_hash`` -> nothing is written, counted ``unchanged``;
* changed         -> ``index`` into the index that holds it, keeping its ``first_seen``,
  conditional on the ``_seq_no``/``_primary_term`` just read (409 if it moved meanwhile).

No painless is needed, and concurrent writers cannot lose updates or make duplicates: a
409 sends the article round again with a fresh read. That read also tells apart our own
write whose answer was lost (a node died mid-bulk, and the bulk was retried or replayed on
the promoted replica): the stored copy carries the ``indexed`` stamp we sent, so it counts as
created / updated, not unchanged. Documents Elasticsearch rejects for
good go to the dead-letter file; when it is down or keeps refusing, articles go to the
spool and are replayed (first) by the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, fields
from typing import Any

from elasticsearch import Elasticsearch

from newsmon.index.client import articles_alias, es_client
from newsmon.index.docs import to_doc
from newsmon.index.ops import ESUnavailable, Retry, send_bulk
from newsmon.index.setup import setup_index
from newsmon.index.spool import DeadLetters, Spool
from newsmon.models import Article, utcnow
from newsmon.settings import Settings

CHUNK_SIZE = 500
CONCURRENCY = 2  # one bulk on the shard while the next chunk is read and serialized

Changed = Callable[[dict[str, Any], dict[str, Any]], bool]


@dataclass
class IndexStats:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0  # rejected by Elasticsearch, written to the dead-letter file
    spooled: int = 0  # not written now, kept in the spool for the next run
    replayed: int = 0  # taken from earlier runs' spool and handled (also counted above)

    def add(self, other: IndexStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def count_written(self, result: str) -> None:
        """One document written: ``result`` is the bulk item's ("created", "updated", ...)."""
        if result == "created":
            self.created += 1
        else:
            self.updated += 1


def content_changed(doc: dict[str, Any], stored: dict[str, Any]) -> bool:
    return doc["content_hash"] != stored.get("content_hash")


@dataclass
class ChunkResult:
    stats: IndexStats = field(default_factory=IndexStats)
    unwritten: list[Article] = field(default_factory=list)  # still not written after every retry
    unavailable: bool = False  # ... because ES is down or overloaded (not just conflicts)


class Writer:
    """Writes chunks of articles as conditional upserts (see the module docstring).

    ``changed(new_doc, stored_source)`` decides whether a stored article is rewritten;
    ``stored_fields`` limits what is read back for it (None: the whole document).
    """

    def __init__(
        self,
        settings: Settings,
        client: Elasticsearch,
        *,
        retry: Retry,
        dead: DeadLetters,
        changed: Changed = content_changed,
        stored_fields: list[str] | None = None,
    ) -> None:
        self.client = client
        self.alias = articles_alias(settings)
        self.retry = retry
        self.dead = dead
        self.changed = changed
        self.stored_fields = stored_fields
        self._indices: list[str] = []

    def write(self, articles: list[Article]) -> ChunkResult:
        """Write one chunk (its ids unique); never raises for ES being down."""
        result = ChunkResult()
        pending = {a.id: a for a in articles}
        sent: dict[str, tuple[str, str]] = {}  # id -> (``indexed`` stamp of our last write, its result)
        try:
            for attempt in range(self.retry.attempts):
                pending, transient = self._round(pending, result.stats, sent, fresh_indices=attempt > 0)
                if not pending:
                    break
                if transient:
                    self.retry.pause(attempt + 1)
            result.unavailable = bool(pending) and transient
        except ESUnavailable:
            result.unavailable = True
        result.unwritten = list(pending.values())
        return result

    def _round(
        self,
        pending: dict[str, Article],
        stats: IndexStats,
        sent_before: dict[str, tuple[str, str]],
        *,
        fresh_indices: bool,
    ) -> tuple[dict[str, Article], bool]:
        """One read-plan-write round: the articles to send round again, and whether any of
        them failed for a transient reason (rather than a conflict). ``sent_before`` records
        what each write sent, for telling our own lost-answer writes from others'."""
        stored = self._lookup(list(pending), fresh_indices)
        now = utcnow()
        ops: list[dict[str, Any]] = []
        sent: list[Article] = []
        unchanged = 0
        for article in pending.values():
            hit = stored.get(article.id)
            source = hit["_source"] if hit else {}
            doc = to_doc(article, first_seen=source.get("first_seen"), indexed=now)
            if hit is None:
                ops.append({"create": {"_index": self.alias, "_id": article.id, "require_alias": True}})
            elif not self.changed(doc, source):
                ours = sent_before.get(article.id)
                if ours and source.get("indexed") == ours[0]:
                    stats.count_written(ours[1])  # an earlier round's write landed; its answer did not
                else:
                    unchanged += 1
                continue
            else:
                ops.append(
                    {
                        "index": {
                            "_index": hit["_index"],
                            "_id": article.id,
                            "if_seq_no": hit["_seq_no"],
                            "if_primary_term": hit["_primary_term"],
                        }
                    }
                )
            ops.append(doc)
            sent.append(article)
            sent_before[article.id] = (doc["indexed"], "created" if hit is None else "updated")
        items = send_bulk(self.client, ops, self.retry) if ops else []
        stats.unchanged += unchanged
        again: dict[str, Article] = {}
        transient = False
        for article, item in zip(sent, items, strict=True):
            if item.ok:
                stats.count_written(item.result)
            elif item.conflict or item.transient:
                again[article.id] = article
                transient = transient or item.transient
            else:
                self.dead.add(item.reason, status=item.status, article=article)
                stats.failed += 1
        return again, transient

    def _lookup(self, ids: list[str], fresh_indices: bool) -> dict[str, dict[str, Any]]:
        """Stored copies by id, with the concrete index and sequence numbers of each."""
        if fresh_indices or not self._indices:
            # A rollover by someone else adds indices; a conflict round re-reads them.
            self._indices = sorted(self.retry.call(self.client.indices.get_alias, name=self.alias))
        resp = self.retry.call(
            self.client.mget,
            docs=[{"_index": index, "_id": id_} for index in self._indices for id_ in ids],
            source_includes=self.stored_fields,
        )
        found: dict[str, dict[str, Any]] = {}
        for doc in resp["docs"]:
            if doc.get("found"):
                found.setdefault(doc["_id"], doc)
        return found


def _chunks(articles: Iterable[Article], size: int) -> Iterator[list[Article]]:
    """Chunks of at most ``size`` with unique ids: a repeated article starts a new chunk,
    so its later version is written after (and over) the earlier one."""
    chunk: list[Article] = []
    ids: set[str] = set()
    for article in articles:
        if len(chunk) >= size or article.id in ids:
            yield chunk
            chunk, ids = [], set()
        chunk.append(article)
        ids.add(article.id)
    if chunk:
        yield chunk


class _Run:
    """Feeds chunks to a few writer threads; spools everything once ES is unavailable."""

    def __init__(
        self,
        writer: Writer,
        spool: Spool,
        pool: ThreadPoolExecutor,
        concurrency: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.writer = writer
        self.spool = spool
        self.pool = pool
        self.concurrency = concurrency
        self.progress = progress
        self.stats = IndexStats()
        self.down = False
        self._inflight: dict[Future[ChunkResult], tuple[set[str], int, bool]] = {}

    def submit(self, chunk: list[Article], *, replay: bool) -> None:
        if self.down:
            self._spool(chunk, len(chunk))
            return
        ids = {a.id for a in chunk}
        # Two versions of one article must not race each other: let the older one land first.
        for fut in [f for f, (held, _, _) in self._inflight.items() if held & ids]:
            self._finish(fut)
        while len(self._inflight) >= self.concurrency:
            done, _ = wait(self._inflight, return_when=FIRST_COMPLETED)
            for fut in done:
                self._finish(fut)
        self._inflight[self.pool.submit(self.writer.write, chunk)] = (ids, len(chunk), replay)

    def drain(self) -> None:
        for fut in list(self._inflight):
            self._finish(fut)

    def _finish(self, fut: Future[ChunkResult]) -> None:
        _, n, replay = self._inflight.pop(fut)
        result = fut.result()
        self.stats.add(result.stats)
        if replay:
            self.stats.replayed += n - len(result.unwritten)
        if result.unavailable:
            self.down = True  # no point trying the rest now: spool it straight away
        if result.unwritten:
            self._spool(result.unwritten, 0)
        if self.progress:
            self.progress(n)

    def _spool(self, articles: list[Article], progressed: int) -> None:
        self.stats.spooled += self.spool.add(articles)
        if self.progress and progressed:
            self.progress(progressed)


def index_articles(
    articles: Iterable[Article],
    settings: Settings,
    client: Elasticsearch | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
    concurrency: int = CONCURRENCY,
    retry: Retry | None = None,
) -> IndexStats:
    """Upsert ``articles`` (see the module docstring), after replaying earlier runs' spool.

    ``progress(n)`` is called as each chunk of ``n`` input articles is done (written, found
    unchanged, dead-lettered or spooled). Creates the index and alias if they are missing.
    """
    client = client or es_client(settings)
    retry = retry or Retry(attempts=settings.es_retries)
    dead = DeadLetters(settings)
    writer = Writer(
        settings, client, retry=retry, dead=dead, stored_fields=["content_hash", "first_seen", "indexed"]
    )
    with Spool(settings) as spool, ThreadPoolExecutor(concurrency, thread_name_prefix="newsmon-bulk") as pool:
        run = _Run(writer, spool, pool, concurrency, progress)
        run.down = not _ensure_alias(settings, client, retry)
        if not run.down:  # else leave older spool files where they are
            for claim in spool.claim():
                if run.down:
                    break
                for chunk in _chunks(claim.articles(dead), chunk_size):
                    run.submit(chunk, replay=True)
                run.drain()  # every article of the file is now written or in our own spool
                claim.remove()
        for chunk in _chunks(articles, chunk_size):
            run.submit(chunk, replay=False)
        run.drain()
    return run.stats


def _ensure_alias(settings: Settings, client: Elasticsearch, retry: Retry) -> bool:
    """True when ES answers (creating index and alias on first use), False when it is down."""
    try:
        if not retry.call(client.indices.exists_alias, name=articles_alias(settings)):
            setup_index(settings, client)
    except ESUnavailable:
        return False
    return True
