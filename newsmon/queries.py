"""What an alert rule matches, and one page of matches: the hand-off between the index stage,
which runs the query, and the alert stage, which records and mails what it finds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from newsmon.models import Article

_LANG_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")


def clean_list(values: list[str], what: str) -> list[str]:
    cleaned = [v.strip() for v in values]
    if any(not v for v in cleaned):
        raise ValueError(f"empty {what}")
    # Order-preserving de-duplication keeps the YAML order in explanations.
    return list(dict.fromkeys(cleaned))


class RuleQuery(BaseModel):
    """Criteria are ANDed; the values inside one list are ORed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    export_controls: bool | None = None
    min_score: float = Field(default=0.0, ge=0.0)
    topics: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    terms: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    sites: list[str] = Field(default_factory=list)

    @field_validator("topics", "entities", "terms", "sites")
    @classmethod
    def _non_empty(cls, values: list[str]) -> list[str]:
        return clean_list(values, "value")

    @field_validator("languages")
    @classmethod
    def _languages(cls, values: list[str]) -> list[str]:
        values = clean_list([v.lower() for v in values], "language")
        for lang in values:
            if not _LANG_RE.match(lang):
                raise ValueError(f"{lang!r} is not a language code such as ko, zh or en")
        return values

    def summary(self) -> str:
        """The criteria in one line, as written in the rules file."""
        parts = (
            [] if self.export_controls is None else [f"export_controls={str(self.export_controls).lower()}"]
        )
        parts += [f"min_score>={self.min_score:g}"] if self.min_score else []
        for name in ("topics", "entities", "terms", "languages", "sites"):
            if values := getattr(self, name):
                parts.append(f"{name}={'|'.join(values)}")
        return ", ".join(parts)

    @model_validator(mode="after")
    def _not_everything(self) -> RuleQuery:
        # A rule without criteria would mail every indexed article: almost surely a typo.
        if (
            self.export_controls is None
            and not self.min_score
            and not (self.topics or self.entities or self.terms or self.languages or self.sites)
        ):
            raise ValueError("needs at least one criterion (export_controls, topics, terms, ...)")
        return self


@dataclass(frozen=True)
class MatchPage:
    """One page of matches, oldest first, and how far the window is handled after it.

    ``handled_until``: every matching document indexed at or before it is in this page or an
    earlier one (the last hit's time less one millisecond, because more documents with that
    same time may be on the next page).
    """

    articles: list[Article]
    handled_until: datetime
