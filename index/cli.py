"""Typer commands for the index side; ``newsmon.cli`` mounts them::

    app.command("search")(search_command)
    app.command("stats")(stats_command)
    app.add_typer(kibana_app, name="kibana")

(``newsmon index`` and ``newsmon reprocess`` analyse as well, so they live with the app in
``newsmon.cli``.) Each prints rich tables, or one JSON document with ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from newsmon.errors import NewsmonError
from newsmon.index.search import Filters, Sort, parse_when
from newsmon.settings import get_settings

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
TopicOpt = Annotated[str | None, typer.Option(help="Only this topic label.")]
LangOpt = Annotated[str | None, typer.Option(help="Only this language (ko, zh, en).")]
SiteOpt = Annotated[str | None, typer.Option(help="Only this host or source name.")]
EntityOpt = Annotated[str | None, typer.Option(help="Only articles naming this entity.")]
SinceOpt = Annotated[str | None, typer.Option(help="From this date (2026-05-01) or time ago (7d, 24h).")]
UntilOpt = Annotated[str | None, typer.Option(help="Up to this date (inclusive) or time ago.")]
AlertOpt = Annotated[
    bool | None, typer.Option("--alert/--no-alert", help="Only (or no) export-control alerts.")
]


def print_json(obj: Any) -> None:
    out.print_json(json.dumps(obj, ensure_ascii=False, default=str))


def counts_table(title: str, rows: dict[str, Any], value_name: str = "count") -> Table:
    table = Table(title=title)
    table.add_column("")
    table.add_column(value_name, justify="right")
    for name, value in rows.items():
        table.add_row(name, ", ".join(value) if isinstance(value, list) else str(value))
    return table


@contextmanager
def progress_bar(total: int | None, what: str) -> Iterator[Callable[[int], None]]:
    columns = [TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def _filters(
    topic: str | None,
    lang: str | None,
    site: str | None,
    entity: str | None,
    since: str | None,
    until: str | None,
    alert: bool | None,
) -> Filters:
    return Filters(
        topic=topic,
        lang=lang,
        site=site,
        entity=entity,
        since=parse_when(since) if since else None,
        until=parse_when(until) if until else None,
        alert=alert,
    )


def search_command(
    query: Annotated[str, typer.Argument(help='Words (ANDed), "phrases", -exclusions; empty: all.')] = "",
    topic: TopicOpt = None,
    lang: LangOpt = None,
    site: SiteOpt = None,
    entity: EntityOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    alert: AlertOpt = None,
    sort: Annotated[str, typer.Option(help="relevance or date.")] = "relevance",
    size: Annotated[int, typer.Option(help="How many hits.")] = 10,
    stories: Annotated[
        bool, typer.Option("--stories", help="List event stories (latest first), not articles.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Search indexed articles; prints highlighted snippets."""
    from newsmon.index.search import search_articles

    if stories:
        _print_stories(query, _filters(topic, lang, site, entity, since, until, alert), size, json_out)
        return
    if sort not in ("relevance", "date"):
        raise NewsmonError(f"--sort must be relevance or date, not {sort!r}")
    sort_by: Sort = "date" if sort == "date" else "relevance"
    result = search_articles(
        get_settings(),
        query,
        _filters(topic, lang, site, entity, since, until, alert),
        sort=sort_by,
        size=size,
    )
    if json_out:
        print_json(asdict(result))
        return
    table = Table(title=f"{result.total} articles ({result.took_ms} ms)", show_lines=True)
    for name in ("published", "site", "lang", "score", "article"):
        table.add_column(name, overflow="fold")
    for hit in result.hits:
        snippet = " … ".join(hit.snippets)
        body = f"[bold]{escape(hit.title)}[/]\n{escape(hit.url)}"
        if snippet:
            body += "\n" + escape(snippet).replace("<em>", "[yellow]").replace("</em>", "[/]")
        table.add_row(
            f"{hit.published:%Y-%m-%d %H:%M}" if hit.published else "",
            hit.site,
            hit.lang or "",
            f"{hit.score:.2f}" if hit.score is not None else "",
            body,
        )
    out.print(table)


def _print_stories(query: str, filters: Filters, size: int, json_out: bool) -> None:
    from newsmon.index.search import search_stories

    result = search_stories(get_settings(), query, filters, size=size)
    if json_out:
        print_json(asdict(result))
        return
    table = Table(title=f"{result.total} stories ({result.took_ms} ms)", show_lines=True)
    for name in ("first seen", "reports", "outlets", "languages", "alerts", "story"):
        table.add_column(name, overflow="fold")
    for story in result.stories:
        titles = "\n".join(f"[bold]{escape(t.lang)}[/] {escape(t.title)}" for t in story.titles)
        table.add_row(
            f"{story.first_seen:%Y-%m-%d %H:%M}" if story.first_seen else "",
            str(story.articles),
            escape(", ".join(story.sites)),
            ", ".join(story.langs),
            str(story.alert_articles),
            f"{titles}\n{escape(', '.join(story.entities))}\n[dim]{escape(story.id)}[/]",
        )
    out.print(table)


def stats_command(
    query: Annotated[str, typer.Argument(help="Optional query, as for search.")] = "",
    topic: TopicOpt = None,
    lang: LangOpt = None,
    site: SiteOpt = None,
    entity: EntityOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    alert: AlertOpt = None,
    interval: Annotated[str, typer.Option(help="day, week or month.")] = "day",
    top: Annotated[int, typer.Option(help="Rows per table.")] = 10,
    json_out: JsonOpt = False,
) -> None:
    """Article counts by topic, site, language, entity and day."""
    from newsmon.index.search import article_stats

    if interval not in ("day", "week", "month"):
        raise NewsmonError(f"--interval must be day, week or month, not {interval!r}")
    stats = article_stats(
        get_settings(),
        query,
        _filters(topic, lang, site, entity, since, until, alert),
        interval=interval,  # type: ignore[arg-type]
        top=top,
    )
    if json_out:
        print_json(asdict(stats))
        return
    out.print(f"{stats.total} articles")
    for title, buckets in (
        ("topics", stats.topics),
        ("sites", stats.sites),
        ("languages", stats.langs),
        ("entities", stats.entities),
        (f"per {interval}", stats.days),
    ):
        out.print(counts_table(title, {b.key: b.count for b in buckets}))


kibana_app = typer.Typer(help="Kibana saved objects (data view, searches, dashboard).", no_args_is_help=True)


@kibana_app.command("import")
def kibana_import_command(
    url: Annotated[str, typer.Option(help="Kibana base URL.")] = "http://127.0.0.1:5601",
    space: Annotated[str | None, typer.Option(help="Kibana space id (default space if omitted).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace objects that already exist.")] = True,
    user: Annotated[str | None, typer.Option(help="Kibana user (default: NEWSMON_ES_USER).")] = None,
    password: Annotated[str | None, typer.Option(help="Password (default: NEWSMON_ES_PASSWORD).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Import the data view, saved searches and dashboard into Kibana."""
    from newsmon.index.kibana import kibana_import

    settings = get_settings()
    answer = kibana_import(
        url,
        space,
        prefix=settings.index_prefix,
        overwrite=overwrite,
        user=user or settings.es_user,
        password=password if password is not None else settings.es_password,
        ca_certs=settings.es_ca_certs,
    )
    if json_out:
        print_json(answer)
    else:
        out.print(f"imported {answer.get('successCount', 0)} saved objects into Kibana at {url}")
