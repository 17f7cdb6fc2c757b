"""Alert rules: which newly indexed articles should reach whom, and how often.

Rules live in a YAML data file (``rules.yaml`` next to this module by default) so that
analysts can change them without touching code; ``load_rules`` validates the whole file
up front and reports the first problem as one line naming the rule and the field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from newsmon.errors import NewsmonError
from newsmon.models import Article
from newsmon.queries import RuleQuery, clean_list
from newsmon.settings import Settings

DEFAULT_RULES = Path(__file__).with_name("rules.yaml")


def rules_path(settings: Settings) -> Path:
    """NEWSMON_ALERT_RULES if set, else the packaged default rules."""
    return settings.alert_rules or DEFAULT_RULES


Mode = Literal["immediate", "digest"]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class AlertRuleError(NewsmonError):
    """The rules file is missing or invalid."""


class AlertRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    mode: Mode = "immediate"
    query: RuleQuery
    # Empty means settings.alert_to (NEWSMON_ALERT_TO).
    recipients: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # The name is a ledger key and goes into mail headers: keep it plain.
        if not _NAME_RE.match(value):
            raise ValueError("must be lowercase letters, digits, '-' or '_' (at most 64)")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, values: list[str]) -> list[str]:
        values = clean_list(values, "recipient")
        for addr in values:
            if "@" not in addr or any(c.isspace() or c in ",<>" for c in addr):
                raise ValueError(f"{addr!r} is not a plain email address")
        return values

    def explain(self, article: Article) -> list[str]:
        """Why ``article`` matched, one short line per satisfied criterion."""
        q = self.query
        reasons: list[str] = []
        if q.export_controls is not None or q.min_score:
            reasons.append(
                f"export-control decision: {'yes' if article.alert.export_controls else 'no'}"
                f" (score {article.alert.score:.2f})"
            )
        reasons += [f"topic {t.label} ({t.score:.2f})" for t in article.topics if t.label in q.topics]
        reasons += [f"entity {e}" for e in article.entities if e in q.entities]
        haystack = f"{article.title}\n{article.text}".casefold()
        reasons += [f"term “{t}”" for t in q.terms if t.casefold() in haystack]
        if q.languages:
            reasons.append(f"language {article.lang}")
        if q.sites:
            reasons.append(f"site {article.site or article.source}")
        return reasons

    def evidence(self, article: Article) -> list[str]:
        """The NLP evidence behind this match (alert decision and matched topics)."""
        found = list(article.alert.evidence) if self.query.export_controls or self.query.min_score else []
        for topic in article.topics:
            if topic.label in self.query.topics:
                found += topic.evidence
        return list(dict.fromkeys(found))

    def highlight_terms(self, article: Article) -> list[str]:
        """Strings worth highlighting in the snippet: rule terms, entities and short evidence."""
        # NLP evidence reads "cue kind: matched text"; only the text is in the article.
        # Long items are sentences, not terms: highlighting them would swamp the snippet.
        cues = [e.rpartition(": ")[2] for e in self.evidence(article)]
        return list(
            dict.fromkeys([*self.query.terms, *self.query.entities, *(c for c in cues if len(c) <= 40)])
        )


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[dict[str, Any]]


def _field_path(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc) or "(rule)"


def _message(err: ErrorDetails) -> str:
    return err["msg"].removeprefix("Value error, ")


def parse_rules(data: Any, origin: str = "alert rules") -> list[AlertRule]:
    """Validate already-loaded rule data; see ``load_rules``."""
    try:
        raw_rules = _RulesFile.model_validate(data).rules
    except ValidationError as exc:
        err = exc.errors()[0]
        raise AlertRuleError(f"{origin}: {_field_path(err['loc'])}: {_message(err)}") from None
    rules: list[AlertRule] = []
    for position, raw in enumerate(raw_rules, start=1):
        label = f"'{raw['name']}'" if isinstance(raw.get("name"), str) else f"#{position}"
        try:
            rule = AlertRule.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise AlertRuleError(
                f"{origin}: rule {label}: field '{_field_path(err['loc'])}': {_message(err)}"
            ) from None
        if any(r.name == rule.name for r in rules):
            raise AlertRuleError(f"{origin}: rule {label}: field 'name': used by another rule")
        rules.append(rule)
    if not rules:
        raise AlertRuleError(f"{origin}: no rules defined")
    return rules


def load_rules(path: Path = DEFAULT_RULES) -> list[AlertRule]:
    """Read and validate a rules file; any problem raises a one-line ``AlertRuleError``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AlertRuleError(f"alert rules: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where else ""
        raise AlertRuleError(f"alert rules {path}: not valid YAML{at}") from None
    return parse_rules(data, origin=f"alert rules {path}")
