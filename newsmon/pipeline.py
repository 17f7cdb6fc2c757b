"""The pipeline stages as plain functions: the CLI and the Airflow DAGs both call these.

Hand-off between stages is by files under ``NEWSMON_DATA_DIR/inbox``, or with a shared state
database (``NEWSMON_STATE_URL``) by its inbox queue (``newsmon.inbox``); never article bodies
through XCom. A crawl's output stays in the inbox until it is analysed and indexed (or
spooled by the indexer), so a crash between stages loses nothing; a re-run re-indexes it,
and idempotent upserts keep that from duplicating anything.

Concurrency (Airflow runs DAGs side by side on several workers, sharing the data dir): each
crawl writes its own inbox file, locked while it is a ``.part`` (so housekeeping can tell a
live one from a dead crawl's); ``process_inbox`` runs one at a time per data dir.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from newsmon.errors import NewsmonError, one_line
from newsmon.layout import stamp
from newsmon.locks import SharedLock, file_lock, lock_at
from newsmon.models import Article, parse_articles, read_articles
from newsmon.queries import MatchPage, RuleQuery
from newsmon.settings import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from newsmon.alerts.rules import AlertRule, Mode
    from newsmon.alerts.run import AlertRunStats, Matcher
    from newsmon.crawlers.registry import Source
    from newsmon.crawlers.run import CrawlStats
    from newsmon.index.reprocess import ReprocessStats
    from newsmon.nlp.pipeline import Analyzer

Progress = Callable[[str], None]
# process_inbox waits this long for another run's processing (analysis of a daily crawl's
# articles takes minutes), then fails so that Airflow retries it.
INBOX_LOCK_WAIT_S = 30 * 60.0
# An alert run waits this long for the bulk writes in flight (see SettledMatcher); one that
# stalls longer (Elasticsearch retrying through an outage) spools what it cannot write, and
# the replay stamps it anew.
SETTLE_WAIT_S = 60.0


def inbox_dir(settings: Settings) -> Path:
    path = settings.layout.inbox
    path.mkdir(parents=True, exist_ok=True)
    return path


def pending_inbox_files(settings: Settings) -> list[Path]:
    """Crawl outputs not yet indexed, oldest first (``.part`` files are crawls in progress)."""
    return sorted(inbox_dir(settings).glob("*.jsonl"))


def load_sources(
    settings: Settings, sources_path: Path | None = None, names: list[str] | None = None
) -> list[Source]:
    """The enabled sources of the registry, or the ``names``d ones (an unknown name is an error)."""
    from newsmon.crawlers.registry import load_sources as load
    from newsmon.crawlers.registry import select_sources

    enabled = [s for s in load(sources_path or settings.sources) if s.enabled]
    return select_sources(enabled, names) if names else enabled


def crawl_sources(
    settings: Settings,
    stack: ExitStack,
    *,
    demo: bool = False,
    sources_path: Path | None = None,
    names: list[str] | None = None,
    progress: Progress | None = None,
) -> list[Source]:
    """The sources to crawl (``names``: only these): the registry's enabled ones, or the bundled
    demo site, which is served (until ``stack`` closes) on the configured port so its URLs, and
    so the article ids, are the same from run to run and from command to command."""
    if not demo:
        return load_sources(settings, sources_path, names)
    from newsmon.crawlers.demo_server import demo_sources, serve_demo
    from newsmon.crawlers.registry import select_sources

    try:
        server = stack.enter_context(serve_demo(port=settings.demo_port))
    except OSError as exc:
        raise NewsmonError(
            f"cannot serve the demo site on port {settings.demo_port} ({exc.strerror}); "
            "set NEWSMON_DEMO_PORT to a free port"
        ) from None
    if progress:
        progress(f"serving the demo site at {server.url}")
    return select_sources(demo_sources(server.url), names)


def crawl_to_inbox(
    settings: Settings,
    sources: list[Source],
    *,
    since: datetime | None = None,
    feeds_only: bool = False,
    tag: str = "crawl",
    progress: Progress | None = None,
    lock_wait: float = 0.0,
) -> CrawlStats:
    """Crawl into a new inbox file; it appears under its final name only when complete. With a
    shared state database, into its inbox queue instead (each source's articles as one commit).

    While the crawl runs, the ``.part`` file is locked: housekeeping salvages only a ``.part``
    that no live crawl holds. ``lock_wait``: see ``crawlers.run.crawl``.
    """
    from newsmon.crawlers.run import crawl

    started = time.monotonic()
    if settings.state_url:
        stats = crawl(
            sources,
            settings,
            None,
            since=since,
            feeds_only=feeds_only,
            progress=progress,
            lock_wait=lock_wait,
        )
        stats.seconds = time.monotonic() - started
        return stats
    final = inbox_dir(settings) / f"{stamp()}-{tag}.jsonl"
    partial = final.with_suffix(".jsonl.part")
    with file_lock(partial):  # creates it
        try:
            stats = crawl(
                sources,
                settings,
                partial,
                since=since,
                feeds_only=feeds_only,
                progress=progress,
                lock_wait=lock_wait,
            )
        except BaseException:
            # Articles delivered before the failure (an earlier crawl's leftovers) are kept.
            if partial.stat().st_size:
                partial.rename(final)
            else:
                partial.unlink()
            raise
        partial.rename(final)  # the lock goes with the file
    stats.out_file = final
    stats.seconds = time.monotonic() - started
    return stats


def check_crawls(names: list[str], results: list[dict[str, Any]]) -> dict[str, int]:
    """The verdict on a run's per-source crawls: NewsmonError naming the sources whose crawl
    failed (those with no result among ``results``, each a crawl summary with its ``source``)."""
    done = {r.get("source") for r in results}
    failed = [name for name in names if name not in done]
    if failed:
        raise NewsmonError(
            f"{len(failed)} of {len(names)} source crawl(s) failed: {', '.join(failed)} "
            "(see their crawl task logs; the other sources' articles were still processed)"
        )
    return {"sources": len(names), "failed": 0}


@dataclass
class ProcessStats:
    files: int = 0
    analyzed: int = 0
    indexed: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def process_inbox(
    settings: Settings,
    *,
    progress: Progress | None = None,
    lock_wait: float = INBOX_LOCK_WAIT_S,
    stats: ProcessStats | None = None,
    client: Elasticsearch | None = None,
) -> ProcessStats:
    """Analyse and index every pending inbox file, then remove it (``client``: the run's); with a
    shared state database, then every batch that this worker can claim from its inbox queue.

    One at a time per data dir (the feeds and the daily DAG may get here together): a second
    call waits for the first, up to ``lock_wait`` seconds, and then finds the files it took
    gone. So no file is analysed twice at once and this host's story-cluster state is never
    raced. Workers on other hosts claim other batches of the queue at the same time.
    """
    lock = inbox_dir(settings) / "process.lock"
    busy = f"another run is processing the inbox of {settings.data_dir} (lock {lock})"
    with file_lock(lock, timeout=lock_wait, busy=busy):
        started = time.monotonic()
        files = pending_inbox_files(settings)
        stats = stats or ProcessStats()
        try:
            if files:
                analyse_and_index(settings, files, stats, progress=progress, remove=True, client=client)
            if settings.state_url:
                _process_queue(settings, settings.state_url, stats, progress=progress, client=client)
        finally:
            stats.seconds += time.monotonic() - started
        return stats


def _process_queue(
    settings: Settings,
    url: str,
    stats: ProcessStats,
    *,
    progress: Progress | None = None,
    client: Elasticsearch | None = None,
) -> None:
    """Claim, analyse and index batches of the shared inbox queue until it has none left free."""
    from newsmon.inbox import claim
    from newsmon.nlp.pipeline import settings_analyzer

    analyzer = settings_analyzer(settings)
    while True:
        with claim(url, settings.inbox_batch) as rows:
            if not rows:
                return
            stats.files += 1
            articles = list(parse_articles(rows, stats.errors))
            _analyse_and_index_batch(settings, articles, analyzer, stats, "the inbox queue", progress, client)


def index_inbox(
    settings: Settings,
    *,
    progress: Progress | None = None,
    stats: ProcessStats | None = None,
    client: Elasticsearch | None = None,
) -> ProcessStats:
    """Create or update the index (idempotent), then analyse and index the inbox."""
    from newsmon.index.client import es_client
    from newsmon.index.setup import setup_index

    client = client or es_client(settings)
    setup_index(settings, client)
    return process_inbox(settings, progress=progress, stats=stats, client=client)


def roll_over_index(settings: Settings, client: Elasticsearch | None = None) -> dict[str, Any]:
    """The articles index's scheduled rollover (``newsmon index rollover``, newsmon_daily); a
    no-op answer where the ILM policy rolls it over."""
    from newsmon.index.lifecycle import scheduled_rollover

    return scheduled_rollover(settings, client)


def analyse_and_index(
    settings: Settings,
    files: list[Path],
    stats: ProcessStats,
    *,
    progress: Progress | None = None,
    remove: bool = False,
    client: Elasticsearch | None = None,
) -> ProcessStats:
    """Analyse then index the articles of each JSONL file (``remove``: delete each file once its
    articles are indexed or spooled). ``newsmon run``, the DAGs and ``newsmon index`` share it:
    nothing is indexed unanalysed."""
    from newsmon.nlp.pipeline import settings_analyzer

    analyzer = settings_analyzer(settings)
    for path in files:
        stats.files += 1
        articles = list(read_articles(path, stats.errors))
        _analyse_and_index_batch(settings, articles, analyzer, stats, path.name, progress, client)
        if remove:
            # Indexed or spooled by the indexer: either way it is safe to let the file go.
            path.unlink()
    return stats


def _analyse_and_index_batch(
    settings: Settings,
    articles: list[Article],
    analyzer: Analyzer,
    stats: ProcessStats,
    origin: str,
    progress: Progress | None,
    client: Elasticsearch | None,
) -> None:
    from newsmon.index.bulk import index_articles
    from newsmon.nlp.pipeline import analyze_articles

    if progress:
        progress(f"analysing {len(articles)} articles from {origin}")
    analyzed = list(analyze_articles(articles, analyzer=analyzer))
    stats.analyzed += len(analyzed)
    if progress:
        progress(f"indexing {len(analyzed)} articles")
    busy = "an alert run's refresh holds the index writes lock"
    with file_lock(index_writes_lock(settings), timeout=INBOX_LOCK_WAIT_S, busy=busy, exclusive=False):
        result = index_articles(analyzed, settings, client)
    for key, value in int_fields(result).items():
        stats.indexed[key] = stats.indexed.get(key, 0) + value


def reprocess_stored(
    settings: Settings,
    since: str | None = None,
    until: str | None = None,
    site: str | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> ReprocessStats:
    """Re-analyse the stored articles dated in [since, until] (a date such as 2026-05-01 or a
    time ago such as 7d; and from ``site``) with the settings' analyzer, writing back what
    changed (``newsmon reprocess`` and its DAG)."""
    from newsmon.index.reprocess import reprocess
    from newsmon.index.search import parse_when
    from newsmon.nlp.pipeline import analyze_articles, settings_analyzer

    analyzer = settings_analyzer(settings)
    return reprocess(
        settings,
        lambda batch: analyze_articles(batch, analyzer=analyzer),
        parse_when(since) if since else None,
        parse_when(until) if until else None,
        site,
        progress=progress,
    )


def int_fields(obj: Any) -> dict[str, int]:
    """A stats object's counters (its int fields)."""
    return {k: v for k, v in vars(obj).items() if isinstance(v, int)}


@dataclass
class RunSummary:
    crawl: dict[str, Any]
    process: ProcessStats
    alerts: dict[str, int]
    seconds: float
    error: str | None = None  # the stage failure that ended the run early, as one line
    run_id: str = ""  # of its crawl-health documents
    health_unrecorded: int = 0  # crawl-health documents Elasticsearch did not take


def run_once(
    settings: Settings,
    *,
    sources_path: Path | None = None,
    demo: bool = False,
    feeds_only: bool = False,
    console: Console | None = None,
) -> RunSummary:
    """The main job: crawl -> analyse -> index -> alerts, once."""
    from newsmon.index.localnode import launcher as esnode

    console = console or Console(stderr=True)
    started = time.monotonic()

    def say(msg: str) -> None:
        console.log(msg, highlight=False)

    with ExitStack() as stack:
        if settings.es_is_local and esnode.ensure_running(settings):
            say(f"started local Elasticsearch at {settings.es_url}")
        sources = crawl_sources(settings, stack, demo=demo, sources_path=sources_path, progress=say)
        say(f"crawling {len(sources)} sources")
        crawl_stats = crawl_to_inbox(settings, sources, feeds_only=feeds_only, progress=say)
    from newsmon.health import alerts_doc, new_run_id, process_doc, record, record_crawl_health, run_doc
    from newsmon.index.client import es_client

    names = [s.name for s in sources]
    summary = RunSummary(
        crawl=vars(crawl_stats), process=ProcessStats(), alerts={}, seconds=0.0, run_id=new_run_id()
    )
    client = es_client(settings)  # one client for the run, handed to every stage that needs it
    summary.health_unrecorded = record_crawl_health(
        settings, crawl_stats, names, run_id=summary.run_id, client=client, warn=say
    )
    alerts_started = None
    try:
        # Filled in place, so a later failure still shows what was analysed, indexed and spooled.
        index_inbox(settings, progress=say, stats=summary.process, client=client)
        alerts_started = time.monotonic()
        summary.alerts = run_alert_rules(settings, progress=say, client=client)
    except Exception as exc:
        if (line := one_line(exc, settings.es_url)) is None:
            raise
        summary.error = line
    summary.seconds = time.monotonic() - started
    docs = [run_doc(summary.run_id, summary.seconds, summary.error, names)]
    docs.append(process_doc(summary.run_id, summary.process))
    if alerts_started is not None:
        alerts_s = time.monotonic() - alerts_started
        docs.append(alerts_doc(summary.run_id, summary.alerts, seconds=alerts_s))
    summary.health_unrecorded += record(settings, docs, client=client, warn=say)
    return summary


def alert_run(
    settings: Settings,
    *,
    mode: Mode = "immediate",
    dry_run: bool = False,
    rules: Sequence[AlertRule] | None = None,
    progress: Progress | None = None,
    client: Elasticsearch | None = None,
) -> AlertRunStats:
    """The ``mode`` alert rules over the newly indexed articles, matched by the index stage."""
    from newsmon.alerts.run import run_alerts
    from newsmon.index.matches import IndexMatcher

    matcher = SettledMatcher(IndexMatcher(settings, client), index_writes_lock(settings))
    return run_alerts(settings, matcher, mode=mode, dry_run=dry_run, rules=rules, progress=progress)


def index_writes_lock(settings: Settings) -> Path | SharedLock:
    """The lock between bulk writes and alert runs (``SettledMatcher``)."""
    return lock_at(settings.layout.index_writes_lock, settings.state_url, "index-writes")


class SettledMatcher:
    """A matcher whose ``refresh`` first waits for the bulk writes in flight.

    A rule's window ends when its alert run starts, and its checkpoint moves there; an article
    is in the window by the ``indexed`` time its bulk write stamped. A write that stamped before
    the window closed but lands after the refresh would fall behind the checkpoint unseen.
    Each write holds the index-writes lock non-exclusively from before it stamps until it is
    written (``_analyse_and_index_batch``); the refresh takes it exclusively, so it comes after
    every such write (on every host, with the shared state's advisory lock).
    """

    def __init__(self, inner: Matcher, writes: Path | SharedLock) -> None:
        self.inner, self.writes, self.name = inner, writes, inner.name

    def refresh(self) -> bool:
        with ExitStack() as stack:
            try:
                stack.enter_context(file_lock(self.writes, timeout=SETTLE_WAIT_S))
            except NewsmonError:
                pass  # a write stalled past SETTLE_WAIT_S: see there
            return self.inner.refresh()

    def pages(self, query: RuleQuery, since: datetime, until: datetime) -> Iterator[MatchPage]:
        return self.inner.pages(query, since, until)


def run_alert_rules(
    settings: Settings,
    *,
    mode: Mode = "immediate",
    progress: Progress | None = None,
    client: Elasticsearch | None = None,
) -> dict[str, int]:
    """Run the alert rules; an SMTP failure is reported, and its stories stay pending."""
    stats = alert_run(settings, mode=mode, progress=progress, client=client)
    if stats.error and progress:
        progress(f"alerts not sent: {stats.error}; they stay pending for the next run")
    return int_fields(stats)


def summary_table(summary: RunSummary) -> Table:
    table = Table(title=f"newsmon run ({summary.seconds:.1f}s)", show_header=True)
    table.add_column("stage")
    table.add_column("count", justify="right")
    crawl = summary.crawl
    rows: list[tuple[str, Any]] = [
        ("pages fetched", crawl.get("pages_fetched", 0)),
        ("articles new", crawl.get("articles_new", 0)),
        ("articles updated", crawl.get("articles_updated", 0)),
        ("articles unchanged", crawl.get("articles_unchanged", 0)),
    ]
    rows += [(f"skipped: {k}", v) for k, v in sorted(crawl.get("skipped", {}).items())]
    rows += [(f"error: {k}", v) for k, v in sorted(crawl.get("errors", {}).items())]
    why = crawl.get("healed_why", {})
    rows += [
        (f"{why.get(k, 'feed failed')}: {k}", f"replaced by {v}")
        for k, v in sorted(crawl.get("healed", {}).items())
    ]
    rows.append(("articles analysed", summary.process.analyzed))
    rows += [(f"index: {k}", v) for k, v in sorted(summary.process.indexed.items())]
    rows += [(f"error: {k}", v) for k, v in sorted(summary.process.errors.items())]
    rows += [(f"alerts: {k}", v) for k, v in sorted(summary.alerts.items())]
    if summary.health_unrecorded:
        rows.append(("crawl health: not recorded", summary.health_unrecorded))
    for name, value in rows:
        table.add_row(name, str(value))
    return table
