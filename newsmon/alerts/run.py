"""Run the alert rules after an index run: search new articles, record stories, send mail.

``newsmon run``, ``newsmon alerts run`` and the Airflow DAG all call ``run_alerts`` through the app
(``newsmon.pipeline.alert_run``), which hands it the index stage's matcher.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from newsmon.alerts.ledger import Ledger, group_stories
from newsmon.alerts.mailer import Outbox, SmtpError, SmtpTransport, Transport
from newsmon.alerts.render import batches, compose
from newsmon.alerts.rules import AlertRule, Mode, load_rules, rules_path
from newsmon.locks import file_lock, lock_at
from newsmon.models import utcnow
from newsmon.queries import MatchPage, RuleQuery
from newsmon.settings import Settings

# A rule's first run looks back this far instead of mailing the whole archive.
FIRST_RUN_LOOKBACK = timedelta(hours=24)
LOCK_WAIT_S = 120.0

Progress = Callable[[str], None]


@dataclass
class AlertRunStats:
    matched: int = 0  # articles matched by the rules in this run's windows
    new_stories: int = 0  # stories seen for the first time (per rule)
    sent: int = 0  # stories mailed (in a dry run: that would have been mailed)
    emails: int = 0  # messages the SMTP server accepted (immediate: one per story)
    skipped_already_sent: int = 0  # matched stories that a rule had already mailed
    failed_pending: int = 0  # stories left pending after a failure; they go out next run
    error: str | None = None  # the first failure, as one line
    outbox: list[EmailMessage] = field(default_factory=list)  # dry run: the unsent messages


def ledger_path(settings: Settings) -> Path:
    path = settings.layout.alerts_ledger
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _exclusive(settings: Settings) -> AbstractContextManager[object]:
    """One alert run at a time per ledger, so a ``sending`` row always means a crash."""
    where = lock_at(settings.layout.alerts_run_lock, settings.state_url, "alerts-run")
    busy = f"alerts: another alert run holds {where}"
    return file_lock(where, timeout=LOCK_WAIT_S, busy=busy, poll=0.5)


def open_ledger(settings: Settings, *, scratch: bool = False) -> Ledger:
    """The ledger: the shared one (NEWSMON_STATE_URL) or the data dir's file; ``scratch``: an
    in-memory copy of it, for a dry run."""
    if settings.state_url is None:
        path = ledger_path(settings)
        return Ledger.scratch_copy(path) if scratch else Ledger.open(path)
    shared = Ledger.open_shared(settings.state_url)
    if not scratch:
        return shared
    try:
        return Ledger.scratch_copy(shared)
    finally:
        shared.close()


class Matcher(Protocol):
    """Where the matches come from: the app hands in the index stage's (``index.matches``)."""

    name: str  # what it searches, for messages

    def refresh(self) -> bool:
        """Make the latest indexed articles searchable; False when there is no index yet."""
        ...

    def pages(self, query: RuleQuery, since: datetime, until: datetime) -> Iterator[MatchPage]:
        """Every article matching ``query`` indexed in (since, until], a page at a time, oldest first."""
        ...


def _match(
    rule: AlertRule,
    matcher: Matcher,
    ledger: Ledger,
    until: datetime,
    stats: AlertRunStats,
    say: Progress,
) -> None:
    """Record every match of ``rule`` in its window, a page at a time.

    Each page is recorded together with a checkpoint just behind it, so a run that dies half
    way resumes where it stopped; re-recording a story is harmless (pending merges, sent skips).
    """
    since = ledger.checkpoint(rule.name) or until - FIRST_RUN_LOOKBACK
    until = max(since, until)  # never move a checkpoint back (clock adjustments)
    matched = new = done = 0
    for page in matcher.pages(rule.query, since, until):
        before = ledger.record_matches(rule.name, group_stories(rule.name, page.articles), page.handled_until)
        matched += len(page.articles)
        new += sum(state is None for state in before.values())
        done += sum(state in ("sending", "sent") for state in before.values())
        if matched > len(page.articles):
            say(f"rule {rule.name}: {matched} matching articles so far")
    ledger.record_matches(rule.name, [], until)
    stats.matched += matched
    stats.new_stories += new
    stats.skipped_already_sent += done
    say(f"rule {rule.name}: {matched} new matching articles, {new} new stories, {done} already sent")


