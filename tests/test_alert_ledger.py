"""The alert ledger's state machine: pending -> sending -> sent, per (rule, story)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsmon.alerts.ledger import MAX_STORED_COPIES, MAX_STORED_TEXT, Ledger, group_stories, story_key
from newsmon.alerts.sample import sample_articles
from newsmon.models import Article

T0 = datetime(2025, 1, 14, tzinfo=UTC)
Opener = Callable[[], Ledger]


@pytest.fixture(params=["embedded", "shared"])
def open_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the same ledger each call: a file under the data dir, or the shared PostgreSQL one."""
    if request.param == "embedded":
        return lambda: Ledger.open(tmp_path / "ledger.sqlite3")
    url = request.getfixturevalue("state_url")
    return lambda: Ledger.open_shared(url)


def _copy(article: Article, n: int, **update: object) -> Article:
    url = f"https://copy{n}.example/{n}"
    return article.model_copy(update={"url": url, "canonical_url": url, "source": f"copy{n}"} | update)


def test_group_stories_by_cluster_earliest_copy_first() -> None:
    articles = sample_articles()
    ko_early, ko_late, zh = articles[0], articles[1], articles[3]
    lone = zh.model_copy(update={"cluster_id": None})
    naive = _copy(ko_late, 7, published=datetime(2025, 1, 13, 0, 0))  # naive: read as UTC
    stories = group_stories("r", [ko_late, lone, ko_early, naive])
    assert [s.key for s in stories] == ["cluster:c-hbm-rule", f"article:{lone.id}"]
    assert [a.source for a in stories[0].articles] == ["copy7", "etnews", "zdnet_korea"]
    assert story_key(lone) == f"article:{lone.id}"


def test_record_pending_extend_and_skip_sent(open_ledger: Opener) -> None:
    ledger = open_ledger()
    first, *copies = sample_articles()[:3]
    assert ledger.checkpoint("r") is None
    assert ledger.record_matches("r", group_stories("r", [first]), T0) == {"cluster:c-hbm-rule": None}
    assert ledger.checkpoint("r") == T0

    # A later copy joins the pending story...
    assert ledger.record_matches("r", group_stories("r", copies[:1]), T0 + timedelta(hours=1)) == {
        "cluster:c-hbm-rule": "pending"
    }
    [story] = ledger.pending("r")
    assert [a.source for a in story.articles] == ["etnews", "zdnet_korea"]

    # ...and once it is sent, further copies are more coverage for the digest, not a new alert.
    ledger.mark_sending([story], "<id@x>")
    ledger.mark_sent([story])
    assert ledger.record_matches("r", group_stories("r", copies[1:]), T0 + timedelta(hours=2)) == {
        "cluster:c-hbm-rule": "sent"
    }
    assert ledger.pending("r") == []
    assert ledger.states("r") == {"cluster:c-hbm-rule": "sent", "more:cluster:c-hbm-rule": "pending"}
    [more] = ledger.pending("r", more_coverage=True)
    assert [a.source for a in more.articles] == ["etnews", "zdnet_korea", copies[1].source]  # all reports
    assert more.new_ids == {copies[1].id} and more.more_coverage
    # A report seen before (re-indexed, or already mailed) is never new coverage again.
    ledger.record_matches("r", group_stories("r", [first, copies[1]]), T0 + timedelta(hours=3))
    assert [s.new_ids for s in ledger.pending("r", more_coverage=True)] == [{copies[1].id}]
    ledger.mark_sending([more], "<more@x>")
    ledger.mark_sent([more])
    ledger.record_matches("r", group_stories("r", [copies[1]]), T0 + timedelta(hours=4))
    assert ledger.pending("r", more_coverage=True) == []
    # The next new report opens the story's next coverage.
    late = _copy(first, 9)
    ledger.record_matches("r", group_stories("r", [late]), T0 + timedelta(hours=5))
    [again] = ledger.pending("r", more_coverage=True)
    assert again.new_ids == {late.id} and len(again.articles) == 4
    assert ledger.states("other") == {} and ledger.checkpoint("other") is None
    ledger.close()


def test_stories_key_on_the_event_story_before_the_wire_cluster() -> None:
    ko, zh = sample_articles()[0], sample_articles()[3]
    assert story_key(ko) == "cluster:c-hbm-rule"
    same_event = [a.model_copy(update={"story_id": "s-1"}) for a in (ko, zh)]
    [story] = group_stories("r", same_event)
    assert story.key == "story:s-1" and len(story.articles) == 2


