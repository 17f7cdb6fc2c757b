"""The source registry: loading, validation errors, the shipped outlets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsmon.crawlers.demo_server import demo_sources
from newsmon.crawlers.registry import DEFAULT_SOURCES, Source, load_sources, select_sources
from newsmon.errors import NewsmonError

GOOD = """
- name: one
  lang: ko
  feeds: ["https://one.example/rss"]
"""


def test_shipped_registry_has_ten_korean_and_ten_chinese_outlets() -> None:
    sources = load_sources(DEFAULT_SOURCES)
    by_lang = {lang: [s for s in sources if s.lang == lang] for lang in ("ko", "zh")}
    assert len(by_lang["ko"]) >= 10 and len(by_lang["zh"]) >= 10
    assert all(s.confidence != "live-checked" for s in sources)  # nobody could check them from here
    assert all(s.rate and s.rate <= 1 for s in sources)  # polite by default
    assert all(s.allowed_domains for s in sources)


@pytest.mark.parametrize("source", load_sources(DEFAULT_SOURCES), ids=lambda s: s.name)
def test_each_article_pattern_matches_its_outlets_real_article_urls(source: Source) -> None:
    """Recorded real article URLs of the outlet: its pattern must match each one."""
    if source.article_pattern is None or not source.sample_articles:
        assert source.confidence == "guessed", "an entry with public evidence records real article URLs"
        return
    missed = [url for url in source.sample_articles if not re.search(source.article_pattern, url)]
    assert not missed


@pytest.mark.parametrize("source", load_sources(DEFAULT_SOURCES), ids=lambda s: s.name)
def test_public_reference_entries_show_evidence_for_every_url_and_the_pattern(source: Source) -> None:
    if source.confidence != "public-reference":
        return
    supported = {e.supports for e in source.evidence}
    wanted = {*source.feeds, *source.sitemaps, *source.list_pages, "article_pattern"}
    assert wanted <= supported, sorted(wanted - supported)
    assert len(source.sample_articles) >= 3


def test_demo_registry_fills_the_base_url() -> None:
    sources = demo_sources("http://127.0.0.1:1234/")
    assert [s.name for s in sources] == ["demo-ko-tech", "demo-ko-legacy", "demo-zh-tech"]
    assert sources[0].feeds == ["http://127.0.0.1:1234/ko/rss.xml"]
    assert sources[0].allowed_domains == ["127.0.0.1"]
    assert sources[1].extract and sources[1].extract.body == "#articleBody"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "- name: two\n  lang: jp\n  feeds: []\n  list_pages: ['https://two.example/']",
            "entry #2 (two): field lang",
        ),
        ("- lang: ko\n  feeds: ['https://two.example/rss']", "entry #2: field name"),
        ("- name: two\n  lang: ko\n  feeds: ['ftp://two.example/rss']", "entry #2 (two): field feeds"),
        ("- name: two\n  lang: ko\n  feeds: []", "needs at least one of feeds, sitemaps or list_pages"),
        ("- name: two\n  lang: ko\n  feeds: ['https://t.example/']\n  feed: x", "entry #2 (two): field feed"),
        (
            "- name: two\n  lang: ko\n  feeds: ['https://t.example/']\n  article_pattern: '(['",
            "field article_pattern",
        ),
        ("- name: two\n  lang: ko\n  feeds: ['https://t.example/']\n  rate: 0", "field rate"),
        (
            "- name: two\n  lang: ko\n  feeds: ['https://t.example/']\n  extract: {body: x, titel: y}",
            "field extract.titel",
        ),
        ("- name: Two Words\n  lang: ko\n  feeds: ['https://t.example/']", "field name"),
        ("- just a string", "entry #2: must be a mapping"),
    ],
)
def test_bad_entries_name_file_entry_and_field(tmp_path: Path, entry: str, message: str) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(GOOD + entry + "\n", encoding="utf-8")
    with pytest.raises(NewsmonError) as err:
        load_sources(file)
    assert str(err.value).startswith(str(file)) and message in str(err.value)


def test_folder_duplicates_and_bad_yaml(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(NewsmonError, match=r"'one' is already defined in .*a\.yaml"):
        load_sources(tmp_path)
    (tmp_path / "b.yml").write_text("sources: [unclosed", encoding="utf-8")
    with pytest.raises(NewsmonError, match=r"b\.yml: not valid YAML"):
        load_sources(tmp_path)
    (tmp_path / "b.yml").write_text("sources: {name: x}", encoding="utf-8")
    with pytest.raises(NewsmonError, match="expected a list of sources"):
        load_sources(tmp_path)
    with pytest.raises(NewsmonError, match="no such source registry"):
        load_sources(tmp_path / "missing")


def test_select_sources() -> None:
    sources = load_sources(DEFAULT_SOURCES)
    assert [s.name for s in select_sources(sources, ["ithome", "etnews"])] == ["ithome", "etnews"]
    with pytest.raises(NewsmonError, match=r"unknown source.*nope"):
        select_sources(sources, ["nope"])
