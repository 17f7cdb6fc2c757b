"""Bad input never breaks a crawl: each broken response becomes a counted, logged skip (or error)."""

from __future__ import annotations

import gzip
import random
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from newsmon.crawlers.demo_server import serve_demo
from newsmon.crawlers.registry import Source
from newsmon.crawlers.run import crawl
from newsmon.models import MAX_TITLE_CHARS, Article
from newsmon.settings import load_settings

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parent / "fixtures" / "extract"
Handler = BaseHTTPRequestHandler


def respond(
    status: int, body: bytes, content_type: str = "text/html", **headers: str
) -> Callable[[Handler], None]:
    def route(handler: Handler) -> None:
        handler.send_plain(status, body, content_type, headers)  # type: ignore[attr-defined]

    return route


def redirect(to: str) -> Callable[[Handler], None]:
    return respond(302, b"", Location=to)


ARTICLE = (FIXTURES / "zh_article.html").read_text(encoding="utf-8")
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
LONG_TITLE = "国产GPU" + "长" * 100_000
BAD_PAGES: dict[str, tuple[Callable[[Handler], None], str]] = {
    # path: (response, expected outcome: "article" or skip/error reason)
    "/a/1001.html": (
        respond(200, ARTICLE.replace("</p>", "").replace("</div>", "<div><table><tr>").encode()),
        "article",
    ),  # malformed HTML
    "/a/1002.html": (respond(200, b""), "empty"),
    "/a/1003.html": (
        respond(200, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(2000), "application/pdf"),
        "not_html",
    ),
    "/a/1004.html": (respond(200, b"\x89PNG\r\n\x1a\n" + bytes(3000)), "binary"),
    "/a/1005.html": (
        respond(200, b"<html><body>" + b"<p>padding</p>" * 1_500_000 + b"</body></html>"),
        "too_large",
    ),
    "/a/1006.html": (
        respond(200, ARTICLE.replace("示例科技网", "示例").encode("gbk"), "text/html; charset=utf-8"),
        "article",
    ),  # GBK bytes, header says UTF-8
    "/a/1007.html": (
        respond(200, b"\x1f\x8b\x08\x00garbage-not-gzip", "text/html", **{"Content-Encoding": "gzip"}),
        "broken_gzip",
    ),
    "/a/1012.html": (
        respond(200, gzip.compress(ARTICLE.encode())[:700], "text/html", **{"Content-Encoding": "gzip"}),
        "broken_gzip",
    ),  # truncated: Scrapy alone would keep the inflated prefix as a page
    "/a/1013.html": (
        respond(
            200, GZIP_HEADER + random.Random(7).randbytes(6000), "text/html", **{"Content-Encoding": "gzip"}
        ),
        "broken_gzip",
    ),  # junk after a gzip header
    "/a/1014.html": (
        respond(
            200,
            ARTICLE.replace("<title>", f"<title>{LONG_TITLE}").replace("<h1>", f"<h1>{LONG_TITLE}").encode(),
        ),
        "article",
    ),  # a 100,000-character title
    "/a/1008.html": (redirect("/a/1008b.html"), "redirect_loop"),
    "/a/1008b.html": (redirect("/a/1008.html"), ""),
    "/a/1009.html": (respond(404, b"<html><title>Not found</title></html>"), "http_404"),
    "/a/1010.html": (respond(503, b"busy"), "http_503"),
    "/a/1011.html": (
        respond(200, b"<html><head><title>x</title></head><body><p>Too short.</p></body></html>"),
        "too_short",
    ),
}
FEED_AND_SITEMAPS: dict[str, Callable[[Handler], None]] = {
    "/feed.xml": respond(
        200, b"<?xml version='1.0'?><rss><channel><item><title>unclosed", "application/rss+xml"
    ),
    "/sitemap-loop.xml": respond(
        200,
        b"<?xml version='1.0'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/"
        b"sitemap/0.9'><sitemap><loc>/sitemap-loop.xml</loc></sitemap></sitemapindex>",
        "application/xml",
    ),
    "/sitemap.xml.gz": respond(200, b"\x1f\x8b\x08\x00" + bytes(range(256)), "application/gzip"),
}


