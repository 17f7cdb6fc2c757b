"""Synthetic articles for ``newsmon alerts test-email`` and the README sample email.

The outlets and links are made up (``.example`` hosts); the stories are invented.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from newsmon.models import AlertDecision, Article, Topic

KST = timezone(timedelta(hours=9))
CST = timezone(timedelta(hours=8))


def _article(
    url: str, source: str, title: str, text: str, lang: str, published: datetime, cluster: str, **nlp: object
) -> Article:
    site = url.split("/")[2]
    return Article.model_validate(
        {
            "url": url,
            "canonical_url": url,
            "source": source,
            "site": site,
            "title": title,
            "text": text,
            "lang": lang,
            "published": published,
            "cluster_id": cluster,
            **nlp,
        }
    )


_KO_TEXT = (
    "미국 상무부 산업안보국(BIS)이 고대역폭메모리(HBM)와 첨단 반도체 제조장비에 대한 "
    "수출 통제를 강화하는 규정을 14일 발표했다. 이번 조치로 중국 기업 140곳이 추가로 "
    "우려거래자 목록(Entity List)에 올랐으며, 국내 메모리 업체의 중국 공장에 대한 "
    "장비 반입에도 별도 허가가 필요해질 전망이다. 업계는 검증된 최종사용자(VEU) 지위 "
    "유지 여부를 주시하고 있다."
)
_ZH_TEXT = (
    "中国商务部12日发布公告，宣布对镓、锗、锑等两用物项加强出口管制，原则上不予许可向美国出口。"
    "公告称，此举旨在维护国家安全和利益、履行防扩散等国际义务。分析人士认为，"
    "这是对美方近期升级芯片出口管制措施的回应，相关企业需重新评估供应链风险。"
)


def sample_articles() -> list[Article]:
    """Two stories: a Korean one republished by two more outlets, and a Chinese one."""
    ko_nlp = {
        "topics": [Topic(label="export_controls", score=0.94), Topic(label="semiconductors", score=0.88)],
        "alert": AlertDecision(
            export_controls=True,
            score=0.93,
            evidence=["control: 수출 통제", "control: Entity List", "control: BIS"],
        ),
        "entities": ["미국 상무부", "BIS"],
    }
    zh_nlp = {
        "topics": [Topic(label="export_controls", score=0.91), Topic(label="critical_minerals", score=0.83)],
        "alert": AlertDecision(
            export_controls=True, score=0.89, evidence=["control: 出口管制", "control: 两用物项"]
        ),
        "entities": ["中国商务部"],
    }
    return [
        _article(
            "https://www.etnews.example/20250114000123",
            "etnews",
            "美 상무부, HBM·반도체 장비 수출 통제 강화…中 기업 140곳 추가",
            _KO_TEXT,
            "ko",
            datetime(2025, 1, 14, 9, 12, tzinfo=KST),
            "c-hbm-rule",
            **ko_nlp,
        ),
        _article(
            "https://zdnet.example/view/?no=20250114101500",
            "zdnet_korea",
            "미국, HBM 대중 수출 통제 발표…삼성·SK 영향 촉각",
            _KO_TEXT,
            "ko",
            datetime(2025, 1, 14, 10, 15, tzinfo=KST),
            "c-hbm-rule",
            **ko_nlp,
        ),
        _article(
            "https://www.thelec.example/news/articleView.html?idxno=31337",
            "thelec",
            "BIS, HBM 수출 통제 규정 공개",
            _KO_TEXT,
            "ko",
            datetime(2025, 1, 14, 11, 2, tzinfo=KST),
            "c-hbm-rule",
            **ko_nlp,
        ),
        _article(
            "https://www.caixin.example/2025-01-12/102277001.html",
            "caixin",
            "商务部：加强相关两用物项对美国出口管制",
            _ZH_TEXT,
            "zh",
            datetime(2025, 1, 12, 16, 30, tzinfo=CST),
            "c-gallium",
            **zh_nlp,
        ),
    ]
