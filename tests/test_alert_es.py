"""Alert rules against a real Elasticsearch node, fed by the real indexer, mailed to a real SMTP server."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from helpers.articles import DESK, isolated, story
from helpers.smtpsink import SmtpSink

from newsmon.alerts.rules import load_rules, parse_rules
from newsmon.index.bulk import index_articles
from newsmon.models import AlertDecision
from newsmon.pipeline import alert_run
from newsmon.settings import Settings

pytestmark = pytest.mark.integration

EXTRA_RULES = parse_rules(
    {
        "rules": [
            # nori: the phrase "수출 통제" matches "수출 통제를" in the text.
            {"name": "ko-term", "query": {"terms": ["수출 통제"], "languages": ["ko"]}},
            {"name": "zh-site", "query": {"terms": ["出口管制"], "sites": ["outlet6"]}},
            {"name": "entity-topic", "query": {"entities": ["中国商务部"], "topics": ["critical_minerals"]}},
            {"name": "too-high", "query": {"export_controls": True, "min_score": 0.95}},
            {"name": "daily", "mode": "digest", "query": {"export_controls": True}},
        ]
    }
)


def test_rules_run_as_queries_on_the_real_node(es_settings: Settings, tmp_path: Path) -> None:
    rules = [*load_rules(), *EXTRA_RULES]
    copies = [story(n, cluster="hbm") for n in range(1, 6)]
    chinese = story(6, lang="zh")
    unrelated = story(7, alert=AlertDecision(export_controls=False, score=0.1))
    japanese = story(8, lang="ja")
    with SmtpSink() as sink:
        settings = isolated(es_settings, tmp_path).model_copy(
            update={"alert_to": [DESK], "alert_from": "newsmon@example.org", **sink.settings()}
        )
        index_articles([*copies, chinese, unrelated, japanese], settings)
        stats = alert_run(settings, rules=rules)
        assert stats.error is None
        mails = sink.wait_for(7)
        by_rule = Counter(m.message["X-Newsmon-Rule"] for m in mails)
        # export-controls: the Korean story (5 outlets, one mail) and the Chinese one;
        # ko-term: the Korean story and the unrelated Korean article that also says 수출 통제;
        # entity-topic: the Chinese text, in the zh and in the ja-tagged article.
        assert by_rule == {"export-controls": 2, "ko-term": 2, "zh-site": 1, "entity-topic": 2}
        assert (stats.sent, stats.emails, stats.new_stories) == (7, 7, 7)
        korean = next(
            m
            for m in mails
            if m.message["X-Newsmon-Rule"] == "export-controls" and "#1" in m.message["Subject"]
        )
        assert korean.message["Subject"].endswith("(+4 outlets)")

        # A copy re-indexed with new content, and a sixth outlet: the story was mailed already.
        index_articles(
            [copies[0].model_copy(update={"text": copies[0].text + " 추가 보도."}), story(9, cluster="hbm")],
            settings,
        )
        again = alert_run(settings, rules=rules)
        assert (again.sent, again.skipped_already_sent) == (0, 2)  # export-controls and ko-term
        assert again.matched == 4
        assert len(sink.wait_for(8, timeout=1.0)) == 7

        digest = alert_run(settings, rules=rules, mode="digest")
        # The daily rule's 3 stories (no language filter: the ja-tagged one too) in one mail, and
        # the sixth outlet as more coverage of the mailed Korean story, once for each rule that
        # mailed it (export-controls, ko-term).
        assert (digest.sent, digest.emails) == (5, 3)
        mails = sink.wait_for(10)
        coverage = [m for m in mails[7:] if "More coverage" in m.message.get_body(("plain",)).get_content()]
        assert sorted(m.message["X-Newsmon-Rule"] for m in coverage) == ["export-controls", "ko-term"]
