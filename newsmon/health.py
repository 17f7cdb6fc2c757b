"""Crawl health for Kibana: each run, stage and canary check leaves one small document in the
``{prefix}-runs`` index (``newsmon.index.runs``).

``newsmon run``, the DAG tasks and the canary build their documents here and hand them to
``record``. Recording is best effort: the health log must never fail the run it describes,
so an Elasticsearch that is down or refuses a document costs a one-line warning and a count
(``health_unrecorded`` in the run's summary), nothing else. Documents are bounded: crawled
pages decide skip reasons, error kinds and canary problems, so their lists are capped.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsmon.errors import one_line
from newsmon.models import utcnow
from newsmon.settings import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from newsmon.alerts.run import AlertRunStats
    from newsmon.canary import SiteCheck
    from newsmon.crawlers.run import CrawlStats
    from newsmon.pipeline import ProcessStats

log = logging.getLogger("newsmon.health")

MAX_SOURCES = 200  # source names and per-source documents of one crawl
MAX_KEYS = 50  # skip reasons, error kinds, index and alert counts: the largest ones
MAX_PROBLEMS = 10  # canary problems of one site
MAX_TEXT = 500  # characters of one problem or error line


def new_run_id() -> str:
    return uuid.uuid4().hex


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _counts(counts: Mapping[str, int]) -> dict[str, int]:
    """The ``MAX_KEYS`` largest counts; a dot in a key would make a sub-object, so it becomes ``_``."""
    largest = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_KEYS]
    return {_clip(k).replace(".", "_"): int(v) for k, v in largest}


def _doc(kind: str, run_id: str, source: str | None = None, **fields: Any) -> dict[str, Any]:
    """One document; its ``_id`` (run, kind, source) makes a re-sent document overwrite itself."""
    doc_id = f"{run_id}-{kind}" + (f"-{source}" if source else "")
    doc = {"_id": doc_id, "time": utcnow().isoformat(), "kind": kind, "run_id": run_id}
    doc["host"] = socket.gethostname()
    if source:
        doc["source"] = source
    return doc | {k: v for k, v in fields.items() if v is not None}


def crawl_doc(run_id: str, crawl: Mapping[str, Any], sources: Sequence[str]) -> dict[str, Any]:
    """A crawl's totals (``crawl``: the fields of its CrawlStats); ``source`` when it had one."""
    skipped, errors = crawl.get("skipped", {}), crawl.get("errors", {})
    return _doc(
        "crawl",
        run_id,
        sources[0] if len(sources) == 1 else None,
        sources=list(sources[:MAX_SOURCES]),
        seconds=crawl.get("seconds"),
        fetched=crawl.get("pages_fetched", 0),
        new=crawl.get("articles_new", 0),
        updated=crawl.get("articles_updated", 0),
        unchanged=crawl.get("articles_unchanged", 0),
        skipped=_counts(skipped),
        skipped_total=sum(skipped.values()),
        errors=_counts(errors),
        errors_total=sum(errors.values()),
        healed=len(crawl.get("healed", {})),
    )


def delivered_per_source(path: Path) -> Counter[str]:
    """Articles (new or updated) per source in a crawl's JSON lines; a line that does not parse
    is left to the process stage, which counts it."""
    counts: Counter[str] = Counter()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                counts[str(json.loads(line).get("source") or "?")] += 1
            except (ValueError, AttributeError):
                continue
    return counts


def source_docs(run_id: str, articles: Mapping[str, int]) -> list[dict[str, Any]]:
    """One document per source of a crawl with the articles it delivered (Kibana's articles per
    source per day); the ``MAX_SOURCES`` largest."""
    largest = sorted(articles.items(), key=lambda kv: -kv[1])[:MAX_SOURCES]
    return [_doc("source", run_id, name, articles=n) for name, n in largest]


def process_doc(run_id: str, stats: Any) -> dict[str, Any]:
    """The process stage (``stats``: a ProcessStats)."""
    return _doc(
        "process",
        run_id,
        seconds=getattr(stats, "seconds", None),
        files=stats.files,
        analyzed=stats.analyzed,
        indexed=_counts(stats.indexed),
        errors=_counts(stats.errors),
        errors_total=sum(stats.errors.values()),
    )


def alerts_doc(
    run_id: str, counts: Mapping[str, int], error: str | None = None, seconds: float | None = None
) -> dict[str, Any]:
    return _doc(
        "alerts", run_id, alerts=_counts(counts), error=_clip(error) if error else None, seconds=seconds
    )


def run_doc(run_id: str, seconds: float, error: str | None, sources: Sequence[str]) -> dict[str, Any]:
    """``newsmon run`` as a whole: how long it took and the failure that ended it early."""
    return _doc(
        "run",
        run_id,
        seconds=seconds,
        sources=list(sources[:MAX_SOURCES]),
        ok=error is None,
        error=_clip(error) if error else None,
    )


def canary_docs(run_id: str, checks: Iterable[SiteCheck]) -> list[dict[str, Any]]:
    """One document per site check: pass or fail and why (the first problem as ``reason``)."""
    return [
        _doc(
            "canary",
            run_id,
            check.source,
            ok=check.ok,
            problems=[_clip(p) for p in check.problems[:MAX_PROBLEMS]],
            reason=_clip(check.problems[0]) if check.problems else None,
            count=check.count,
            baseline=check.baseline,
        )
        for check in checks
    ]


def record(
    settings: Settings,
    docs: Sequence[dict[str, Any]],
    *,
    client: Elasticsearch | None = None,
    warn: Callable[[str], None] | None = None,
) -> int:
    """Index ``docs`` into the crawl-health index; returns how many were NOT recorded. Never
    raises for Elasticsearch's sake: a failure is one warning line (``warn``, else the log)."""
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    from newsmon.index.client import es_client
    from newsmon.index.runs import index_runs

    if not docs:
        return 0
    warn = warn or log.warning
    try:
        refused = index_runs(settings, docs, client or es_client(settings))
    except (ApiError, TransportError) as exc:
        reason = one_line(exc, settings.es_url) or type(exc).__name__
        warn(f"warning: crawl health not recorded ({len(docs)} documents): {reason}")
        return len(docs)
    if refused:
        warn(f"warning: crawl health: {len(refused)} of {len(docs)} documents refused, e.g. {refused[0]}")
    return len(refused)


def record_crawl_health(
    settings: Settings,
    stats: CrawlStats,
    names: Sequence[str],
    *,
    run_id: str | None = None,
    client: Elasticsearch | None = None,
    warn: Callable[[str], None] | None = None,
) -> int:
    """Record a crawl's totals and its articles per source in the crawl-health index (before its
    inbox file is processed away); returns how many documents were not recorded."""
    run_id = run_id or new_run_id()
    # With the shared state the articles went to the inbox queue, not a file: no per-source count.
    out = stats.out_file
    per_source = delivered_per_source(out) if out is not None and out.exists() else {}
    docs = [crawl_doc(run_id, vars(stats), names), *source_docs(run_id, per_source)]
    return record(settings, docs, client=client, warn=warn)


def record_stage_health(
    settings: Settings, stats: ProcessStats | AlertRunStats, *, warn: Callable[[str], None] | None = None
) -> int:
    """Record a process or alerts stage run by a DAG task; returns the documents not recorded."""
    from newsmon.pipeline import ProcessStats, int_fields

    if isinstance(stats, ProcessStats):
        doc = process_doc(new_run_id(), stats)
    else:
        doc = alerts_doc(new_run_id(), int_fields(stats), stats.error)
    return record(settings, [doc], warn=warn)
