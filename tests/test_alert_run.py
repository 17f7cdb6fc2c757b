"""``run_alerts`` end to end against the suite's real Elasticsearch node and a real SMTP server.

Each test has an index prefix and data dir of its own on the one session node; documents are
built by the real ``index.docs.to_doc`` and written through the articles alias, so the rules'
queries meet real analyzers and real query semantics.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from helpers.articles import DESK, isolated, story
from helpers.smtpsink import ReceivedMail, SmtpSink

from newsmon.alerts.ledger import Ledger
from newsmon.alerts.rules import AlertRule, load_rules, parse_rules, rules_path
from newsmon.alerts.run import AlertRunStats, ledger_path, open_ledger, run_alerts
from newsmon.errors import NewsmonError
from newsmon.index.bulk import index_articles
from newsmon.index.client import articles_alias, es_client
from newsmon.index.docs import to_doc
from newsmon.index.localnode.launcher import free_port
from newsmon.index.matches import PAGE_SIZE, IndexMatcher
from newsmon.index.setup import setup_index
from newsmon.models import AlertDecision, Article, utcnow
from newsmon.settings import Settings

pytestmark = pytest.mark.integration


@dataclass
class Node:
    """This test's slice of the real node: its settings and a way to add documents."""

    settings: Settings
    client: Elasticsearch

    def add(self, *articles: Article, indexed: datetime | None = None) -> None:
        """Index ``articles`` as the indexer would (``indexed`` lets a test place them in time)."""
        setup_index(self.settings, self.client)
        alias = articles_alias(self.settings)
        for article in articles:
            doc = to_doc(article, first_seen=None, indexed=indexed or utcnow())
            self.client.index(index=alias, id=article.id, document=doc, refresh=True)


@pytest.fixture
def es(es_settings: Settings, tmp_path: Path) -> Node:
    settings = isolated(es_settings, tmp_path)
    return Node(settings, es_client(settings))


def _settings(es: Node, sink: SmtpSink | None = None, **overrides: Any) -> Settings:
    smtp = sink.settings() if sink else {"smtp_host": "127.0.0.1", "smtp_port": free_port()}
    return es.settings.model_copy(
        update={"alert_to": [DESK], "alert_from": "newsmon@example.org"} | smtp | overrides
    )


def _run(settings: Settings, es: Node, **kwargs: Any) -> AlertRunStats:
    return run_alerts(settings, IndexMatcher(settings, es.client), **kwargs)


def _window(settings: Settings, es: Node) -> str:
    """What the next alert run's window starts from and what it can find: each rule's checkpoint
    and every document's ``indexed`` (a failure message: this test failed once under load)."""
    ledger = open_ledger(settings)
    try:
        checkpoints = {rule.name: ledger.checkpoint(rule.name) for rule in load_rules(rules_path(settings))}
    finally:
        ledger.close()
    hits = es.client.search(index=articles_alias(es.settings), size=50, source=["indexed"])["hits"]["hits"]
    return f"checkpoints {checkpoints}; indexed {sorted(hit['_source']['indexed'] for hit in hits)}"


def _subjects(mails: list[ReceivedMail]) -> list[str]:
    return [m.message["Subject"] for m in mails]


def _text(mail: ReceivedMail) -> str:
    body = mail.message.get_body(("plain",))
    assert body is not None
    return body.get_content()


def _html(mail: ReceivedMail) -> str:
    body = mail.message.get_body(("html",))
    assert body is not None
    return body.get_content()