def test_interrupted_sends_are_requeued_and_counted(open_ledger: Opener) -> None:
    ledger = open_ledger()
    ledger.record_matches("r", group_stories("r", sample_articles()), T0)
    stories = ledger.pending("r")
    ledger.mark_sending(stories, "<id@x>")
    ledger.close()  # "crash"

    ledger = open_ledger()
    assert ledger.requeue_interrupted() == 2
    assert [s.maybe_sent for s in ledger.pending("r")] == [True, True]
    ledger.mark_pending(ledger.pending("r"))
    assert ledger.requeue_interrupted() == 0
    ledger.close()


def test_stored_copies_and_text_are_bounded(open_ledger: Opener) -> None:
    base = sample_articles()[0].model_copy(update={"text": "x" * (MAX_STORED_TEXT * 2)})
    many = [_copy(base, n) for n in range(MAX_STORED_COPIES + 5)]
    ledger = open_ledger()
    ledger.record_matches("r", group_stories("r", many), T0)
    [story] = ledger.pending("r")
    assert len(story.articles) == MAX_STORED_COPIES
    assert all(len(a.text) == MAX_STORED_TEXT for a in story.articles)
    ledger.close()


def test_scratch_copy_leaves_the_ledger_untouched(open_ledger: Opener, tmp_path: Path) -> None:
    real = open_ledger()
    real.record_matches("r", group_stories("r", sample_articles()[:1]), T0)
    scratch = Ledger.scratch_copy(real)
    real.close()
    [story] = scratch.pending("r")
    scratch.mark_sending([story], "<id@x>")
    scratch.mark_sent([story])
    scratch.record_matches("r", [], T0 + timedelta(days=1))
    scratch.close()
    real = open_ledger()
    assert real.states("r") == {"cluster:c-hbm-rule": "pending"} and real.checkpoint("r") == T0
    real.close()
    assert Ledger.scratch_copy(tmp_path / "absent.sqlite3").pending("r") == []


def test_a_ledger_file_from_before_event_stories_opens_and_tracks_coverage(tmp_path: Path) -> None:
    """A file written before ``story_articles`` existed gains it when opened; its mailed story's
    later reports become more coverage, the mailed ones never."""
    path = tmp_path / "ledger.sqlite3"
    first, later = sample_articles()[0], sample_articles()[1]
    ledger = Ledger.open(path)
    ledger.record_matches("r", group_stories("r", [first]), T0)
    [story] = ledger.pending("r")
    ledger.mark_sending([story], "<id@x>")
    ledger.mark_sent([story])
    ledger.close()
    with sqlite3.connect(path) as old:  # as the ledger before event stories left it
        old.execute("DROP TABLE story_articles")
    old.close()

    ledger = Ledger.open(path)
    ledger.record_matches("r", group_stories("r", [first, later]), T0 + timedelta(hours=1))
    [more] = ledger.pending("r", more_coverage=True)
    assert more.new_ids == {later.id} and [a.id for a in more.articles] == [first.id, later.id]
    ledger.close()


def test_taking_a_ledger_keeps_which_reports_were_seen(tmp_path: Path, state_url: str) -> None:
    """``newsmon state import`` (``Ledger.take``) carries ``story_articles``: a report seen in the
    embedded ledger is not new coverage in the shared one, even one the mailed row no longer
    lists (it keeps ``MAX_STORED_COPIES``)."""
    first = sample_articles()[0]
    later = [_copy(first, n) for n in range(MAX_STORED_COPIES)]  # the mailed row keeps 20 of 21
    embedded = Ledger.open(tmp_path / "ledger.sqlite3")
    embedded.record_matches("r", group_stories("r", [first]), T0)
    [story] = embedded.pending("r")
    embedded.mark_sending([story], "<id@x>")
    embedded.mark_sent([story])
    embedded.record_matches("r", group_stories("r", later), T0 + timedelta(hours=1))
    [more] = embedded.pending("r", more_coverage=True)
    embedded.mark_sending([more], "<more@x>")
    embedded.mark_sent([more])
    shared = Ledger.open_shared(state_url)
    assert shared.take(embedded) == (1, 2)
    embedded.close()
    for report in (first, *later):
        shared.record_matches("r", group_stories("r", [report]), T0 + timedelta(hours=2))
    assert shared.pending("r", more_coverage=True) == []
    assert shared.states("r") == {"cluster:c-hbm-rule": "sent", "more:cluster:c-hbm-rule": "sent"}
    shared.close()
