"""Regression floors for the extraction benchmark on ../shared/data (bench/extraction.py).

The floors are the figures reached when they were set (newsmon's extractor; plain
trafilatura scores in brackets); raise them when extraction improves, never lower them
to make a change pass.
"""

from __future__ import annotations

import importlib.util
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
    "readability_zh": {"body_f1": 0.983},
    "goose3_ko": {"body_f1": 0.988},
    "trafilatura_zh": {"title_acc": 1.0, "date_acc": 1.0},
    "htmldate_zh": {"date_acc": 1.0},
    "htmldate_ko": {"date_acc": 1.0},
    "postlight": {"title_acc": 1.0, "date_acc": 1.0},
    "aeb_en": {"body_f1": 0.968},  # trafilatura 0.948
    "ko (all)": {"body_f1": 0.98},
    "zh (all)": {"body_f1": 0.975},
}


@pytest.fixture(scope="module")
def scores() -> dict[str, Any]:
    bench = _bench()
    if not bench.DEFAULT_DATA.is_dir():
        pytest.skip(f"../shared/data is absent ({bench.DEFAULT_DATA}): no extraction benchmark")
    results = bench.run_benchmark(bench.DEFAULT_DATA, extractors=["newsmon"])
    return {name: per["newsmon"] for name, per in results.items()}


@pytest.mark.parametrize("dataset", list(FLOORS))
def test_extraction_does_not_regress(scores: dict[str, Any], dataset: str) -> None:
    score = scores[dataset]
    for metric, floor in FLOORS[dataset].items():
        value = getattr(score, metric)
        assert value is not None and value >= floor, f"{dataset} {metric} {value} < {floor}: {score.per_page}"
