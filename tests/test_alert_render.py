"""Alert emails: MIME structure, RFC 2047 subjects, escaping and size bounds."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

from newsmon.alerts.ledger import Story, group_stories
from newsmon.alerts.render import (
    MAX_COPIES_SHOWN,
    MAX_DETAILED_STORIES,
    MAX_STORIES_PER_DIGEST,
    SNIPPET_CHARS,
    Segment,
    batches,
    compose,
    safe_url,
    snippet,
)
from newsmon.alerts.rules import Mode, load_rules
from newsmon.alerts.sample import sample_articles
from newsmon.models import Article

RULE = load_rules()[0]


def _stories(articles: list[Article] | None = None) -> list[Story]:
    return group_stories(RULE.name, articles or sample_articles())


def _wire(msg: EmailMessage) -> EmailMessage:
    """What a receiver parses: the serialised bytes, read back."""
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def _compose(stories: list[Story], mode: Mode = "immediate") -> EmailMessage:
    return compose(RULE, mode, stories, sender="newsmon@example.org", recipients=["a@example.org"])


def test_snippet_highlights_terms_case_insensitively_around_the_first_hit() -> None:
    text = "x" * 500 + " new Export Controls on HBM; export controls again " + "y" * 500
    parts = snippet(text, ["export controls", "HBM"])
    assert parts[0] == Segment("…", False) and parts[-1] == Segment("…", False)
    assert [p.text for p in parts if p.hit] == ["Export Controls", "HBM", "export controls"]
    assert sum(len(p.text) for p in parts) <= SNIPPET_CHARS + 2
    assert snippet("short text", ["absent"]) == [Segment("short text", False)]


def test_safe_url_allows_only_http_links() -> None:
    assert safe_url("https://example.com/a?b=1") == "https://example.com/a?b=1"
    for bad in (
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,x",
        "https://",
        "http://a b",
        "ftp://x",
    ):
        assert safe_url(bad) is None


def test_immediate_mail_is_multipart_with_rfc2047_korean_subject() -> None:
    msg = _wire(_compose(_stories()[:1]))
    raw = _compose(_stories()[:1]).as_bytes()
    subject_line = re.search(rb"^Subject: (.*(?:\r?\n[ \t].*)*)", raw, re.M)
    assert subject_line and b"=?utf-8?" in subject_line.group(1)
    assert all(b < 128 for b in raw)  # 7-bit clean: no SMTPUTF8 needed
    assert (
        msg["Subject"]
        == "[newsmon] 美 상무부, HBM·반도체 장비 수출 통제 강화…中 기업 140곳 추가 (+2 outlets)"
    )
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["X-Newsmon-Rule"] == RULE.name
    text, html = _parts(msg)
    for part in (text, html):
        assert "etnews (www.etnews.example)" in part
        assert "2025-01-14 09:12 UTC+09:00" in part
        assert "https://www.etnews.example/20250114000123" in part
        assert "export_controls 0.94" in part and "0.93" in part
        assert "export-control decision: yes (score 0.93)" in part
        assert "zdnet_korea" in part and "thelec" in part  # other outlets listed under the first
    assert "*수출 통제*" in text
    assert "<mark" in html and ">수출 통제</mark>" in html
    assert '<a href="https://zdnet.example/view/?no=20250114101500"' in html


def test_chinese_subject_round_trips() -> None:
    chinese = _stories()[1]
    assert _wire(_compose([chinese]))["Subject"] == "[newsmon] 商务部：加强相关两用物项对美国出口管制"


def test_crawled_content_is_escaped_and_links_are_http_only() -> None:
    evil = sample_articles()[3].model_copy(
        update={
            "title": '<script>alert("x")</script> 出口管制\r\nBcc: victim@example.com',
            "text": "<img src=x onerror=alert(1)> 出口管制 &amp; more",
            "url": "javascript:alert(1)",
            "canonical_url": "javascript:alert(1)",
            "source": "<b>evil</b>",
        }
    )
    msg = _wire(_compose(_stories([evil])))
    assert msg["Bcc"] is None and "\n" not in msg["Subject"]
    text, html = _parts(msg)
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&amp;amp;" in html and "&lt;b&gt;evil&lt;/b&gt;" in html
    assert 'href="javascript' not in html
    assert '<script>alert("x")</script>' in text  # plain text is not HTML: shown as is
    assert "(not an http(s) link) javascript:alert(1)" in text


def test_sizes_are_bounded() -> None:
    base = sample_articles()[3]
    copies = [
        base.model_copy(update={"url": f"https://c{i}.example/a", "canonical_url": f"https://c{i}.example/a"})
        for i in range(MAX_COPIES_SHOWN + 6)  # the first plus MAX_COPIES_SHOWN + 5 others
    ]
    long_one = copies[0].model_copy(update={"title": "出口管制" * 500, "text": "出口管制 " * 10_000})
    [story] = _stories([long_one, *copies[1:]])
    text, html = _parts(_wire(_compose([story])))
    assert "and 5 more" in text and "and 5 more" in html
    assert len(text) < 10_000 and len(html) < 20_000

    many = _stories(
        [base.model_copy(update={"cluster_id": f"c{i}"}) for i in range(MAX_STORIES_PER_DIGEST + 3)]
    )
    assert [len(b) for b in batches("digest", many)] == [MAX_STORIES_PER_DIGEST, 3]
    assert [len(b) for b in batches("immediate", many[:3])] == [1, 1, 1]


def test_digest_lists_stories_and_parts() -> None:
    stories = _stories()
    msg = _wire(
        compose(RULE, "digest", stories, sender="n@example.org", recipients=["a@example.org"], part=(1, 2))
    )
    assert re.fullmatch(
        r"\[newsmon\] export-controls digest \d{4}-\d\d-\d\d: 2 stories \(1/2\)", msg["Subject"]
    )
    text, _ = _parts(msg)
    assert "1. 美 상무부" in text and "2. 商务部" in text and "part 1 of 2" in text


def test_message_id_is_stable_for_a_story() -> None:
    story = _stories()[:1]
    assert _compose(story)["Message-ID"] == _compose(story)["Message-ID"]
    assert _compose(story)["Message-ID"] != _compose(_stories()[1:])["Message-ID"]
    assert _compose(story)["Message-ID"].endswith("@example.org>")


def test_a_large_digest_lists_every_story_the_rest_one_line_each() -> None:
    base = sample_articles()[3]
    count = MAX_DETAILED_STORIES + 40
    stories = _stories(
        [
            base.model_copy(
                update={
                    "cluster_id": f"c{i}",
                    "title": f"出口管制 第{i}号",
                    "canonical_url": f"https://x.cn/{i}",
                }
            )
            for i in range(count)
        ]
    )
    msg = _wire(compose(RULE, "digest", stories, sender="n@example.org", recipients=["a@example.org"]))
    assert msg["Subject"].endswith(f": {count} stories")
    text, html = _parts(msg)
    assert all(f"出口管制 第{i}号" in text and f"出口管制 第{i}号" in html for i in range(count))
    assert text.count("Why:") == MAX_DETAILED_STORIES
    assert f"More stories ({count - MAX_DETAILED_STORIES})" in text and 'href="https://x.cn/64"' in html
