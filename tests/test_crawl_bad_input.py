"""Bad input never breaks a crawl: each broken response becomes a counted, logged skip (or error)."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from crawlers.demo_server import serve_demo
from crawlers.registry import Source
from crawlers.run import crawl
from newsmon.models import Article
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
    assert stats.articles_new == expected.count("article") == 2
    skipped = {k: v for k, v in stats.skipped.items()}
    assert skipped == {
        "bad_feed": 1,
        "sitemap_loop": 1,
        "broken_gzip": 2,
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
    assert all("国产GPU" in a.title for a in articles)
    for reason in skipped:  # every skip is reported with its reason
        assert any(line.startswith(f"skip {reason} ") for line in lines), reason
