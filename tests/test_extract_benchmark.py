"""Regression floors for the extraction benchmark on ../shared/data (bench/extraction.py).

The floors are the figures reached when they were set (newsmon's extractor; plain
trafilatura scores in brackets); raise them when extraction improves, never lower them
to make a change pass.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.shared_data


def _bench() -> ModuleType:
    """bench/ is scripts, not an installed package: load bench/extraction.py by path."""
    path = Path(__file__).resolve().parents[1] / "bench" / "extraction.py"
    spec = importlib.util.spec_from_file_location("bench_extraction", path)
    assert spec and spec.loader
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


# data set -> {Score attribute: floor}; plain trafilatura's figures in the comments
FLOORS: dict[str, dict[str, float]] = {
    "gne_zh": {"body_f1": 0.970, "title_acc": 1.0, "date_acc": 0.94},  # trafilatura 0.759 / 0.778 / 0.889
    "gne_lists": {"rejected": 0.75},  # 3 of 4 list pages; plain trafilatura has no such notion
    "fundus_ko": {"body_f1": 0.980, "title_acc": 0.87, "date_acc": 1.0},  # trafilatura 0.869 / 0.0 / 1.0
    "fundus_zh": {"body_f1": 0.995, "date_acc": 1.0},  # its title truth keeps the suffix "--时政--人民网"
    "newspaper4k_zh": {"body_f1": 0.988, "title_acc": 1.0, "date_acc": 1.0},
    # 0.983 before copyright notices left bodies: qq's truth keeps its reprint notice line.
    "readability_zh": {"body_f1": 0.975},
    # 0.988 before bodies lost their bylines: this page's truth ends "최윤호 기자 uknow@donga.com",
    # which now goes to authors (the byline and copyright check below).
    "goose3_ko": {"body_f1": 0.985},
    # Body by snippets (trafilatura's own test data: text that must and must not be in it).
    "trafilatura_zh": {"body_f1": 0.95, "title_acc": 1.0, "date_acc": 1.0},  # trafilatura 0.95
    "goose3_zh": {"body_f1": 1.0},  # snippets: the paragraphs of goose3's expected prefix
    "htmldate_zh": {"date_acc": 1.0},
    "htmldate_ko": {"date_acc": 1.0},
    "postlight": {"body_f1": 1.0, "title_acc": 1.0, "date_acc": 1.0},  # snippets: the body's opening
    "aeb_en": {"body_f1": 0.968},  # trafilatura 0.948
    "ko (all)": {"body_f1": 0.98},
    "zh (all)": {"body_f1": 0.975},
}


@pytest.fixture(scope="module")
def scores() -> dict[str, Any]:
    bench = _bench()
    if not bench.DEFAULT_DATA.is_dir():
        pytest.skip(f"../shared/data is absent ({bench.DEFAULT_DATA}): no extraction benchmark")
    return bench.run_benchmark(bench.DEFAULT_DATA)  # {set: {"newsmon" | "trafilatura": Score}}


@pytest.mark.parametrize("dataset", list(FLOORS))
def test_extraction_does_not_regress(scores: dict[str, Any], dataset: str) -> None:
    score = scores[dataset]["newsmon"]
    for metric, floor in FLOORS[dataset].items():
        value = getattr(score, metric)
        assert value is not None and value >= floor, f"{dataset} {metric} {value} < {floor}: {score.per_page}"


def test_no_page_is_lost_where_trafilatura_finds_the_article(scores: dict[str, Any]) -> None:
    """On no page of any set does newsmon's body score under 0.5 while trafilatura's is 0.5 or more."""
    lost = {name: _bench().lost_pages(per["newsmon"], per["trafilatura"]) for name, per in scores.items()}
    assert not any(lost.values()), {name: n for name, n in lost.items() if n}


def test_no_body_ends_in_an_email_or_a_copyright_line() -> None:
    """Over every shared page set: the last line of each extracted body is story, not a byline
    with an email, a reprint notice or a copyright line."""
    from newsmon.crawlers.extraction.body import _EMAIL, _TAIL_LINE  # the patterns the cleaner uses

    bench = _bench()
    if not bench.DEFAULT_DATA.is_dir():
        pytest.skip(f"../shared/data is absent ({bench.DEFAULT_DATA})")
    ending = re.compile(rf"{_EMAIL}\s*\W?\s*$")
    left: list[str] = []
    for pages in bench.load_pages(bench.DEFAULT_DATA).values():
        for page in pages:
            last = bench.run_newsmon(page).text.strip().rsplit("\n", 1)[-1].strip()
            if last and len(last) <= 160 and (ending.search(last) or _TAIL_LINE.search(last)):
                left.append(f"{page.dataset} {page.path.name}: {last[:80]!r}")
    assert not left, "\n".join(left)
