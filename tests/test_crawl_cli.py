"""The crawler's typer commands (mounted by the main CLI), run through a test app."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from newsmon.cli import crawl_command
from newsmon.crawlers.cli import extract_command, parse_since, sources_app
from newsmon.errors import NewsmonError
from newsmon.index.localnode.launcher import free_port
from newsmon.settings import get_settings

FIXTURES = Path(__file__).parent / "fixtures" / "extract"
KO_URL = "https://www.gasang-it.example/news/articleView.html?idxno=50123&utm_source=x"
app = typer.Typer()
app.add_typer(sources_app, name="sources")
app.command("crawl")(crawl_command)
app.command("extract")(extract_command)
runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("NEWSMON_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("NEWSMON_DEMO_PORT", str(free_port()))  # not the default: suites may run side by side
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


def test_extract_file_stdin_and_gzip(tmp_path: Path) -> None:
    html = (FIXTURES / "ko_article.html").read_bytes()
    packed = tmp_path / "page.html.gz"
    packed.write_bytes(gzip.compress(html))
    outputs = [
        runner.invoke(app, ["extract", str(FIXTURES / "ko_article.html"), "--url", KO_URL]),
        runner.invoke(app, ["extract", "-", "--url", KO_URL], input=html),
        runner.invoke(app, ["extract", str(packed), "--url", KO_URL]),
    ]
    for result in outputs:
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert set(data) == {
            "url",
            "canonical_url",
            "title",
            "text",
            "published",
            "authors",
            "lang",
            "site",
            "is_article",
            "skip",
        }
        assert (
            data["is_article"] is True
            and data["lang"] == "ko"
            and data["published"] == "2025-04-02T09:41:00+09:00"
        )
        assert data["canonical_url"] == "https://www.gasang-it.example/news/articleView.html?idxno=50123"


def test_extract_non_article_and_bad_gzip(tmp_path: Path) -> None:
    result = runner.invoke(app, ["extract", str(FIXTURES / "list_page.html")])
    assert json.loads(result.stdout) | {"url": None} == {
        "url": None,
        "canonical_url": None,
        "title": None,
        "text": None,
        "published": None,
        "authors": None,
        "lang": None,
        "site": None,
        "is_article": False,
        "skip": "list_page",
    }
    broken = tmp_path / "broken.html.gz"
    broken.write_bytes(b"\x1f\x8bnot gzip at all")
    result = runner.invoke(app, ["extract", str(broken)])
    assert isinstance(result.exception, NewsmonError) and "not valid gzip" in str(result.exception)
    result = runner.invoke(app, ["extract", str(tmp_path / "missing.html")])
    assert isinstance(result.exception, NewsmonError)


def test_sources_list() -> None:
    result = runner.invoke(app, ["sources", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "zdnet-korea" in result.stdout and "ithome" in result.stdout


def test_parse_since() -> None:
    assert parse_since("2025-03-01") == datetime(2025, 3, 1, tzinfo=UTC)
    assert abs(parse_since("2d") - (datetime.now(UTC) - timedelta(days=2))) < timedelta(seconds=5)
    with pytest.raises(NewsmonError, match="--since"):
        parse_since("yesterday")


@pytest.mark.integration
def test_crawl_demo(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    result = runner.invoke(app, ["crawl", "--demo", "--out", str(out), "--quiet", "demo-zh-tech"])
    assert result.exit_code == 0, result.output
    assert "6 new" in result.stdout and len(out.read_text().splitlines()) == 6
    result = runner.invoke(app, ["crawl", "--demo", "no-such-source"])
    assert isinstance(result.exception, NewsmonError)
