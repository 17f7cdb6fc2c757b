"""JSON lines in, analysed JSON lines out: the one path the CLI, the pipeline and the DAGs
share for files of articles.

Input lines need ``title`` and ``text``; ``id``, ``url``, ``canonical_url``, ``lang``
(a hint), ``published``, ``site`` and ``source`` are optional and every input key is kept.
Each output line adds lang, tokens, keywords, entities, topics, relevance, alert,
cluster_id and analyzer (and ``id`` when the input had none). A bad line becomes
``{"line": N, "error": "..."}`` in its place and the others go on.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any

from pydantic import ValidationError

from newsmon.models import Article
from newsmon.nlp.pipeline import BATCH_SIZE, Analyzer

ANALYSIS_FIELDS = (
    "lang",
    "tokens",
    "keywords",
    "entities",
    "topics",
    "relevance",
    "alert",
    "cluster_id",
    "story_id",
    "analyzer",
)


@dataclass
class AnalyzeStats:
    lines: int = 0  # non-blank input lines
    analysed: int = 0
    errors: int = 0
    alerts: int = 0
    clusters: set[str] = field(default_factory=set)
    stories: set[str] = field(default_factory=set)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.analysed} analysed, {self.errors} bad lines, {self.alerts} export-control alerts, "
            f"{len(self.clusters)} story clusters, {len(self.stories)} event stories in {self.seconds:.1f}s"
        )


class BadLine(ValueError):
    pass


def _article(record: Any) -> Article:
    if not isinstance(record, dict):
        raise BadLine("a line must hold a JSON object")
    for key in ("title", "text"):
        if not isinstance(record.get(key), str):
            raise BadLine(f"{key!r} must be a string")
    if not (record["title"].strip() or record["text"].strip()):
        raise BadLine("both 'title' and 'text' are empty")
    # Without a URL the input id, or else the content, names the article, so the same record
    # gets the same article (and cluster) id on every run.
    name = record.get("id") or hashlib.sha1(f"{record['title']}\n{record['text']}".encode()).hexdigest()
    canonical = record.get("canonical_url") or record.get("url") or f"urn:newsmon:{name}"
    fields = {k: record[k] for k in ("published", "site", "source", "lang") if record.get(k) is not None}
    try:
        return Article(
            url=record.get("url") or canonical,
            canonical_url=canonical,
            title=record["title"],
            text=record["text"],
            **fields,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadLine(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None


@dataclass(frozen=True)
class _Line:
    record: dict[str, Any]  # the input object, or the error record for a bad line
    article: Article | None = None


def _parse(lineno: int, line: str) -> _Line:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return _Line({"line": lineno, "error": f"invalid JSON: {exc.msg} (column {exc.colno})"})
    try:
        return _Line(record, _article(record))
    except BadLine as exc:
        return _Line({"line": lineno, "error": str(exc)})


def _output(record: dict[str, Any], analysed: Article) -> dict[str, Any]:
    data = analysed.model_dump(mode="json", include=set(ANALYSIS_FIELDS))
    return {**record, "id": record.get("id") or analysed.id, **data}


def _numbered_lines(stream: Iterable[str]) -> Iterator[tuple[int, str]]:
    for lineno, line in enumerate(stream, 1):
        if line.strip():
            yield lineno, line


def analyze_jsonl(
    in_stream: Iterable[str],
    out_stream: IO[str],
    *,
    analyzer: Analyzer | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> AnalyzeStats:
    """Analyse every JSON line of in_stream into out_stream, in input order."""
    from newsmon.nlp.pipeline import default_analyzer

    analyzer = analyzer or default_analyzer()
    stats = AnalyzeStats()
    started = time.monotonic()
    lines = _numbered_lines(in_stream)
    try:
        while chunk := list(islice(lines, batch_size)):
            parsed = [_parse(n, line) for n, line in chunk]
            analysed = iter(analyzer.analyze_batch([p.article for p in parsed if p.article is not None]))
            for item in parsed:
                if item.article is None:
                    out = item.record
                    stats.errors += 1
                else:
                    result = next(analysed)
                    out = _output(item.record, result)
                    stats.analysed += 1
                    stats.alerts += result.alert.export_controls
                    stats.clusters.add(result.cluster_id or "")
                    stats.stories.add(result.story_id or "")
                out_stream.write(json.dumps(out, ensure_ascii=False) + "\n")
            stats.lines += len(chunk)
            if progress is not None:
                progress(len(chunk))
    finally:
        analyzer.clusters.save()
        if analyzer.stories is not None:
            analyzer.stories.save()
    stats.seconds = time.monotonic() - started
    return stats
