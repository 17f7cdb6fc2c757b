"""The daily canary: can each site still be crawled, and does it still produce articles?

For every source, ``crawlers.check.check_source`` (what ``newsmon sources check`` runs)
fetches its feeds, sitemaps and list pages and extracts the newest article: each page
must answer with links, and title, body and date must come out. Then the articles the index
holds for the site on the last complete day are compared with the site's own history (its
daily counts over the days before, from Elasticsearch, so there is no state file to lose):
a fall to a fraction of the median is a silent breakage (new layout, blocked crawler, dead
feed) even when the one article still extracts. Broken sites are mailed to the operators
(``NEWSMON_ALERT_TO``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from statistics import median
from typing import Any

from newsmon.crawlers.check import Fetcher, SourceCheck, check_source, http_fetcher
from newsmon.crawlers.registry import Source
from newsmon.errors import NewsmonError
from newsmon.settings import Settings

HISTORY_DAYS = 14
COLLAPSE_RATIO = 0.25
MIN_BASELINE = 4.0  # a site with fewer articles a day is too noisy to call a collapse


@dataclass
class SiteCheck:
    """One site's result; plain data, so it can travel through XCom."""

    source: str
    article_url: str | None = None
    title: str = ""
    published: str | None = None
    body_chars: int = 0
    day: str | None = None  # the day whose article count was compared
    count: int | None = None
    baseline: float | None = None  # median articles a day before ``day``
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def extraction_problems(checked: SourceCheck) -> list[str]:
    """What an operator must fix: discovery pages that failed, and a sample that is incomplete.

    Candidate articles that turned out to be hub pages are no problem once one sample worked.
    """
    problems = [f"{p.kind} {p.url}: {p.error}" for p in checked.pages if p.kind != "article" and p.error]
    if checked.sample_url is None:
        tried = [f"article {p.url}: {p.error}" for p in checked.pages if p.kind == "article"]
        return [*problems, *tried, "no recent article could be extracted"]
    missing = {"title": not checked.title, "body": not checked.body_chars, "date": checked.published is None}
    return problems + [
        f"article {checked.sample_url}: no {name}" for name, absent in missing.items() if absent
    ]


def collapse(
    counts: dict[date, int],
    day: date,
    *,
    window: int = HISTORY_DAYS,
    ratio: float = COLLAPSE_RATIO,
    min_baseline: float = MIN_BASELINE,
) -> tuple[float, str | None]:
    """The median count of the ``window`` days before ``day``, and a problem if ``day`` fell under
    ``ratio`` of it."""
    baseline = float(median(counts.get(day - timedelta(days=i), 0) for i in range(1, window + 1)))
    count = counts.get(day, 0)
    if baseline >= min_baseline and count < ratio * baseline:
        return baseline, (
            f"article count collapsed: {count} on {day} against a median of {baseline:g} a day"
            f" over the {window} days before"
        )
    return baseline, None


def daily_counts(
    settings: Settings, source: str, first: date, last: date, client: Any = None
) -> dict[date, int]:
    """Articles per day (by ``date``) the index holds for ``source`` from ``first`` to ``last``."""
    from newsmon.index.search import Filters, article_stats

    stats = article_stats(
        settings, "", Filters(site=source, since=first, until=last), interval="day", top=1, client=client
    )
    return {date.fromisoformat(b.key): b.count for b in stats.days}


def check_site(
    settings: Settings,
    source: Source,
    *,
    fetch: Fetcher | None = None,
    pause_s: float | None = None,
    client: Any = None,
    now: datetime | None = None,
) -> SiteCheck:
    """The canary for one site: its registry entry and a sample article, then its article count."""
    checked = check_source(source, fetch or http_fetcher(settings.user_agent), pause_s)
    check = SiteCheck(
        source=source.name,
        article_url=checked.sample_url,
        title=checked.title,
        published=checked.published.isoformat() if checked.published else None,
        body_chars=checked.body_chars,
        problems=extraction_problems(checked),
    )
    day = ((now or datetime.now(UTC)) - timedelta(days=1)).date()  # the last complete (UTC) day
    counts = daily_counts(settings, source.name, day - timedelta(days=HISTORY_DAYS), day, client)
    check.day, check.count = day.isoformat(), counts.get(day, 0)
    check.baseline, problem = collapse(counts, day)
    if problem:
        check.problems.append(problem)
    return check


def _operators_mail(settings: Settings, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.alert_from
    msg["To"] = ", ".join(settings.alert_to)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain="newsmon")
    msg.set_content(body)
    return msg


def _send_to_operators(settings: Settings, msg: EmailMessage, what: str) -> None:
    from newsmon.alerts.mailer import SmtpTransport

    if not settings.alert_to:
        raise NewsmonError(f"{what} but NEWSMON_ALERT_TO is empty: nobody to tell")
    transport = SmtpTransport(settings)
    try:
        transport.send(msg, settings.alert_to)
    finally:
        transport.close()


def compose_report(settings: Settings, checks: list[SiteCheck], other: list[str]) -> EmailMessage | None:
    """The operators' mail, or None when every site is fine and there is nothing else to say."""
    broken = [c for c in checks if not c.ok]
    if not broken and not other:
        return None
    lines = [f"{len(broken)} of {len(checks)} sites need a look.", ""]
    for c in broken:
        lines.append(f"* {c.source}" + (f" (checked {c.article_url})" if c.article_url else ""))
        lines += [f"    - {p}" for p in c.problems]
    if other:
        lines += ["", "Data dir:"] + [f"  - {line}" for line in other]
    subject = f"[newsmon canary] {len(broken)} of {len(checks)} sites broken" + (
        f", {len(other)} data-dir warnings" if other else ""
    )
    return _operators_mail(settings, subject, "\n".join(lines) + "\n")


def mail_operators(settings: Settings, checks: list[SiteCheck], other: list[str]) -> bool:
    """Mail the report to ``NEWSMON_ALERT_TO`` if there is anything to report; True if mailed."""
    msg = compose_report(settings, checks, other)
    if msg is None:
        return False
    _send_to_operators(settings, msg, "canary: sites are broken")
    return True


def record_checks(settings: Settings, checks: list[SiteCheck], warn: Any = None) -> int:
    """One crawl-health document per site check (pass or fail, and why), for Kibana; returns
    how many were not recorded (a health log that Elasticsearch cannot take never fails the canary)."""
    from newsmon.health import canary_docs, new_run_id, record

    return record(settings, canary_docs(new_run_id(), checks), warn=warn)


def mail_run_failure(
    settings: Settings, dag_id: str, run_id: str, reason: str, task_id: str | None = None
) -> EmailMessage:
    """Tell the operators that a DAG run failed (the DAGs' on_failure_callback); returns the mail."""
    lines = [f"The Airflow run {run_id} of {dag_id} failed: {reason or 'no reason given'}."]
    if task_id:
        lines.append(f"The last task that ran: {task_id}.")
    lines += ["", "Its task logs are in the Airflow UI."]
    msg = _operators_mail(settings, f"[newsmon] {dag_id} run failed", "\n".join(lines) + "\n")
    _send_to_operators(settings, msg, f"{dag_id}: a run failed")
    return msg
