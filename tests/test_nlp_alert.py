"""The export-control alert decision: synthetic cases, and precision/recall on the labelled
dev set of real headlines and articles in ../shared/data.

``RULES`` is the hand-weighted cue model alone (nlp.alert, whose cues also feed the signal
heads); the default analyzer decides with the signal heads (tests/test_signal.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsmon.models import Article
from newsmon.nlp.pipeline import Analyzer, analyze_articles
from newsmon.nlp.training.devset import BinaryScores, load_alert_devset

RULES = Analyzer(topic_backend="rules", relevance_model=None, signal=None)


def _article(title: str, text: str = "", lang: str | None = None) -> Article:
    return Article(url=f"u:{title}", canonical_url=f"u:{title}", title=title, text=text, lang=lang)


ALERTS = [
    # new rule / licence decision
    _article("美 상무부, AI 반도체 수출통제 강화…H20도 허가 대상에 포함"),
    _article("US Commerce Department tightens export controls on AI chips to China"),
    _article("美国商务部发布新规 收紧对华芯片出口管制"),
    # entity listing
    _article("미국, 중국 AI 기업 20곳 우려거래자 목록에 추가"),
    _article("美国将多家中国企业列入实体清单"),
    # enforcement: smuggling
    _article("엔비디아 AI 칩 중국 밀반출 일당 기소"),
    _article("Two Chinese nationals charged with smuggling Nvidia chips to China"),
    # retaliation: Chinese export bans on minerals
    _article("中 상무부, 갈륨·게르마늄 수출 금지 발표"),
    _article("China bans exports of gallium and germanium to the United States"),
    _article("中国对镓、锗相关物项实施出口管制"),
]
NOT_ALERTS = [
    # stock-market stories mentioning controls in passing
    _article(
        "코스피 하락 마감…반도체주 약세",
        "미국의 수출통제 우려 속에 외국인이 반도체주를 팔았다. 코스피는 1% 하락했다.",
    ),
    _article("Asian shares slip as investors weigh trade talks and chip curbs"),
    # tariff-only news
    _article("美, 중국산 전기차 관세 100%로 인상"),
    _article("美国宣布对中国商品加征关税"),
    # product news about controlled chips
    _article("엔비디아, 중국용 신제품 H20 출시…성능은 H100의 절반"),
    _article("Nvidia unveils the B30A chip for the Chinese market"),
    # unrelated
    _article("삼성전자, 3분기 영업이익 10조원"),
    _article("유엔 안보리, 대북제재 결의 채택"),
]


def test_synthetic_alerts_and_non_alerts() -> None:
    alerts = list(analyze_articles(ALERTS, analyzer=RULES))
    quiet = list(analyze_articles(NOT_ALERTS, analyzer=RULES))
    missed = [a.title for a in alerts if not a.alert.export_controls]
    noisy = [(a.title, a.alert.evidence) for a in quiet if a.alert.export_controls]
    assert not missed and not noisy
    for a in alerts:
        assert 0.5 <= a.alert.score <= 1 and a.alert.evidence


def test_a_passing_mention_deep_in_a_body_is_no_alert() -> None:
    body = " ".join(["업계 관계자들은 앞으로의 시장 상황을 차분히 지켜보고 있다고 말했다."] * 12)
    passing = _article(
        "삼성전자, 새 스마트폰 공개",
        "삼성전자가 새 스마트폰을 공개했다. " + body + " 한편 미국은 반도체 수출통제를 강화했다.",
    )
    lead = _article("반도체 업계 동향", "미국 정부가 반도체 수출통제를 강화하는 새 규정을 발표했다. " + body)
    [passing_out, lead_out] = analyze_articles([passing, lead], analyzer=RULES)
    assert not passing_out.alert.export_controls
    assert lead_out.alert.export_controls


@pytest.mark.shared_data
def test_precision_and_recall_on_the_labelled_dev_set(shared_data: Path) -> None:
    items = load_alert_devset(shared_data)
    assert len(items) >= 150
    articles = [
        Article(
            url=f"dev:{i.key}",
            canonical_url=f"dev:{i.key}",
            title=i.doc.title,
            text=i.doc.text,
            lang=i.doc.lang,
        )
        for i in items
    ]
    scores = {"all": BinaryScores(), "tuning half": BinaryScores(), "held-out half": BinaryScores()}
    for item, out in zip(items, analyze_articles(articles, analyzer=RULES), strict=True):
        what = f"{item.key} {(item.doc.title or item.doc.text)[:60]!r} {out.alert.evidence[:4]}"
        for name in ("all", "held-out half" if item.holdout else "tuning half"):
            scores[name].add(item.label, out.alert.export_controls, what)
    for name, s in scores.items():
        print(f"alert dev set, {name}: {s.summary()}")
    print("\n".join(scores["all"].errors))
    assert scores["all"].precision >= 0.75
    assert scores["all"].recall >= 0.8


def test_signal_heads_catch_every_synthetic_alert() -> None:
    """Recall first: the default analyzer (signal heads) flags each synthetic action headline."""
    missed = [a.title for a in analyze_articles(ALERTS) if not a.alert.export_controls]
    assert not missed