def _deliver(
    rule: AlertRule,
    settings: Settings,
    ledger: Ledger,
    sender: Transport,
    stats: AlertRunStats,
    say: Progress,
    run_mode: Mode,
) -> bool:
    """Send the rule's pending stories (in a digest run, with the later coverage of its stories
    mailed before); False once the SMTP server failed (stop sending).

    A message the server refuses for good (5xx) stays pending and the others go on, so one
    unsendable story cannot hold up every later alert.
    """
    pending = ledger.pending(rule.name) if rule.mode == run_mode else []
    if run_mode == "digest":  # more coverage never makes an immediate mail of its own
        pending += ledger.pending(rule.name, more_coverage=True)
    if not pending:
        return True
    recipients = rule.recipients or settings.alert_to
    if pending and not recipients:
        stats.failed_pending += len(pending)
        stats.error = stats.error or (
            f"alerts: rule '{rule.name}' has no recipients: set NEWSMON_ALERT_TO or the rule's recipients"
        )
        return True
    # A flood of immediate alerts (a first run, a backfill, a run after an outage) goes out as
    # a digest: one mail that lists every story rather than hundreds of separate ones.
    flood = settings.alert_flood_threshold
    mode: Mode = "digest" if len(pending) > flood or run_mode == "digest" else rule.mode
    if mode != rule.mode and run_mode != "digest":
        say(f"rule {rule.name}: {len(pending)} stories to send (over {flood}): as one digest")
    groups = batches(mode, pending)
    for number, group in enumerate(groups, start=1):
        msg = compose(
            rule,
            mode,
            group,
            sender=settings.alert_from,
            recipients=recipients,
            part=(number, len(groups)),
        )
        # Intent first: if we crash after the server accepted, the next run knows (see ledger).
        ledger.mark_sending(group, msg["Message-ID"])
        try:
            sender.send(msg, recipients)
        except SmtpError as exc:
            ledger.mark_pending(group)
            stats.error = stats.error or str(exc)
            say(f"rule {rule.name}: {exc}")
            if exc.permanent:
                stats.failed_pending += len(group)
                continue
            stats.failed_pending += sum(len(g) for g in groups[number - 1 :])
            return False
        ledger.mark_sent(group)
        stats.sent += len(group)
        stats.emails += 1
        say(f"rule {rule.name}: to {msg['To']}: {msg['Subject']}")
    return True


def run_alerts(
    settings: Settings,
    matcher: Matcher,
    *,
    dry_run: bool = False,
    mode: Mode = "immediate",
    progress: Progress | None = None,
    rules: Sequence[AlertRule] | None = None,
) -> AlertRunStats:
    """Evaluate the ``mode`` rules over newly indexed articles and mail new stories; a digest
    run also mails every rule's more coverage (later reports of stories mailed before).

    Stories the SMTP server did not accept stay pending and are retried by the next run;
    the failure is reported in ``stats.error`` rather than raised, so the caller can show
    the counts. A dry run works on an in-memory copy of the ledger and sends nothing.
    """
    say = progress or (lambda _line: None)
    every = load_rules(rules_path(settings)) if rules is None else rules
    active = [r for r in every if r.mode == mode]
    # Which rules this run mails for: a digest run carries every rule's more coverage.
    delivering = every if mode == "digest" else active
    stats = AlertRunStats()
    if not delivering:
        say(f"no {mode} alert rules")
        return stats
    outbox = Outbox()
    with nullcontext() if dry_run else _exclusive(settings):
        ledger = open_ledger(settings, scratch=dry_run)
        sender: Transport = outbox if dry_run else SmtpTransport(settings)
        try:
            if requeued := ledger.requeue_interrupted():
                say(f"{requeued} stories were interrupted while being sent; sending them again")
            now = utcnow()
            # ES keeps dates to the millisecond: a finer checkpoint could fall between a
            # document's stored time and its real one and skip it at the window's edge.
            until = now.replace(microsecond=now.microsecond // 1000 * 1000)
            # Make everything the index run wrote visible before searching the window.
            if matcher.refresh():
                for rule in active:
                    _match(rule, matcher, ledger, until, stats, say)
            else:
                say(f"no index {matcher.name} yet: nothing to match")
            smtp_ok = True
            for rule in delivering:
                if smtp_ok:
                    smtp_ok = _deliver(rule, settings, ledger, sender, stats, say, mode)
                else:
                    left = ledger.pending(rule.name) if rule.mode == mode else []
                    if mode == "digest":
                        left += ledger.pending(rule.name, more_coverage=True)
                    stats.failed_pending += len(left)
        finally:
            sender.close()
            ledger.close()
    stats.outbox = [msg for msg, _ in outbox.messages]
    return stats
