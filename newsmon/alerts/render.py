"""Alert emails: multipart text + HTML from Jinja2 templates.

Everything that came from a crawled page is untrusted: it is stripped of control
characters, bounded in length, HTML-escaped by Jinja2 autoescape, and only http(s) links
become hyperlinks. Headers use ``email.policy.default`` with ``utf8=False`` so that a
Korean or Chinese subject is sent as RFC 2047 encoded-words that every MUA decodes.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from newsmon.alerts.ledger import Story
from newsmon.alerts.rules import AlertRule, Mode
from newsmon.models import Article, utcnow

SNIPPET_CHARS = 280
MAX_DETAILED_STORIES = 25  # a digest shows these in full, the rest one line each
MAX_STORIES_PER_DIGEST = 2000  # bounds one mail (about 1 MB); more stories make more parts
MAX_COPIES_SHOWN = 8
MAX_TITLE_CHARS = 200
MAX_SUBJECT_TITLE_CHARS = 110
MAX_SUBJECT_CHARS = 200
MAX_TOPICS = 5
MAX_LINES = 8  # reasons / evidence items per story (the alert: 5 cues, 3 nearest examples)
MAX_LINE_CHARS = 160
MAX_URL_CHARS = 2000

_env = Environment(
    loader=PackageLoader("newsmon.alerts", "templates"),
    # Escape by default; only the plain-text template opts out.
    autoescape=select_autoescape(
        enabled_extensions=("html.j2",), disabled_extensions=("txt.j2",), default=True
    ),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def clean(value: str, limit: int) -> str:
    """One line of untrusted text: no control characters, collapsed spaces, at most ``limit``."""
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in value)
    line = " ".join(kept.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def header_text(value: str, limit: int) -> str:
    """Untrusted text for a mail header: one clean line in which nothing reads as an RFC 2047
    encoded word. ``email.policy.default`` decodes ``=?charset?b?...?=`` in an assigned value,
    so an encoded CR/LF would come back as a real line break, i.e. a forged header."""
    return clean(value, limit).replace("=?", "= ?")


def safe_url(url: str) -> str | None:
    """``url`` if it is a plain http(s) URL, else None (rendered as text, never as a link)."""
    if len(url) > MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    parts = urlsplit(url)
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def format_when(when: datetime | None) -> str:
    if when is None:
        return "date unknown"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    offset = when.utcoffset()
    zone = "UTC"
    if offset:
        minutes = int(offset.total_seconds()) // 60
        zone = f"UTC{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return f"{when:%Y-%m-%d %H:%M} {zone}"


@dataclass(frozen=True)
class Segment:
    text: str
    hit: bool


def snippet(text: str, terms: list[str], limit: int = SNIPPET_CHARS) -> list[Segment]:
    """A window of ``text`` around the first matched term, split into plain and hit segments."""
    flat = clean(text, len(text) + 1)
    # Longest first, so "export controls" wins over "export" at the same position.
    wanted = sorted({t for t in terms if t.strip()}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(t) for t in wanted), re.IGNORECASE) if wanted else None
    matches = list(pattern.finditer(flat)) if pattern else []
    start = max(0, matches[0].start() - limit // 3) if matches else 0
    end = min(len(flat), start + limit)
    segments: list[Segment] = [Segment("…", False)] if start else []
    pos = start
    for m in matches:
        if m.start() >= end:
            break
        if m.start() < pos:
            continue
        segments += [
            Segment(flat[pos : m.start()], False),
            Segment(flat[m.start() : min(m.end(), end)], True),
        ]
        pos = min(m.end(), end)
    segments.append(Segment(flat[pos:end], False))
    if end < len(flat):
        segments.append(Segment("…", False))
    return [s for s in segments if s.text]


@dataclass(frozen=True)
class ArticleView:
    title: str
    source: str
    published: str
    url: str | None
    shown_url: str
    lang: str

    @classmethod
    def of(cls, article: Article) -> ArticleView:
        link = article.canonical_url or article.url
        return cls(
            title=clean(article.title, MAX_TITLE_CHARS) or "(untitled)",
            source=clean(
                f"{article.source} ({article.site})"
                if article.source and article.site
                else article.source or article.site,
                80,
            )
            or "unknown source",
            published=format_when(article.published),
            url=safe_url(link),
            shown_url=clean(link, 120),
            lang=clean(article.lang or "?", 12),
        )


@dataclass(frozen=True)
class StoryView:
    article: ArticleView
    snippet: list[Segment]
    topics: list[str]
    score: str
    reasons: list[str]
    evidence: list[str]
    copies: list[ArticleView]
    more_copies: int
    # More coverage of a story mailed before: a line naming the new reports' outlets and
    # languages, and which of the listed reports are new.
    coverage: str = ""
    new: tuple[bool, ...] = ()

    @classmethod
    def of(cls, rule: AlertRule, story: Story) -> StoryView:
        first = story.primary
        others = story.articles[1:]
        fresh = [a for a in story.articles if a.id in story.new_ids]
        topics = sorted(first.topics, key=lambda t: t.score, reverse=True)[:MAX_TOPICS]
        return cls(
            article=ArticleView.of(first),
            snippet=snippet(first.text or first.title, rule.highlight_terms(first)),
            topics=[clean(f"{t.label} {t.score:.2f}", 60) for t in topics],
            score=f"{first.alert.score:.2f}",
            reasons=[clean(r, MAX_LINE_CHARS) for r in rule.explain(first)[:MAX_LINES]],
            evidence=[clean(e, MAX_LINE_CHARS) for e in rule.evidence(first)[:MAX_LINES]],
            copies=[ArticleView.of(a) for a in others[:MAX_COPIES_SHOWN]],
            more_copies=max(0, len(others) - MAX_COPIES_SHOWN),
            coverage=clean(
                f"More coverage of a story alerted before: {len(fresh)} new "
                f"{'report' if len(fresh) == 1 else 'reports'} from "
                f"{', '.join(dict.fromkeys(ArticleView.of(a).source for a in fresh))}"
                f" in {', '.join(sorted({a.lang or '?' for a in fresh}))}",
                MAX_LINE_CHARS * 2,
            )
            if story.more_coverage
            else "",
            new=tuple(a.id in story.new_ids for a in story.articles),
        )


def _mail_domain(address: str) -> str:
    domain = address.rpartition("@")[2]
    return domain if re.fullmatch(r"[A-Za-z0-9.-]+", domain) else "newsmon.invalid"


def message_id(rule: AlertRule, stories: list[Story], sender: str) -> str:
    """Deterministic, so a retried message carries the same Message-ID as the first try."""
    # More coverage: its new reports too, so the next coverage of a story is a message of its own.
    keys = [s.key + "".join(sorted(s.new_ids)) for s in stories]
    digest = hashlib.sha1("|".join([rule.name, *keys]).encode()).hexdigest()[:32]
    return f"<{digest}.{rule.name}@{_mail_domain(sender)}>"


def subject_for(
    rule: AlertRule, mode: Mode, count: int, views: list[StoryView], part: tuple[int, int], day: str
) -> str:
    if mode == "immediate":
        view = views[0]
        title = header_text(view.article.title, MAX_SUBJECT_TITLE_CHARS)
        extra = f" (+{len(view.copies) + view.more_copies} outlets)" if view.copies else ""
        return f"[newsmon] {title}{extra}"
    of = f" ({part[0]}/{part[1]})" if part[1] > 1 else ""
    return f"[newsmon] {rule.name} digest {day}: {count} {'story' if count == 1 else 'stories'}{of}"


def compose(
    rule: AlertRule,
    mode: Mode,
    stories: list[Story],
    *,
    sender: str,
    recipients: list[str],
    part: tuple[int, int] = (1, 1),
    now: datetime | None = None,
    subject_prefix: str = "",
) -> EmailMessage:
    """One alert email for ``stories`` (one story in immediate mode, a batch in a digest)."""
    now = now or utcnow()
    views = [StoryView.of(rule, s) for s in stories[:MAX_DETAILED_STORIES]]
    briefs = [ArticleView.of(s.primary) for s in stories[MAX_DETAILED_STORIES:MAX_STORIES_PER_DIGEST]]
    subject = subject_prefix + subject_for(rule, mode, len(stories), views, part, f"{now:%Y-%m-%d}")
    context = {
        "rule": rule,
        "mode": mode,
        "stories": views,
        "briefs": briefs,
        "total": len(views) + len(briefs),
        "subject": subject,
        "generated": format_when(now),
        "part": part,
        "retry": any(s.maybe_sent for s in stories),
    }
    msg = EmailMessage()  # policy.default, utf8=False: non-ASCII headers become encoded-words
    # Every header value is plain text built here; header_text keeps crawled text in it inert.
    msg["Subject"] = header_text(subject, MAX_SUBJECT_CHARS)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(rule, stories, sender)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Newsmon-Rule"] = rule.name
    msg.set_content(_env.get_template("alert.txt.j2").render(context))
    msg.add_alternative(_env.get_template("alert.html.j2").render(context), subtype="html")
    return msg


def batches(mode: Mode, stories: list[Story]) -> list[list[Story]]:
    """Immediate: one mail per story. Digest: one mail, or parts of MAX_STORIES_PER_DIGEST."""
    size = 1 if mode == "immediate" else MAX_STORIES_PER_DIGEST
    return [stories[i : i + size] for i in range(0, len(stories), size)]
