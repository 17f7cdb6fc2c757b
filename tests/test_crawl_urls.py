"""URL canonicalization, article-link guessing and the private-address guard."""

from __future__ import annotations

import pytest

from newsmon.crawlers.discover import looks_like_article_url
from newsmon.crawlers.middlewares import BlockedRequest, PrivateAddressGuard
from newsmon.crawlers.urls import canonicalize, is_private_host


@pytest.mark.parametrize(
    ("url", "homepage", "expected"),
    [
        (
            "HTTPS://WWW.Example.co.kr:443/news/view?id=7&utm_source=rss&fbclid=x#top",
            None,
            "https://www.example.co.kr/news/view?id=7",
        ),
        (
            "https://m.zdnet.co.kr/view/?no=20250303&from=kakao",
            "https://zdnet.co.kr/",
            "https://zdnet.co.kr/view/?no=20250303",
        ),
        ("https://m.ithome.com/html/835123.htm?spm=a.b", None, "https://www.ithome.com/html/835123.htm"),
        ("https://www.ithome.com/0/835/123.htm", None, "https://www.ithome.com/0/835/123.htm"),
        ("http://127.0.0.1:8000/zh/a/1.html?spm=feed.atom.0", None, "http://127.0.0.1:8000/zh/a/1.html"),
    ],
)
def test_canonicalize(url: str, homepage: str | None, expected: str) -> None:
    assert canonicalize(url, homepage) == expected


def test_mobile_and_desktop_copies_share_one_key() -> None:
    assert canonicalize("https://m.example.com/a/123.html") == canonicalize(
        "https://www.example.com/a/123.html"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.etnews.com/20250303000123", True),
        ("https://www.ithome.com/0/835/123.htm", True),
        ("https://zdnet.co.kr/view/?no=20250303123456", True),
        ("https://www.example.com/tag/ai/2025", False),
        ("https://www.example.com/reporter/1234", False),
        ("https://www.example.com/news/list.html?page=2024", False),
        ("https://www.example.com/about", False),
        ("https://www.example.com/images/20250303.jpg", False),
    ],
)
def test_looks_like_article_url(url: str, expected: bool) -> None:
    assert looks_like_article_url(url) is expected


@pytest.mark.parametrize(
    ("host", "private"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("10.1.2.3", True),
        ("192.168.0.1", True),
        ("169.254.169.254", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", True),
        ("8.8.8.8", False),
        ("2001:4860:4860::8888", False),
    ],
)
def test_is_private_host(host: str, private: bool) -> None:
    assert is_private_host(host) is private


def test_guard_allows_configured_local_source_only() -> None:
    guard = PrivateAddressGuard({"127.0.0.1:8000"})
    guard.check("http://127.0.0.1:8000/ko/rss.xml")
    guard.check("http://8.8.8.8/")
    for url in (
        "http://127.0.0.1:8001/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/",
    ):
        with pytest.raises(BlockedRequest) as err:
            guard.check(url)
        assert err.value.reason == "private_address"
