"""One event, one story, one alert, for real: a local site with Korean, Chinese and English feeds
-> `newsmon run` (crawl, analysis with the shipped encoder and story model, Elasticsearch) ->
alert rules -> a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from html import escape
from pathlib import Path
from typing import Any

import pytest
from helpers.event_reports import ENTITY_LISTING, LATER_ACTION
from helpers.smtpsink import ReceivedMail, SmtpSink

from newsmon.crawlers.demo_server import serve_demo
from newsmon.pipeline import alert_run, run_once
from newsmon.settings import Settings

pytestmark = pytest.mark.integration

Report = tuple[str, str, str, str, str]


def respond(body: str, ctype: str) -> Callable[[Any], None]:
    return lambda handler: handler.send_plain(200, body.encode(), f"{ctype}; charset=utf-8", {})


def page(report: Report) -> str:
    _, lang, when, title, text = report
    return (
        f"<html lang='{lang}'><head><title>{escape(title)}</title>"
        f"<meta property='article:published_time' content='{when}'></head><body>"
        f"<nav><a href='/'>Home</a></nav><article><h1>{escape(title)}</h1>"
        f"<p>{escape(text)}</p></article></body></html>"
    )


def feed(base: str, lang: str, reports: list[tuple[int, Report]]) -> str:
    items = "".join(
        f"<item><title>{escape(r[3])}</title><link>{base}/{lang}/{n}.html</link>"
        f"<pubDate>{format_datetime(datetime.fromisoformat(r[2]))}</pubDate></item>"
        for n, r in reports
    )
    head = "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'>"
    return f"{head}<channel><title>{lang}</title>{items}</channel></rss>"


def publish(routes: dict[str, Any], base: str, reports: list[tuple[int, Report]]) -> None:
    """Put ``reports`` on the site: a page each, listed in their language's feed."""
    for n, report in reports:
        routes[f"/{report[1]}/{n}.html"] = respond(page(report), "text/html")
    for lang in ("ko", "zh", "en"):
        routes[f"/{lang}/feed.xml"] = respond(
            feed(base, lang, [(n, r) for n, r in reports if r[1] == lang]), "application/rss+xml"
        )


def text_of(mail: ReceivedMail) -> str:
    body = mail.message.get_body(("plain",))
    assert body is not None
    return body.get_content()


def test_five_reports_in_three_languages_make_one_alert_and_the_digest_lists_them_all(
    es_settings: Settings, tmp_path: Path
) -> None:
    from newsmon.index.search import search_stories

    numbered = list(enumerate(ENTITY_LISTING, start=1))
    first, rest = [numbered[4], numbered[0]], [numbered[1], numbered[2], numbered[3]]  # en and ko first
    # Not empty: the server keeps this very dict (an empty one would be replaced), so pages
    # published later are served.
    routes: dict[str, Any] = {"/robots.txt": respond("User-agent: *\nAllow: /\n", "text/plain")}
    with SmtpSink() as sink, serve_demo(root=tmp_path, routes=routes) as server:
        settings = es_settings.model_copy(
            update={
                "data_dir": tmp_path / "var",
                "index_prefix": "e2e-stories",
                "alert_to": ["desk@example.org"],
                "alert_from": "newsmon@example.org",
                **sink.settings(),
            }
        )
        registry = tmp_path / "sources.yaml"
        registry.write_text(
            "sources:\n"
            + "".join(
                f"  - name: wire-{lang}\n    lang: {lang}\n    homepage: {server.url}/\n"
                f"    feeds: ['{server.url}/{lang}/feed.xml']\n"
                for lang in ("ko", "zh", "en")
            ),
            encoding="utf-8",
        )

        # The first two reports arrive: one story, one alert email.
        publish(routes, server.url, first)
        run = run_once(settings, sources_path=registry)
        assert run.error is None and run.crawl["articles_new"] == 2
        assert run.alerts["emails"] == 1

        # Three more reports of the same action, and a later, different action by the same agency.
        publish(routes, server.url, [*first, *rest, (6, LATER_ACTION)])
        second = run_once(settings, sources_path=registry)
        assert second.error is None and second.crawl["articles_new"] == 4
        assert second.alerts["emails"] == 1  # the new action only
        mails = sink.wait_for(2)
        assert len(mails) == 2
        about_listing = [m for m in mails if "140" in str(m.message["Subject"])]
        assert len(about_listing) == 1 and about_listing[0].message["Subject"].endswith("(+1 outlets)")
        assert LATER_ACTION[3] in str(mails[1].message["Subject"])

        stories = search_stories(settings, "").stories
        listing = next(s for s in stories if s.articles == 5)
        assert sorted(listing.langs) == ["en", "ko", "zh"] and len(stories) == 2

        # The daily digest: the event's later coverage, with all five reports.
        digest = alert_run(settings, mode="digest")
        assert (digest.error, digest.emails) == (None, 1)
        body = text_of(sink.wait_for(3)[2])
        assert "More coverage of a story alerted before: 3 new reports" in body
        assert all(f"{server.url}/{r[1]}/{n}.html" in body for n, r in numbered)
        assert body.count("(new)") == 3

        # Nothing new: a re-run and a second digest send nothing.
        again = run_once(settings, sources_path=registry)
        assert again.crawl["articles_new"] == 0 and again.alerts["emails"] == 0
        assert alert_run(settings, mode="digest").emails == 0
        assert len(sink.wait_for(4, timeout=1.0)) == 3