def test_one_email_per_story_even_when_five_outlets_republish(es: Node) -> None:
    copies = [story(n, cluster="hbm") for n in range(1, 6)]
    evil = story(6, lang="zh", title="商务部：加强出口管制 <script>alert(1)</script>")
    unrelated = story(7, alert=AlertDecision(export_controls=False, score=0.1))
    japanese = story(8, lang="ja")  # the default rule covers ko, zh and en only
    es.add(*copies, evil, unrelated, japanese)
    with SmtpSink() as sink:
        settings = _settings(es, sink)
        stats = _run(settings, es)
        mails = sink.wait_for(2)
        assert (stats.matched, stats.new_stories, stats.sent, stats.emails) == (6, 2, 2, 2)
        assert stats.error is None and len(mails) == 2

        korean = next(m for m in mails if "#1" in m.message["Subject"])
        assert korean.message["Subject"] == f"[newsmon] {copies[0].title} (+4 outlets)"
        assert korean.rcpt_tos == [DESK] and korean.message["To"] == DESK
        text = _text(korean)
        assert text.index("outlet1.example/news/1") < text.index("Also reported by")
        assert all(f"outlet{n} (outlet{n}.example)" in text for n in range(2, 6))
        assert all(f'href="https://outlet{n}.example/news/{n}"' in _html(korean) for n in range(1, 6))

        chinese = next(m for m in mails if m is not korean)
        assert chinese.message["Subject"] == "[newsmon] 商务部：加强出口管制 <script>alert(1)</script>"
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in _html(chinese) and "<script>" not in _html(chinese)

        # Nothing new: nothing matched, nothing sent.
        assert _run(settings, es).matched == 0
        # A sixth outlet republishes later: same story, already mailed.
        es.add(story(9, cluster="hbm"))
        later = _run(settings, es)
        assert (later.matched, later.skipped_already_sent, later.sent) == (1, 1, 0)
        assert len(sink.wait_for(3, timeout=0.5)) == 2


def test_smtp_refusing_mid_batch_sends_the_rest_next_run_and_nothing_twice(es: Node) -> None:
    es.add(*(story(n, cluster=f"s{n}") for n in range(1, 6)))
    with SmtpSink(refuse_after=2) as sink:
        settings = _settings(es, sink)
        first = _run(settings, es)
        assert (first.sent, first.failed_pending, sink.refused) == (2, 3, 1)
        assert first.error and "refused the message: 451" in first.error and "\n" not in first.error
        ledger = Ledger.open(ledger_path(settings))
        assert Counter(ledger.states("export-controls").values()) == {"sent": 2, "pending": 3}
        ledger.close()

        sink.refuse_after = None  # the server recovers
        second = _run(settings, es)
        assert (second.matched, second.sent, second.failed_pending, second.error) == (0, 3, 0, None)
        third = _run(settings, es)
        assert third.sent == 0

        mails = sink.wait_for(5)
        assert len(mails) == 5
        assert len({m.message["Message-ID"] for m in mails}) == 5
        assert sorted(_subjects(mails)) == sorted(f"[newsmon] {story(n).title}" for n in range(1, 6))


def test_a_message_refused_for_good_does_not_hold_up_the_others(es: Node) -> None:
    es.add(*(story(n, cluster=f"s{n}") for n in range(1, 4)))
    poison = story(2).title
    with SmtpSink(reject=lambda msg: poison in msg["Subject"]) as sink:
        settings = _settings(es, sink)
        first = _run(settings, es)
        assert (first.sent, first.failed_pending, sink.refused) == (2, 1, 1)
        assert first.error and "refused the message: 554" in first.error
        sink.reject = None
        assert _run(settings, es).sent == 1
        assert sorted(_subjects(sink.wait_for(3))) == sorted(f"[newsmon] {story(n).title}" for n in (1, 2, 3))


def test_smtp_down_keeps_stories_pending_with_a_clear_error(es: Node) -> None:
    es.add(story(1), story(2))
    down = _settings(es)
    stats = _run(down, es)
    assert (stats.sent, stats.failed_pending) == (0, 2)
    assert stats.error == f"SMTP: cannot connect to 127.0.0.1:{down.smtp_port}: connection refused"
    with SmtpSink() as sink:
        stats = _run(_settings(es, sink), es)
        assert (stats.sent, stats.failed_pending) == (2, 0)
        assert len(sink.wait_for(2)) == 2


