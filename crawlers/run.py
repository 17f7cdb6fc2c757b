"""``crawl()``: the library entry point that the CLI, the tests and Airflow call."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsmon.crawlers.legacy_store import import_legacy, retire_legacy_store
from newsmon.crawlers.registry import Source
from newsmon.crawlers.scrapy_settings import scrapy_settings
from newsmon.crawlers.store import NEW, UPDATED, drain_outboxes, open_store, source_locks, store_location
from newsmon.errors import NewsmonError
from newsmon.layout import DataDir, stamp
from newsmon.settings import Settings


@dataclass
class CrawlStats:
    pages_fetched: int
    articles_new: int
    articles_updated: int
    articles_unchanged: int
    skipped: dict[str, int]
    errors: dict[str, int]
    out_file: Path | None  # None: delivered to the shared inbox queue
    log_file: Path | None = None
    exit_code: int = 0  # of the crawl child process; non-zero: interrupted (articles so far are kept)
    scrapy: dict[str, Any] = field(default_factory=dict, repr=False)  # raw Scrapy stats
    # Sources left out because another crawl of them was running (counted as skipped source_busy).
    sources_busy: list[str] = field(default_factory=list)
    run_dir: Path | None = None  # this crawl's job, stats and log files
    # Configured feeds and sitemaps that failed or stayed quiet -> the feed found on the outlet's
    # homepage that replaced them, and why each was replaced ("feed failed", "sitemap quiet for 5 runs").
    healed: dict[str, str] = field(default_factory=dict)
    healed_why: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the crawl, set by its caller


# Per-run folders (job.json, stats.json, crawl.log, crawl.stderr) under crawl/runs: the newest
# RUNS_KEPT stay; an older one is only removed once nothing in it changed for RUN_LIVE_S
# (a running crawl's log gets Scrapy's stats line every minute).
RUNS_KEPT = 100
_HEALED = "newsmon/healed/"  # stats key prefix: a failed feed or sitemap -> the feed that replaced it
_HEALED_WHY = "newsmon/healed_why/"  # ... -> why it was replaced
RUN_LIVE_S = 3600.0


def _new_run_dir(data_dir: Path, names: list[str]) -> Path:
    label = names[0] if len(names) == 1 else f"{len(names)}-sources"
    path = DataDir(data_dir).crawl_runs / f"{stamp()}-{os.getpid()}-{label}"
    path.mkdir(parents=True)
    return path


def prune_runs(data_dir: Path, keep: int = RUNS_KEPT, now: float | None = None) -> list[str]:
    """Remove run folders beyond the newest ``keep`` (by name: start time); their names."""
    now = time.time() if now is None else now
    root = DataDir(data_dir).crawl_runs
    runs = sorted((p for p in root.iterdir() if p.is_dir()), reverse=True) if root.is_dir() else []
    removed = []
    for path in runs[keep:]:
        try:
            touched = max(p.stat().st_mtime for p in [path, *path.iterdir()])
        except FileNotFoundError:  # another crawl is pruning it
            continue
        if now - touched > RUN_LIVE_S:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def _prefixed(stats: dict[str, Any], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): int(v) for k, v in sorted(stats.items()) if k.startswith(prefix)}


def _texts(stats: dict[str, Any], prefix: str) -> dict[str, str]:
    return {k.removeprefix(prefix): str(v) for k, v in sorted(stats.items()) if k.startswith(prefix)}


def crawl(
    sources: list[Source],
    settings: Settings,
    out_file: Path | None,
    since: datetime | None = None,
    feeds_only: bool = False,
    progress: Callable[[str], None] | None = None,
    *,
    scrapy_overrides: dict[str, Any] | None = None,
    lock_wait: float = 0.0,
) -> CrawlStats:
    """Crawl ``sources``; append new and updated articles to ``out_file`` as JSON lines (None:
    to the shared inbox queue, with ``NEWSMON_STATE_URL``).

    Runs Scrapy in a child process. Articles are committed to their source's crawl store as
    they are extracted and copied to ``out_file`` at the end, so an interrupted crawl loses
    nothing: what it committed is delivered (by this call, or by the next one of that source).

    Each source's store is locked for the crawl. A source that another crawl holds is left
    out (that crawl fetches its articles), counted as skipped ``source_busy``; when every
    source is held, this waits up to ``lock_wait`` seconds, then raises NewsmonError.
    ``scrapy_overrides`` replaces Scrapy settings (tests and benchmarks drop the politeness delay).
    """
    if not sources:
        raise NewsmonError("no sources to crawl")
    say = progress or (lambda line: None)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    data, state_url = settings.data_dir, settings.state_url
    if out_file is None and state_url is None:
        raise NewsmonError(
            "a crawl without an output file delivers to the shared inbox: set NEWSMON_STATE_URL"
        )
    delivered: Counter[str] = Counter()
    # The single store of older versions is an embedded one: a shared state never had it.
    if state_url is None and (legacy := retire_legacy_store(data, out_file)) is not None:
        delivered += legacy
        say(
            f"retired the single crawl store of older versions: delivered {sum(legacy.values())} "
            f"article(s) from its outbox; it is now {DataDir(data).crawl_retired_state}"
        )
    names = [s.name for s in sources]
    with source_locks(data, names, wait=lock_wait, state_url=state_url) as (locks, busy):
        if not locks:
            raise NewsmonError(f"another crawl is running for every source asked for: {', '.join(busy)}")
        for name in busy:
            say(f"skipping {name}: another crawl of it is running (and fetches its articles)")
        sources = [s for s in sources if s.name in locks]
        stores = {s.name: store_location(data, state_url, s.name) for s in sources}
        left = _prepare_stores(sources, stores, settings, out_file, say)
        if left:
            say(f"delivered {sum(left.values())} article(s) left by an interrupted crawl")
        delivered += left
        run = _new_run_dir(data, list(stores))
        job_file, stats_file, log_file = run / "job.json", run / "stats.json", run / "crawl.log"
        job = {
            "sources": [s.model_dump(mode="json") for s in sources],
            "since": since.isoformat() if since else None,
            "feeds_only": feeds_only,
            "stores": stores,
            "stats_file": str(stats_file),
            "parent_pid": os.getpid(),  # the child stops when this process dies
            "scrapy": scrapy_settings(sources, settings, stores, log_file) | (scrapy_overrides or {}),
        }
        job_file.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if state_url:  # the child's stores are in the shared database (see store_location)
            env["NEWSMON_STATE_URL"] = state_url
        with open(run / "crawl.stderr", "w", encoding="utf-8") as stderr:
            child = subprocess.Popen(
                [sys.executable, "-m", "newsmon.crawlers.crawl_process", str(job_file)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=env,
                # The child shares the source locks: should this process die, they stay held
                # until the child (still writing to the stores) is gone too.
                pass_fds=sorted({fh.fileno() for fh in locks.values()}),  # shared: one session
            )
            say(f"crawl process pid={child.pid} log={log_file}")
            try:
                assert child.stdout is not None
                for line in child.stdout:
                    say(line.rstrip("\n"))
            finally:
                exit_code = child.wait()
        delivered += drain_outboxes(stores, out_file, state_url)
    prune_runs(data)
    raw: dict[str, Any] = json.loads(stats_file.read_text(encoding="utf-8")) if stats_file.exists() else {}
    errors = _prefixed(raw, "newsmon/errors/")
    # Exceptions escaping our own callbacks are bugs, but they must show, not vanish into the log.
    errors |= {f"spider_{name}": n for name, n in _prefixed(raw, "spider_exceptions/").items()}
    if exit_code != 0 or not raw:
        errors["crawl_process"] = errors.get("crawl_process", 0) + 1
        say(f"crawl process exited with code {exit_code}; see {run / 'crawl.stderr'} and {log_file}")
    skipped = _prefixed(raw, "newsmon/skipped/") | ({"source_busy": len(busy)} if busy else {})
    if raw.get("finish_reason") == "closespider_timeout":
        skipped["time_budget"] = 1
        say(
            f"crawl stopped at its time budget (NEWSMON_CRAWL_MAX_SECONDS={settings.crawl_max_seconds}); "
            "the next run goes on where it left off"
        )
    articles = Counter(_prefixed(raw, "newsmon/articles/"))
    return CrawlStats(
        pages_fetched=int(raw.get("downloader/response_count", 0)),
        articles_new=delivered[NEW],
        articles_updated=delivered[UPDATED],
        articles_unchanged=articles["unchanged"],
        skipped=dict(sorted(skipped.items())),
        errors=errors,
        out_file=out_file,
        log_file=log_file,
        exit_code=exit_code,
        scrapy=raw,
        sources_busy=busy,
        run_dir=run,
        healed=_texts(raw, _HEALED),
        healed_why=_texts(raw, _HEALED_WHY),
    )


def _prepare_stores(
    sources: list[Source],
    stores: dict[str, str],
    settings: Settings,
    out_file: Path | None,
    say: Callable[[str], None],
) -> Counter[str]:
    """Seed new embedded stores from the retired single store; deliver what earlier crawls left
    in the outboxes. Returns the delivered counts."""
    delivered: Counter[str] = Counter()
    retired = DataDir(settings.data_dir).crawl_retired_state
    for source in sources:
        store = open_store(stores[source.name], settings.state_url)
        try:
            taken = import_legacy(store, retired, source.allowed_domains) if store.path else None
            if taken is not None:
                say(f"{source.name}: took {taken} known URL(s) from the retired single crawl store")
            delivered += store.drain_outbox(out_file)
        finally:
            store.close()
    return delivered
