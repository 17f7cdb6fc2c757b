"""Extraction unit tests on small synthetic pages (tests/fixtures/extract)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from newsmon.crawlers.extract import extract_article
from newsmon.crawlers.extraction.body import strip_tail
from newsmon.crawlers.extraction.dates import KST, parse_date
from newsmon.crawlers.extraction.decoding import decode_html
from newsmon.crawlers.extraction.metadata import clean_authors, clean_title
from newsmon.crawlers.registry import ExtractRules, Source
from newsmon.scripts import lang_by_script

FIXTURES = Path(__file__).parent / "fixtures" / "extract"
FETCHED = datetime(2025, 5, 1, tzinfo=UTC)
KO = Source(name="gasang", lang="ko", feeds=["https://www.gasang-it.example/rss/allArticle.xml"])
ZH = Source(name="shili", lang="zh", feeds=["https://www.shili.example/rss.xml"])


def page(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_korean_article_with_json_ld() -> None:
    url = "https://m.gasang-it.example/news/articleView.html?idxno=50123&utm_source=naver"
    result = extract_article(page("ko_article.html").encode(), url, KO, FETCHED)
    article = result.article
    assert article is not None, result
    assert article.title == '반도체 장비 수출 허가 심사 길어진다…업계 "납기 차질 우려"'
    assert article.published == datetime(2025, 4, 2, 9, 41, tzinfo=KST)  # JSON-LD wins over meta
    assert article.authors == ["홍길동", "김철수"]
    assert article.canonical_url == "https://www.gasang-it.example/news/articleView.html?idxno=50123"
    assert article.site == "www.gasang-it.example" and article.lang == "ko" and article.source == "gasang"
    paragraphs = article.text.split("\n")
    assert len(paragraphs) == 4 and paragraphs[0].startswith("미국의 반도체 장비 수출통제가")
    assert "관련기사" not in article.text and "무단전재" not in article.text and "로그인" not in article.text


def test_chinese_article_date_without_zone_is_beijing_time() -> None:
    article = extract_article(
        page("zh_article.html").encode(), "https://www.shili.example/tech/2025/0403/a3.html", ZH, FETCHED
    ).article
    assert article is not None
    assert article.title == "国产GPU企业密集发布新品 出口管制下算力替代加速"
    assert article.published == datetime(2025, 4, 3, 0, 30, tzinfo=UTC)
    assert article.authors == ["周明"] and article.lang == "zh"
    assert "推荐阅读" not in article.text and article.text.count("\n") == 3


@pytest.mark.parametrize(
    ("fixture", "encoding", "declared", "header"),
    [
        ("zh_article.html", "gbk", None, None),  # no declaration at all
        ("zh_article.html", "gb18030", "utf-8", None),  # wrong <meta charset>
        ("zh_article.html", "gbk", None, "text/html; charset=utf-8"),  # wrong HTTP header
        ("zh_article.html", "gbk", "iso-8859-1", "text/html; charset=iso-8859-1"),  # server's Western default
        ("zh_hant_article.html", "big5", None, None),
        ("ko_article.html", "cp949", None, None),
        ("ko_article.html", "euc-kr", "utf-8", None),
        ("ko_article.html", "euc-kr", "gb2312", None),  # GB18030 would decode it, as nonsense
    ],
)
def test_legacy_cjk_encodings_declared_wrongly_or_not_at_all(
    fixture: str, encoding: str, declared: str | None, header: str | None
) -> None:
    html = page(fixture).replace('<meta charset="utf-8">', "")
    if declared:
        html = html.replace(
            "<head>", f'<head><meta http-equiv="Content-Type" content="text/html; charset={declared}">'
        )
    data = html.encode(encoding)
    source = KO if fixture.startswith("ko") else ZH
    text, _ = decode_html(data, header, source.lang)
    assert text == html
    article = extract_article(
        data, "https://www.example.com/a/20250403.html", source, FETCHED, content_type=header
    ).article
    assert article is not None and article.title in html


def test_utf8_page_with_a_few_broken_bytes_stays_utf8() -> None:
    data = page("zh_article.html").encode()
    broken = data[:900] + b"\xff\xfe" + data[900:]
    text, encoding = decode_html(broken, None, "zh")
    assert encoding == "utf-8" and "国产算力替代正在加速" in text


def test_site_rules_win_over_the_generic_extractor() -> None:
    rules = ExtractRules(
        title="td.tit",
        body="#news_body",
        date="//td[@class='byline']/span",
        author="td.byline",
        drop=["div.ad_inline", "span.copy"],
    )
    source = Source(
        name="hanbit", lang="ko", feeds=[], list_pages=["https://hanbit.example/list.php"], extract=rules
    )
    article = extract_article(
        page("site_rule.html"), "https://hanbit.example/read.php?id=778", source, FETCHED
    ).article
    assert article is not None
    assert article.title == "클라우드 업계, 데이터센터 전력 확보 경쟁 치열"
    assert article.extractor == "newsmon/site-rule"
    assert article.text.split("\n")[0].startswith("클라우드 업체들이")
    assert "광고" not in article.text and "무단전재" not in article.text
    assert article.published == datetime(2025, 4, 6, 15, 10, tzinfo=KST)
    assert article.authors[0] == "이몽룡"


def test_future_dates_are_rejected() -> None:
    html = page("ko_article.html").replace("2025-04-02T09:41:00+09:00", "2031-01-01T00:00:00+09:00")
    article = extract_article(
        html, "https://www.gasang-it.example/news/articleView.html?idxno=50123", KO, FETCHED
    ).article
    assert article is not None
    assert article.published == datetime(2025, 4, 2, 10, 0, tzinfo=KST)  # falls back to the meta tag


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        (page("list_page.html"), "list_page"),
        (page("error_404.html"), "error_page"),
        ("", "empty"),
        ("   \n  ", "empty"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "binary"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (
            "<html><head><title>짧은 글</title></head><body><p>본문이 한 줄뿐입니다.</p></body></html>",
            "too_short",
        ),
    ],
)
def test_non_articles_are_skipped_with_a_reason(html: str | bytes, reason: str) -> None:
    result = extract_article(html, "https://www.gasang-it.example/news/articleList.html", KO, FETCHED)
    assert result.article is None and result.skip == reason


def test_malformed_html_still_extracts() -> None:
    html = page("zh_article.html").replace("</p>", "").replace("</div>", "").replace("</body>", "")[:-40]
    article = extract_article(
        html.encode(), "https://www.shili.example/tech/2025/0403/a3.html", ZH, FETCHED
    ).article
    assert article is not None and "国产GPU" in article.title


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-03-04T14:20:00+09:00", datetime(2025, 3, 4, 5, 20, tzinfo=UTC)),
        ("2025-03-04 14:20:00", datetime(2025, 3, 4, 14, 20, tzinfo=KST)),
        ("2025.03.04 14:20", datetime(2025, 3, 4, 14, 20, tzinfo=KST)),
        ("2025년 3월 4일 오후 2:20", datetime(2025, 3, 4, 14, 20, tzinfo=KST)),
        ("2025年03月04日 14:20", datetime(2025, 3, 4, 14, 20, tzinfo=KST)),
        ("입력 2025-03-04 오전 9:05 수정 2025-03-05", datetime(2025, 3, 4, 9, 5, tzinfo=KST)),
        ("Tue, 04 Mar 2025 05:20:00 GMT", datetime(2025, 3, 4, 5, 20, tzinfo=UTC)),
        ("2025-03-04T05:20:00Z", datetime(2025, 3, 4, 5, 20, tzinfo=UTC)),
        ("2025/3/4 14:20 +0800", datetime(2025, 3, 4, 14, 20, tzinfo=timezone(timedelta(hours=8)))),
        ("no date here", None),
    ],
)
def test_parse_date(raw: str, expected: datetime | None) -> None:
    assert parse_date(raw, KST) == expected


def test_detect_lang_and_cleaners() -> None:
    assert lang_by_script("삼성전자는 HBM 생산을 늘린다") == "ko"
    assert lang_by_script("美国商务部更新实体清单") == "zh"
    assert lang_by_script("エヌビディアの新しいGPU") == "ja"
    assert lang_by_script("Nvidia ships H20 chips") == "en"
    assert clean_title("标题很长的一篇新闻报道_新浪科技_新浪网", []) == "标题很长的一篇新闻报道"
    assert clean_title("수출통제 강화 - 가상IT신문", ["가상IT신문"]) == "수출통제 강화"
    assert clean_title("Export controls - what changes", []) == "Export controls - what changes"
    assert clean_authors(["홍길동 기자 hong@example.com", "记者 周明、李华", "By Jane Doe and John Roe"]) == [
        "홍길동",
        "周明",
        "李华",
        "Jane Doe",
        "John Roe",
    ]


KO_BODY = "미국 정부가 새 규정을 발표했다.\n업계는 긴장하고 있다."
ZH_BODY = "美国商务部发布新规。\n业界表示关注。"
EN_BODY = "The rule takes effect on Monday."
ZH_LONG = "第一段很长的正文内容。" * 4 + "\n第二段。"
TAILS = [
    (f"{KO_BODY}\n박지훈 기자 reporter1003@example.com\n무단전재 및 재배포 금지", KO_BODY, ["박지훈"]),
    (f"{ZH_BODY}\n（记者 张三）\n版权所有 ©2025 示例网", ZH_BODY, ["张三"]),
    ("본문 마지막 문장이다. 홍길동 기자 hong@example.co.kr", "본문 마지막 문장이다.", ["홍길동"]),
    (f"{EN_BODY}\nCopyright 2025 Example News. All rights reserved.", EN_BODY, []),
    (f"{ZH_LONG}\n相关阅读\n另一篇文章标题一\n另一篇文章标题二", ZH_LONG, []),
    ("Contact press@bis.gov for details. The rule takes effect Monday.", None, []),  # not a byline
]


@pytest.mark.parametrize(("body", "kept", "names"), TAILS)
def test_bylines_emails_copyright_and_related_lists_leave_the_body(
    body: str, kept: str | None, names: list[str]
) -> None:
    text, found = strip_tail(body)
    assert text == (body if kept is None else kept) and found == names


def test_the_reporter_of_a_byline_becomes_the_author() -> None:
    paragraphs = [
        "미국 상무부가 반도체 수출통제를 강화하는 새 규정을 13일 발표했다. 규정은 다음 달부터 시행된다.",
        "새 규정은 고대역폭 메모리와 반도체 제조 장비 24종을 통제 대상에 추가했다.",
        "업계는 중국 매출 비중이 큰 장비 업체들의 실적에 영향이 있을 것으로 내다봤다.",
        "정부는 국내 기업의 피해를 줄이기 위한 대응책을 마련하겠다고 밝혔다.",
        "박지훈 기자 reporter1003@example.com",
        "ⓒ 예시뉴스 무단전재 및 재배포 금지",
    ]
    page = (
        "<html><head><title>반도체 수출통제 강화</title></head><body><article><h1>반도체 수출통제 강화</h1>"
        + "".join(f"<p>{p}</p>" for p in paragraphs)
        + "</article></body></html>"
    )
    article = extract_article(page.encode(), "https://news.example/a/1").article
    assert article is not None and article.authors == ["박지훈"]
    assert article.text.endswith("밝혔다.") and "@" not in article.text and "무단" not in article.text


def test_each_page_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Metadata, dates, body and fallback share one tree: trafilatura is handed that tree (so
    its loader never parses the page again), and a long story costs one trafilatura run."""
    from lxml import html as lxml_html

    import newsmon.crawlers.extraction.body as body

    title = "수출 허가 심사 지연"
    page_parses, runs = [], []
    real_parse, real_run = lxml_html.document_fromstring, body.trafilatura.extract

    def counted_parse(html: str | bytes, *args: object, **kwargs: object) -> object:
        text = html if isinstance(html, str) else html.decode("utf-8", "replace")
        if title in text:  # the page itself, not a fragment trafilatura builds
            page_parses.append(1)
        return real_parse(html, *args, **kwargs)

    def counted_run(document: object, *args: object, **kwargs: object) -> object:
        runs.append((type(document).__name__, kwargs.get("favor_precision")))
        return real_run(document, *args, **kwargs)

    monkeypatch.setattr(lxml_html, "document_fromstring", counted_parse)
    monkeypatch.setattr(body.trafilatura, "extract", counted_run)
    story = "".join(
        f"<p>반도체 장비 수출 허가 심사가 {i}주째 이어지면서 업계의 납기 차질 우려가 커지고 있다.</p>"
        for i in range(12)
    )
    html = f"<html><head><title>{title}</title></head><body><article>{story}</article></body></html>"
    result = extract_article(html.encode(), "https://www.gasang-it.example/news/1", KO, FETCHED)
    assert result.article is not None and "납기 차질" in result.article.text
    assert page_parses == [1]
    assert runs == [("HtmlElement", True)]  # the precision run alone: its body is the story