def test_crash_after_the_server_accepted_resends_with_the_same_message_id(
    es: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    es.add(story(1))
    with SmtpSink() as sink:
        settings = _settings(es, sink)

        def crash(self: Ledger, stories: object) -> None:
            raise KeyboardInterrupt  # the process dies between SMTP "250" and the ledger commit

        with monkeypatch.context() as patch:
            patch.setattr(Ledger, "mark_sent", crash)
            with pytest.raises(KeyboardInterrupt):
                _run(settings, es)
        ledger = Ledger.open(ledger_path(settings))
        assert list(ledger.states("export-controls").values()) == ["sending"]
        ledger.close()

        progress: list[str] = []
        stats = _run(settings, es, progress=progress.append)
        assert stats.sent == 1 and any("interrupted" in line for line in progress)
        first, again = sink.wait_for(2)
        # At-least-once by design; the same Message-ID lets clients fold the duplicate.
        assert first.message["Message-ID"] == again.message["Message-ID"]
        assert "Re-sent after an interrupted delivery" in _text(again)
        assert _run(settings, es).sent == 0


def test_dry_run_renders_but_sends_and_records_nothing(es: Node) -> None:
    es.add(story(1, cluster="a"), story(2, cluster="a"), story(3))
    settings = _settings(es)  # nothing listens there: a dry run must not connect
    stats = _run(settings, es, dry_run=True)
    assert (stats.sent, stats.emails, stats.error) == (2, 2, None)
    assert [m["To"] for m in stats.outbox] == [DESK, DESK]
    with sqlite3.connect(ledger_path(settings)) as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == []  # not even a schema
    again = _run(settings, es, dry_run=True)
    assert again.sent == 2  # nothing was consumed


DIGEST_RULES = parse_rules(
    {
        "rules": [
            {"name": "now", "query": {"terms": ["HBM"]}},
            {
                "name": "daily",
                "mode": "digest",
                "query": {"export_controls": True},
                "recipients": ["boss@example.org"],
            },
        ]
    }
)


def test_digest_groups_stories_by_cluster_in_one_email(es: Node) -> None:
    es.add(story(1, cluster="hbm"), story(2, cluster="hbm"), story(3, lang="zh"))
    with SmtpSink() as sink:
        settings = _settings(es, sink)
        immediate = _run(settings, es, rules=DIGEST_RULES)
        assert (immediate.sent, immediate.emails) == (1, 1)  # rule "now": the HBM story only
        digest = _run(settings, es, rules=DIGEST_RULES, mode="digest")
        assert (digest.matched, digest.sent, digest.emails) == (3, 2, 1)
        now_mail, digest_mail = sink.wait_for(2)
        assert now_mail.rcpt_tos == [DESK] and digest_mail.rcpt_tos == ["boss@example.org"]
        assert (
            "daily digest" in digest_mail.message["Subject"] and "2 stories" in digest_mail.message["Subject"]
        )
        text = _text(digest_mail)
        assert text.index("1. ") < text.index("Also reported by") < text.index("2. ")
        assert "outlet2 (outlet2.example)" in text.split("2. ")[0]
        assert _run(settings, es, rules=DIGEST_RULES, mode="digest").sent == 0


def test_no_recipients_keeps_stories_pending(es: Node) -> None:
    es.add(story(1))
    stats = _run(_settings(es, alert_to=[]), es)
    assert (stats.sent, stats.failed_pending) == (0, 1)
    assert stats.error == (
        "alerts: rule 'export-controls' has no recipients: set NEWSMON_ALERT_TO or the rule's recipients"
    )


def test_windows_missing_index_and_first_run_lookback(es: Node) -> None:
    progress: list[str] = []
    stats = _run(_settings(es), es, progress=progress.append)
    alias = articles_alias(es.settings)
    assert stats.matched == 0 and stats.error is None and f"no index {alias} yet" in progress[0]

    es.add(story(1), indexed=utcnow() - timedelta(days=2))  # older than the first-run lookback
    es.add(story(2), indexed=utcnow() + timedelta(hours=1))  # after this run's window
    stats = _run(_settings(es), es, dry_run=True)
    assert stats.matched == 0


def test_rules_only_run_in_their_mode(es: Node) -> None:
    rules: list[AlertRule] = [r for r in DIGEST_RULES if r.mode == "digest"]
    progress: list[str] = []
    assert _run(_settings(es), es, rules=rules, progress=progress.append).matched == 0
    assert progress == ["no immediate alert rules"]


def test_run_command_dry_run_then_real_run(es: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from newsmon.cli import app  # `newsmon alerts run`: the app wires the index's matches in
    from newsmon.settings import get_settings

    es.add(story(1))
    runner = CliRunner()
    with SmtpSink() as sink:
        for name, value in {
            "ES_URL": es.settings.es_url,
            "INDEX_PREFIX": es.settings.index_prefix,
            "DATA_DIR": str(es.settings.data_dir),
            "SMTP_PORT": str(sink.port),
        }.items():
            monkeypatch.setenv(f"NEWSMON_{name}", value)
        monkeypatch.setenv("NEWSMON_ALERT_TO", DESK)
        get_settings.cache_clear()
        dry = runner.invoke(app, ["alerts", "run", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert f"rule export-controls: to {DESK}: [newsmon] {story(1).title}" in dry.output
        assert "dry run, nothing sent: would send 1 stories in 1 emails" in dry.output
        assert not sink.messages

        real = runner.invoke(app, ["alerts", "run"])
        assert real.exit_code == 0, real.output
        assert "sent 1 stories in 1 emails" in real.output and len(sink.wait_for(1)) == 1

    es.add(story(2))
    failed = runner.invoke(app, ["alerts", "run"])  # the server is gone now
    assert isinstance(failed.exception, NewsmonError)
    assert str(failed.exception) == f"SMTP: cannot connect to 127.0.0.1:{sink.port}: connection refused"
    assert "1 pending for the next run" in failed.output


FLOOD = 1100  # over the 1,000 that an earlier version cut a run's matches to


def _numbers(mail: ReceivedMail) -> Counter[int]:
    """How often each story number (the ``#n`` of its title) appears in a mail's text part."""
    return Counter(int(n) for n in re.findall(r"#(\d+)\b", _text(mail)))


def test_a_flood_of_stories_goes_out_whole_as_one_digest_even_after_a_crash(
    es: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_articles([story(n, cluster=f"flood{n}") for n in range(1, FLOOD + 1)], es.settings)
    with SmtpSink() as sink:
        settings = _settings(es, sink)
        real_pages = IndexMatcher.pages

        def dies_after_two_pages(*args: Any, **kwargs: Any) -> Iterator[Any]:
            for number, page in enumerate(real_pages(*args, **kwargs), start=1):
                if number > 2:
                    raise KeyboardInterrupt  # killed while paging
                yield page

        with monkeypatch.context() as patch:
            patch.setattr(IndexMatcher, "pages", dies_after_two_pages)
            with pytest.raises(KeyboardInterrupt):
                _run(settings, es)
        ledger = Ledger.open(ledger_path(settings))
        assert Counter(ledger.states("export-controls").values()) == {"pending": 2 * PAGE_SIZE}
        ledger.close()

        stats = _run(settings, es)
        # The rest are new; the first two pages may be matched again (harmless: still pending).
        assert (stats.new_stories, stats.sent, stats.emails, stats.error) == (
            FLOOD - 2 * PAGE_SIZE,
            FLOOD,
            1,
            None,
        )
        [mail] = sink.wait_for(1)
        assert mail.message["Subject"].endswith(f"digest {utcnow():%Y-%m-%d}: {FLOOD} stories")
        # Every story is in the one mail, none twice (story #n: its title, and in full its link).
        assert set(_numbers(mail)) == set(range(1, FLOOD + 1))
        ledger = Ledger.open(ledger_path(settings))
        assert Counter(ledger.states("export-controls").values()) == {"sent": FLOOD}
        ledger.close()
        assert _run(settings, es).sent == 0
        assert len(sink.wait_for(2, timeout=0.5)) == 1


def test_a_few_stories_stay_one_mail_each_up_to_the_flood_threshold(es: Node) -> None:
    es.add(*(story(n, cluster=f"s{n}") for n in range(1, 4)))
    with SmtpSink() as sink:
        stats = _run(_settings(es, sink, alert_flood_threshold=3), es)
        assert (stats.sent, stats.emails) == (3, 3)
        es.add(*(story(n, cluster=f"s{n}") for n in range(4, 8)))
        stats = _run(_settings(es, sink, alert_flood_threshold=3), es)
        assert (stats.sent, stats.emails) == (4, 1)
        mails = sink.wait_for(4)
        assert "digest" in mails[-1].message["Subject"] and set(_numbers(mails[-1])) == {4, 5, 6, 7}


@pytest.mark.parametrize("state", ["embedded", "shared"])
def test_one_alert_per_event_story_and_later_coverage_only_in_the_digest(
    es: Node, request: pytest.FixtureRequest, state: str
) -> None:
    """Reports of one event in three languages mail once; later reports wait for the digest as
    more coverage (outlets, languages); a new action alerts again; an SMTP outage during the
    digest loses and doubles nothing. On the embedded ledger and the shared PostgreSQL one."""
    shared = {"state_url": request.getfixturevalue("state_url")} if state == "shared" else {}
    event = [story(1, story_id="evt"), story(2, lang="zh", story_id="evt")]
    es.add(*event)
    with SmtpSink() as sink:
        settings = _settings(es, sink, **shared)
        assert (_run(settings, es).emails, len(sink.wait_for(1))) == (1, 1)
        [alert] = sink.messages
        assert alert.message["Subject"].endswith("(+1 outlets)")

        later = [story(3, lang="en", story_id="evt"), story(4, lang="zh", story_id="evt")]
        es.add(*later, story(5, story_id="new-action"))
        immediate = _run(settings, es)
        got = (immediate.matched, immediate.emails, immediate.skipped_already_sent)
        assert got == (3, 1, 1), _window(settings, es)
        assert _subjects(sink.wait_for(2))[1] == f"[newsmon] {story(5).title}"

        # The digest run carries the immediate rule's more coverage; the SMTP server is down first.
        down = _run(_settings(es, **shared), es, mode="digest")
        assert (down.sent, down.failed_pending) == (0, 1) and down.error
        digest = _run(settings, es, mode="digest")
        assert (digest.sent, digest.emails) == (1, 1)
        mail = sink.wait_for(3)[2]
        assert mail.message["Subject"].startswith("[newsmon] export-controls digest")
        text = _text(mail)
        assert "More coverage of a story alerted before: 2 new reports from outlet3 (outlet3.example)" in text
        assert "in en, zh" in text
        # Every report of the story is listed, the new ones marked.
        assert all(f"outlet{n}.example/news/{n}" in text for n in range(1, 5))
        assert text.count("(new)") == 2 and "(new)" in _html(mail)

        # Nothing new: neither run mails again; a further report opens the next coverage.
        assert (_run(settings, es).emails, _run(settings, es, mode="digest").emails) == (0, 0)
        es.add(story(6, lang="en", story_id="evt"))
        assert _run(settings, es).emails == 0
        assert _run(settings, es, mode="digest").emails == 1
        mails = sink.wait_for(4)
        assert len(mails) == 4 and len({m.message["Message-ID"] for m in mails}) == 4
        assert "1 new report from outlet6" in _text(mails[3])


@pytest.mark.parametrize("state", ["embedded", "shared"])
def test_an_alert_run_waits_for_a_bulk_write_in_flight(
    es: Node, request: pytest.FixtureRequest, state: str
) -> None:
    """A write stamped before the run's window closed, landing after it started, is matched."""
    from newsmon.locks import file_lock
    from newsmon.pipeline import alert_run, index_writes_lock

    shared = {"state_url": request.getfixturevalue("state_url")} if state == "shared" else {}
    setup_index(es.settings, es.client)
    with SmtpSink() as sink:
        settings = _settings(es, sink, **shared)
        result: list[AlertRunStats] = []
        late = story(1)
        with file_lock(index_writes_lock(settings), exclusive=False):  # a bulk write in flight ...
            stamped = utcnow()  # ... that has stamped its documents
            run = threading.Thread(target=lambda: result.append(alert_run(settings, client=es.client)))
            run.start()
            time.sleep(1.5)  # the run has closed its window after ``stamped`` and waits
            doc = to_doc(late, first_seen=None, indexed=stamped)
            es.client.index(index=articles_alias(settings), id=late.id, document=doc)  # no refresh
        run.join(timeout=60)
        assert result and result[0].matched == 1 and result[0].sent == 1, result
        assert len(sink.wait_for(1)) == 1