def test_broken_responses_are_counted_skips(tmp_path: Path) -> None:
    links = "".join(
        f'<li><a href="{path}">기사 {path}</a></li>' for path in BAD_PAGES if not path.endswith("b.html")
    )
    routes = {path: route for path, (route, _) in BAD_PAGES.items()} | FEED_AND_SITEMAPS
    routes["/list.html"] = respond(200, f"<html><body><ul>{links}</ul></body></html>".encode())
    settings = load_settings(data_dir=tmp_path / "var")
    lines: list[str] = []
    with serve_demo(root=tmp_path, routes=routes) as server:
        source = Source(
            name="bad",
            lang="zh",
            feeds=[f"{server.url}/feed.xml"],
            sitemaps=[f"{server.url}/sitemap-loop.xml", f"{server.url}/sitemap.xml.gz"],
            list_pages=[f"{server.url}/list.html"],
        )
        stats = crawl(
            [source],
            settings,
            tmp_path / "out.jsonl",
            progress=lines.append,
            scrapy_overrides={"RETRY_TIMES": 1},
        )
        assert server.hits["/a/1010.html"] == 2  # retried once
    expected = [outcome for outcome in (o for _, o in BAD_PAGES.values()) if outcome]
    assert stats.exit_code == 0
    assert stats.articles_new == expected.count("article") == 3
    skipped = {k: v for k, v in stats.skipped.items()}
    assert skipped == {
        "bad_feed": 1,
        "sitemap_loop": 1,
        "broken_gzip": 4,
        "empty": 1,
        "not_html": 1,
        "binary": 1,
        "too_large": 1,
        "redirect_loop": 1,
        "http_404": 1,
        "too_short": 1,
    }
    assert stats.errors == {"http_503": 1}
    articles = [
        Article.model_validate_json(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()
    ]
    assert all("国产GPU" in a.title and len(a.title) <= MAX_TITLE_CHARS for a in articles)
    assert all(len(line) < 100_000 for line in (tmp_path / "out.jsonl").read_text().splitlines())
    for reason in skipped:  # every skip is reported with its reason
        assert any(line.startswith(f"skip {reason} ") for line in lines), reason


def _article(n: int) -> Callable[[Handler], None]:
    return respond(200, ARTICLE.replace("出口管制", f"出口管制{n}").encode())


def _sitemap(entries: list[str], index: bool = False) -> Callable[[Handler], None]:
    tag, root = ("sitemap", "sitemapindex") if index else ("url", "urlset")
    body = "".join(f"<{tag}><loc>{loc}</loc><lastmod>{mod}</lastmod></{tag}>" for loc, mod in entries)
    xml = f"<?xml version='1.0'?><{root} xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{body}</{root}>"
    return respond(200, xml.encode(), "application/xml")


def test_budgets_bound_what_one_hostile_site_can_cost(tmp_path: Path) -> None:
    """A 10,000-entry sitemap index, a 3,000-URL sitemap and a slow page stay within the budgets."""
    day = "2026-05-{:02d}T00:00:00+00:00"
    big = [(f"/a/{n}.html", day.format(1 + n % 28)) for n in range(3000)]
    routes = {
        "/index.xml": _sitemap([(f"/child-{n}.xml", day.format(1)) for n in range(10_000)], index=True),
        "/big.xml": _sitemap(big),
        "/slow.html": lambda handler: (time.sleep(3), respond(200, ARTICLE.encode())(handler)),
        "/list.html": respond(200, b'<html><body><a href="/slow.html">slow</a></body></html>'),
    }
    routes |= {f"/child-{n}.xml": _sitemap([]) for n in range(10)}
    routes |= {
        path: respond(200, ARTICLE.replace("出口管制", f"出口管制{n}").encode())
        for n, (path, _) in enumerate(big)
    }
    settings = load_settings(
        data_dir=tmp_path / "var", crawl_max_child_sitemaps=5, crawl_max_sitemap_urls=10, crawl_page_timeout=1
    )
    with serve_demo(root=tmp_path, routes=routes) as server:
        source = Source(
            name="huge",
            lang="zh",
            feeds=[],
            article_pattern=r"/(a/\d+|slow)\.html$",
            sitemaps=[f"{server.url}/index.xml", f"{server.url}/big.xml"],
            list_pages=[f"{server.url}/list.html"],
        )
        started = time.monotonic()
        stats = crawl([source], settings, tmp_path / "out.jsonl")
        elapsed = time.monotonic() - started
        hits = dict(server.hits)
    assert sum(1 for path in hits if path.startswith("/child-")) == 5
    assert stats.skipped["sitemap_budget"] == 10_000 - 5
    articles = [path for path in hits if path.startswith("/a/")]
    assert len(articles) == 10 and stats.skipped["sitemap_url_budget"] == 3000 - 10
    # The newest ten were taken (day 28 of the month, then 27 ...).
    assert all(int(path[3:-5]) % 28 >= 26 for path in articles)
    assert hits["/slow.html"] == 2 and stats.errors.get("timeout") == 1  # one retry, then given up
    assert elapsed < 30


def test_a_run_stops_at_its_time_budget_and_the_next_goes_on(tmp_path: Path) -> None:
    links = "".join(f'<a href="/a/{n}.html">{n}</a>' for n in range(40))
    routes = {"/list.html": respond(200, f"<html><body>{links}</body></html>".encode())}
    routes |= {
        f"/a/{n}.html": respond(200, ARTICLE.replace("出口管制", f"出口管制{n}").encode()) for n in range(40)
    }
    settings = load_settings(data_dir=tmp_path / "var", crawl_max_seconds=3)
    with serve_demo(root=tmp_path, routes=routes, delay=0.5) as server:
        source = Source(
            name="slow",
            lang="zh",
            feeds=[],
            article_pattern=r"/a/\d+\.html$",
            list_pages=[f"{server.url}/list.html"],
        )
        started = time.monotonic()
        first = crawl([source], settings, tmp_path / "one.jsonl")
        assert time.monotonic() - started < 20
        assert first.skipped.get("time_budget") == 1 and 0 < first.articles_new < 40
        server.delay = 0.0
        second = crawl([source], settings, tmp_path / "two.jsonl")
    assert first.articles_new + second.articles_new == 40
