"""Typer commands for crawling, for the main CLI to mount:

    app.add_typer(sources_app, name="sources")  # newsmon sources list | check [NAME...]
    app.command("extract")(extract_command)  # newsmon extract FILE [--url URL] [--source NAME]

(``newsmon crawl`` is the run's first stage, so it lives with the app in ``newsmon.cli``.)

Failures raise ``NewsmonError`` (one line for the user), which the main CLI reports.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from newsmon.crawlers.check import SourceCheck, check_sources, http_fetcher
from newsmon.crawlers.extract import extract_article
from newsmon.crawlers.registry import Source, load_sources, rewrite_entry, select_sources
from newsmon.errors import NewsmonError
from newsmon.settings import Settings, get_settings

console = Console(highlight=False)
sources_app = typer.Typer(help="The registry of news sources.", no_args_is_help=True)


def _registry(settings: Settings) -> list[Source]:
    return load_sources(settings.sources)


@sources_app.command("list")
def sources_list(
    all_sources: Annotated[bool, typer.Option("--all", help="Include disabled sources.")] = False,
) -> None:
    """List the registered sources."""
    table = Table("name", "lang", "label", "feeds", "sitemaps", "lists", "rate/s", "confidence")
    for s in _registry(get_settings()):
        if s.enabled or all_sources:
            rate = f"{s.rate:g}" if s.rate else "-"
            table.add_row(
                s.name,
                s.lang,
                s.label,
                str(len(s.feeds)),
                str(len(s.sitemaps)),
                str(len(s.list_pages)),
                rate,
                s.confidence,
            )
    console.print(table)


def _print_check(result: SourceCheck) -> None:
    mark = "[green]ok[/]" if result.ok else "[red]FAIL[/]"
    newest = result.newest.isoformat() if result.newest else "-"
    console.print(f"{mark} [bold]{result.name}[/]  newest {newest}")
    for page in result.pages:
        status = page.status if page.status is not None else "---"
        extra = " ".join(x for x in (page.note, page.error) if x)
        console.print(f"    {page.kind:<8}{status!s:>4}  {page.links:>4} links  {page.url}  {extra}")
    if result.sample_url:
        date = result.published.isoformat() if result.published else "NO DATE"
        console.print(f"    sample: {result.title[:60]!r}  {result.body_chars} chars  {date}")


@sources_app.command("discover")
def sources_discover(
    homepage: Annotated[str, typer.Argument(help="The outlet's homepage URL.")],
    name: Annotated[str, typer.Option(help="Name of the entry to print.")] = "new-source",
    lang: Annotated[str, typer.Option(help="ko, zh or en.")] = "ko",
) -> None:
    """Find an outlet's feeds, sitemaps and list pages from its homepage; print a registry entry."""
    from newsmon.crawlers.autodiscover import discover_outlet

    settings = get_settings()
    found = discover_outlet(homepage, http_fetcher(settings.user_agent))
    note = f" (Google News: {', '.join(found.news_sitemaps)})" if found.news_sitemaps else ""
    typer.echo(
        f"# {len(found.feeds)} feed(s), {len(found.sitemaps)} sitemap(s){note}, {len(found.list_pages)} list "
        f"page(s), {len(found.article_urls)} article URLs, {found.requests} requests"
    )
    typer.echo(yaml.safe_dump([found.entry(name, lang)], allow_unicode=True, sort_keys=False).rstrip())
    if not (found.feeds or found.sitemaps or found.list_pages):
        raise NewsmonError(f"found no feed, sitemap or list page at {homepage}")


@sources_app.command("check")
def sources_check(
    names: Annotated[
        list[str] | None, typer.Argument(help="Sources to check (default: all enabled).")
    ] = None,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Write the result into the registry: an entry that passes becomes live-checked; "
            "one that fails gets the feeds, sitemaps and list pages its homepage publishes.",
        ),
    ] = False,
) -> None:
    """Fetch each source's feeds, sitemaps and list pages and one sample article; report what works."""
    settings = get_settings()
    sources = select_sources(_registry(settings), names)
    results = check_sources(sources, settings, progress=_print_check)
    if fix:
        results = [_fix(source, result, settings) for source, result in zip(sources, results, strict=True)]
    failed = [r.name for r in results if not r.ok]
    if failed:
        raise NewsmonError(f"{len(failed)} of {len(results)} source(s) failed the check: {', '.join(failed)}")


def _fix(source: Source, result: SourceCheck, settings: Settings) -> SourceCheck:
    """Record a passing check, or replace a failing entry's discovery URLs with what its homepage
    publishes and check it again; the entry is rewritten in its registry file either way."""
    from newsmon.crawlers.autodiscover import discover_outlet

    if not result.ok and source.homepage:
        found = discover_outlet(source.homepage, http_fetcher(settings.user_agent))
        if found.feeds or found.sitemaps or found.list_pages:
            source = source.model_copy(
                update={
                    "feeds": found.feeds,
                    "sitemaps": found.sitemaps,
                    "list_pages": found.list_pages,
                    "article_pattern": found.article_pattern or source.article_pattern,
                }
            )
            [result] = check_sources([source], settings, progress=_print_check)
    source = source.model_copy(update={"confidence": "live-checked" if result.ok else "guessed"})
    file = rewrite_entry(settings.sources, source)
    console.print(f"{source.name}: {source.confidence}, written to {file}", markup=False)
    return result


def parse_since(value: str) -> datetime:
    """``2025-03-01``, an ISO datetime, or a span back from now: ``36h``, ``7d``."""
    if match := re.fullmatch(r"(\d+)\s*([hd])", value.strip()):
        hours = int(match[1]) * (24 if match[2] == "d" else 1)
        return datetime.now(UTC) - timedelta(hours=hours)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise NewsmonError(
            f"--since {value!r}: use a date (2025-03-01), a datetime or a span (36h, 7d)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def read_page(file: str) -> bytes:
    """Page bytes from a path (``.gz`` is decompressed) or ``-`` for stdin."""
    data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    if file.endswith(".gz") or data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise NewsmonError(f"{file}: not valid gzip ({exc})") from None
    return data


def extract_json(data: bytes, url: str, source: Source | None = None) -> dict[str, Any]:
    """What ``newsmon extract`` prints: the article fields, ``is_article``, and ``skip`` (why not)."""
    result = extract_article(data, url, source)
    article = result.article
    fields = ("canonical_url", "title", "text", "published", "authors", "lang", "site")
    values = article.model_dump(mode="json", include=set(fields)) if article else dict.fromkeys(fields)
    return {"url": url, **values, "is_article": article is not None, "skip": result.skip}


def extract_command(
    file: Annotated[str, typer.Argument(help="HTML file, .html.gz, or - for stdin.")],
    url: Annotated[
        str, typer.Option(help="The page's URL (for canonical links and dates).")
    ] = "http://localhost/",
    source: Annotated[
        str | None, typer.Option(help="Apply this registry source's language and rules.")
    ] = None,
) -> None:
    """Extract one saved page and print the result as JSON."""
    try:
        data = read_page(file)
    except OSError as exc:
        raise NewsmonError(f"{file}: {exc.strerror or exc}") from None
    chosen = select_sources(_registry(get_settings()), [source])[0] if source else None
    print(json.dumps(extract_json(data, url, chosen), ensure_ascii=False, indent=2))
