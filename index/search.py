"""Analyst search and stats over the articles alias.

The query text goes to the sub-fields whose analyzer matches its script (``*.ko`` nori for
Hangul, ``*.zh`` smartcn for Chinese, the ``standard`` base field otherwise), so query and
documents are tokenized alike; the ``*.cjk`` bigram fields add a low-weight recall net for
words the morphological analyzers segment differently in a query and in a document.
``simple_query_string`` keeps the usual syntax: ``"phrase"``, ``-exclude``, ``a | b``;
words are ANDed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from elasticsearch import Elasticsearch

from newsmon.errors import NewsmonError
from newsmon.index.client import articles_alias, es_client
from newsmon.scripts import HAN, HANGUL, KANA
from newsmon.settings import Settings

When = datetime | date | str
Sort = Literal["relevance", "date"]

_RELATIVE = re.compile(r"^(\d+)([mhdwMy])$")
_FRAGMENT = 160
_HIT_SOURCE = ["title", "url", "site", "lang", "published", "topics", "alert"]


@dataclass
class SearchHit:
    id: str
    title: str
    url: str
    site: str
    lang: str | None
    published: datetime | None
    score: float | None
    snippets: list[str]  # highlighted with <em>...</em>; the text's start when nothing matched
    topics: list[str] = field(default_factory=list)
    alert: bool = False


@dataclass
class SearchResult:
    total: int
    hits: list[SearchHit]
    took_ms: int


@dataclass
class Bucket:
    key: str
    count: int


@dataclass
class ArticleStats:
    total: int
    topics: list[Bucket]
    sites: list[Bucket]
    langs: list[Bucket]
    entities: list[Bucket]
    days: list[Bucket]  # key: YYYY-MM-DD (start of the interval)


def parse_when(text: str) -> str:
    """CLI dates: ``7d``/``24h``/``2w`` mean that long ago, else an ISO date or ES date math."""
    text = text.strip()
    match = _RELATIVE.match(text)
    if match:
        return f"now-{match.group(1)}{match.group(2)}"
    if text.startswith("now"):
        return text
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise NewsmonError(f"{text!r} is not a date (2026-05-01), a time ago (7d, 24h) or now-...") from None
    return text


def _bound(value: When) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        value = value.isoformat()
    # A bare day means the whole day: ES rounds ``||/d`` down for gte and up for lte.
    return f"{value}||/d" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else value


@dataclass(frozen=True)
class Filters:
    """What search, stats and reprocess narrow the articles by; dates apply to ``date``."""

    topic: str | None = None
    lang: str | None = None
    site: str | None = None  # a host (etnews.com) or a registry name (etnews)
    entity: str | None = None
    since: When | None = None
    until: When | None = None
    alert: bool | None = None

    def clauses(self) -> list[dict[str, Any]]:
        clauses: list[dict[str, Any]] = []
        for name, value in (("topics", self.topic), ("lang", self.lang), ("entities", self.entity)):
            if value:
                clauses.append({"term": {name: value}})
        if self.site:
            site = self.site
            clauses.append({"bool": {"should": [{"term": {"site": site}}, {"term": {"source": site}}]}})
        if self.since or self.until:
            bounds = {"gte": _bound(self.since)} if self.since else {}
            if self.until:
                bounds["lte"] = _bound(self.until)
            clauses.append({"range": {"date": bounds}})
        if self.alert is not None:
            clauses.append({"term": {"alert.export_controls": self.alert}})
        return clauses


def text_fields(query: str, lang: str | None = None) -> list[str]:
    """The analyzed fields for ``query``: those whose analyzer suits its script (and ``lang``)."""
    langs = {lang.split("-")[0].lower()} if lang else set()
    if HANGUL.search(query):
        langs.add("ko")
    elif HAN.search(query) and not KANA.search(query):
        langs.add("zh")
    fields = [f for code in sorted(langs & {"ko", "zh"}) for f in (f"title.{code}^3", f"text.{code}")]
    if not (HANGUL.search(query) or HAN.search(query)) or "en" in langs or not fields:
        fields += ["title^3", "text"]
    return fields


def build_query(query: str, filters: list[dict[str, Any]], lang: str | None = None) -> dict[str, Any]:
    if not query.strip():
        return {"bool": {"filter": filters}}
    should: list[dict[str, Any]] = [
        {
            "simple_query_string": {
                "query": query,
                "fields": text_fields(query, lang),
                "default_operator": "and",
            }
        }
    ]
    if _is_cjk(query):
        should.append(
            {
                "simple_query_string": {
                    "query": query,
                    "fields": ["title.cjk^2", "text.cjk"],
                    "default_operator": "and",  # "or" would let "-x y" match everything without x
                    "boost": 0.3,
                }
            }
        )
    return {"bool": {"filter": filters, "should": should, "minimum_should_match": 1}}


def _is_cjk(text: str) -> bool:
    return bool(HANGUL.search(text) or HAN.search(text) or KANA.search(text))


def _highlight(query: str, lang: str | None) -> dict[str, Any]:
    names = {"text"}
    if query.strip():
        names |= {f.split("^")[0] for f in text_fields(query, lang) if f.startswith("text")}
        if _is_cjk(query):
            names.add("text.cjk")
    fields: dict[str, Any] = {name: {} for name in sorted(names)}
    fields["text"] = {"no_match_size": _FRAGMENT}  # no match (or no query): the text's start
    return {
        "fields": fields,
        "pre_tags": ["<em>"],
        "post_tags": ["</em>"],
        "fragment_size": _FRAGMENT,
        "number_of_fragments": 3,
        "max_analyzed_offset": 200_000,  # bounded work on pathological pages
    }


def _snippets(highlight: dict[str, list[str]]) -> list[str]:
    """The fragments of the best-matching field: a language field, then standard, then bigrams."""
    ranked = sorted(highlight.items(), key=lambda kv: (kv[0] == "text", kv[0].endswith(".cjk")))
    best = next((frags for _, frags in ranked if any("<em>" in f for f in frags)), highlight.get("text", []))
    return [f.replace("</em><em>", "") for f in best]  # nori splits 수출통제 in two: one mark


def _hit(raw: dict[str, Any]) -> SearchHit:
    src = raw["_source"]
    published = src.get("published")
    return SearchHit(
        id=raw["_id"],
        title=src.get("title", ""),
        url=src.get("url", ""),
        site=src.get("site", ""),
        lang=src.get("lang"),
        published=datetime.fromisoformat(published) if published else None,
        score=raw.get("_score"),
        snippets=_snippets(raw.get("highlight", {})),
        topics=src.get("topics") or [],
        alert=bool((src.get("alert") or {}).get("export_controls")),
    )


def search_articles(
    settings: Settings,
    query: str,
    filters: Filters = Filters(),
    *,
    sort: Sort = "relevance",
    size: int = 10,
    client: Elasticsearch | None = None,
) -> SearchResult:
    """Articles matching ``query`` (empty: all) and the filters, best or newest first."""
    if sort not in ("relevance", "date"):
        raise NewsmonError(f"sort must be 'relevance' or 'date', not {sort!r}")
    client = client or es_client(settings)
    order: list[Any] = ["_score", {"date": "desc"}] if sort == "relevance" else [{"date": "desc"}, "_score"]
    resp = client.search(
        index=articles_alias(settings),
        query=build_query(query, filters.clauses(), filters.lang),
        sort=order,
        track_scores=True,
        size=size,
        source=_HIT_SOURCE,
        highlight=_highlight(query, filters.lang),
        track_total_hits=True,
    )
    return SearchResult(
        total=resp["hits"]["total"]["value"],
        hits=[_hit(h) for h in resp["hits"]["hits"]],
        took_ms=resp["took"],
    )


@dataclass
class StoryTitle:
    lang: str
    title: str
    url: str
    site: str


@dataclass
class StoryHit:
    """One event story: its reports, aggregated (the articles carry ``story_id``)."""

    id: str
    articles: int
    first_seen: datetime | None
    last_seen: datetime | None
    titles: list[StoryTitle]  # the first report in each language
    sites: list[str]
    langs: list[str]
    entities: list[str]
    alert_articles: int  # reports the NLP flagged as export-control news


@dataclass
class StoryResult:
    total: int  # stories with a matching report
    stories: list[StoryHit]
    took_ms: int


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _story(bucket: dict[str, Any]) -> StoryHit:
    titles = []
    for lang in bucket["titles"]["buckets"]:
        src = lang["first"]["hits"]["hits"][0]["_source"]
        titles.append(StoryTitle(lang["key"], src.get("title", ""), src.get("url", ""), src.get("site", "")))
    return StoryHit(
        id=bucket["key"],
        articles=bucket["doc_count"],
        first_seen=_when(bucket["first_seen"].get("value_as_string")),
        last_seen=_when(bucket["last_seen"].get("value_as_string")),
        titles=titles,
        sites=[b["key"] for b in bucket["sites"]["buckets"]],
        langs=[b["key"] for b in bucket["langs"]["buckets"]],
        entities=[b["key"] for b in bucket["entities"]["buckets"]],
        alert_articles=bucket["alerts"]["doc_count"],
    )


def search_stories(
    settings: Settings,
    query: str,
    filters: Filters = Filters(),
    *,
    size: int = 10,
    client: Elasticsearch | None = None,
) -> StoryResult:
    """Stories with a report matching ``query`` and the filters, latest report first: per story
    its first title in each language, first and last report, outlets, languages, entities and how
    many reports were flagged as alerts."""
    client = client or es_client(settings)
    first = {"top_hits": {"size": 1, "sort": [{"date": "asc"}], "_source": ["title", "url", "site"]}}
    resp = client.search(
        index=articles_alias(settings),
        query=build_query(query, [*filters.clauses(), {"exists": {"field": "story_id"}}], filters.lang),
        size=0,
        aggs={
            "count": {"cardinality": {"field": "story_id"}},
            "stories": {
                "terms": {"field": "story_id", "size": size, "order": {"last_seen": "desc"}},
                "aggs": {
                    "first_seen": {"min": {"field": "date"}},
                    "last_seen": {"max": {"field": "date"}},
                    "titles": {"terms": {"field": "lang", "size": 10}, "aggs": {"first": first}},
                    "sites": {"terms": {"field": "site", "size": 20}},
                    "langs": {"terms": {"field": "lang", "size": 10}},
                    "entities": {"terms": {"field": "entities", "size": 10}},
                    "alerts": {"filter": {"term": {"alert.export_controls": True}}},
                },
            },
        },
        track_total_hits=True,
    )
    aggs = resp["aggregations"]
    return StoryResult(
        total=aggs["count"]["value"],
        stories=[_story(b) for b in aggs["stories"]["buckets"]],
        took_ms=resp["took"],
    )


def article_stats(
    settings: Settings,
    query: str = "",
    filters: Filters = Filters(),
    *,
    interval: Literal["day", "week", "month"] = "day",
    top: int = 10,
    client: Elasticsearch | None = None,
) -> ArticleStats:
    """Counts of the matching articles by topic, site, language, entity and ``interval``."""
    client = client or es_client(settings)
    terms = {"topics": "topics", "sites": "site", "langs": "lang", "entities": "entities"}
    aggs: dict[str, Any] = {name: {"terms": {"field": f, "size": top}} for name, f in terms.items()}
    aggs["days"] = {
        "date_histogram": {
            "field": "date",
            "calendar_interval": interval,
            "format": "yyyy-MM-dd",
            "min_doc_count": 1,
        }
    }
    resp = client.search(
        index=articles_alias(settings),
        query=build_query(query, filters.clauses(), filters.lang),
        size=0,
        aggs=aggs,
        track_total_hits=True,
    )
    out = resp["aggregations"]

    def buckets(name: str) -> list[Bucket]:
        return [Bucket(str(b.get("key_as_string", b["key"])), b["doc_count"]) for b in out[name]["buckets"]]

    return ArticleStats(
        total=resp["hits"]["total"]["value"],
        topics=buckets("topics"),
        sites=buckets("sites"),
        langs=buckets("langs"),
        entities=buckets("entities"),
        days=buckets("days"),
    )
