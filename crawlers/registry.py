"""The source registry: which outlets to crawl and how (YAML files -> ``Source`` models)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from newsmon.errors import NewsmonError

DEFAULT_SOURCES = Path(__file__).resolve().parent / "sources"


class ExtractRules(BaseModel):
    """Per-site selectors; each is CSS, or XPath when it starts with ``/`` or ``(``."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    body: str | None = None
    date: str | None = None
    author: str | None = None
    drop: list[str] = Field(default_factory=list)  # removed before the body is read


# How far an entry's URLs and pattern are known to be right: ``live-checked`` (only
# ``newsmon sources check`` sets it), ``public-reference`` (each URL and the pattern appear in a
# public reference, listed in ``evidence``) or ``guessed``.
Confidence = Literal["live-checked", "public-reference", "guessed"]


class Evidence(BaseModel):
    """Where a URL or the article pattern of an entry is seen in public."""

    model_config = ConfigDict(extra="forbid")

    supports: str  # the feed, sitemap or list-page URL, or "article_pattern"
    ref: str  # "github:owner/repo:path" or a stored page's URL
    seen: str | None = None  # the reference's date or commit, where known


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    lang: Literal["ko", "zh", "en"]
    feeds: list[str]
    label: str = ""  # human name, e.g. "ZDNet Korea"
    homepage: str | None = None
    sitemaps: list[str] = Field(default_factory=list)
    list_pages: list[str] = Field(default_factory=list)
    allowed_domains: list[str] = Field(default_factory=list)
    # Regex that article URLs found on list pages must match; None: a generic heuristic.
    article_pattern: str | None = None
    rate: float | None = Field(default=None, gt=0)  # requests per second to this outlet
    enabled: bool = True
    extract: ExtractRules | None = None
    confidence: Confidence = "guessed"
    evidence: list[Evidence] = Field(default_factory=list)
    # Real article URLs of this outlet: the article pattern must match each (tests check it).
    sample_articles: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", value):
            raise ValueError("must be a lowercase slug (letters, digits, - _ .)")
        return value

    @field_validator("feeds", "sitemaps", "list_pages")
    @classmethod
    def _check_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s) URL")
        return value

    @field_validator("article_pattern")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _fill_domains(self) -> Source:
        if not (self.feeds or self.sitemaps or self.list_pages):
            raise ValueError("needs at least one of feeds, sitemaps or list_pages")
        if not self.allowed_domains:
            self.allowed_domains = sorted(
                {host for url in self.start_urls if (host := urlsplit(url).hostname)}
            )
        return self

    @property
    def start_urls(self) -> list[str]:
        return [*self.feeds, *self.sitemaps, *self.list_pages, *([self.homepage] if self.homepage else [])]


def _entries(data: Any, origin: str) -> list[Any]:
    if data is None:
        return []
    if isinstance(data, dict) and "sources" in data:
        data = data["sources"]
    if not isinstance(data, list):
        raise NewsmonError(f"{origin}: expected a list of sources (or a mapping with a 'sources' list)")
    return data


def parse_sources(text: str, origin: str, variables: dict[str, str] | None = None) -> list[Source]:
    """Sources from YAML text; ``{key}`` placeholders are filled from ``variables``.

    Plain replace rather than ``str.format``: article_pattern regexes contain braces.
    """
    for key, value in (variables or {}).items():
        text = text.replace("{" + key + "}", value)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise NewsmonError(f"{origin}: not valid YAML: {exc}") from None
    sources = []
    for i, entry in enumerate(_entries(data, origin), start=1):
        label = f"entry #{i}"
        if isinstance(entry, dict) and entry.get("name"):
            label += f" ({entry['name']})"
        if not isinstance(entry, dict):
            raise NewsmonError(f"{origin}: {label}: must be a mapping of fields")
        try:
            sources.append(Source.model_validate(entry))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "(entry)"
            raise NewsmonError(f"{origin}: {label}: field {field}: {err['msg']}") from None
    return sources


def load_sources(path: Path | str | None = None, variables: dict[str, str] | None = None) -> list[Source]:
    """Sources from one YAML file or every ``*.yaml``/``*.yml`` in a folder (sorted by file name);
    None: the registry shipped with the crawler (``sources/``)."""
    path = Path(path) if path is not None else DEFAULT_SOURCES
    if not path.exists():
        raise NewsmonError(f"no such source registry: {path}")
    files = registry_files(path)
    sources: list[Source] = []
    where: dict[str, Path] = {}
    for file in files:
        for source in parse_sources(file.read_text(encoding="utf-8"), str(file), variables):
            if source.name in where:
                raise NewsmonError(
                    f"{file}: source {source.name!r} is already defined in {where[source.name]}"
                )
            where[source.name] = file
            sources.append(source)
    return sources


def select_sources(sources: list[Source], names: list[str] | None = None) -> list[Source]:
    """The named sources (all enabled ones when ``names`` is empty); an unknown name is an error."""
    if not names:
        return [s for s in sources if s.enabled]
    by_name = {s.name: s for s in sources}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise NewsmonError(f"unknown source(s): {', '.join(unknown)} (see `newsmon sources list`)")
    return [by_name[n] for n in names]


def registry_files(path: Path | str | None = None) -> list[Path]:
    """The YAML files a registry path stands for (a file, or every ``*.yaml``/``*.yml`` in a folder)."""
    path = Path(path) if path is not None else DEFAULT_SOURCES
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
    return [path]


def rewrite_entry(path: Path | str | None, source: Source) -> Path:
    """Replace the entry named ``source.name`` in its registry file with ``source`` (the rest of
    the file, comments included, stays as it is); the file it was in."""
    start = re.compile(rf"^  - name: {re.escape(source.name)}\s*$", re.M)
    for file in registry_files(path):
        text = file.read_text(encoding="utf-8")
        if not (found := start.search(text)):
            continue
        following = re.compile(r"^  - name: ", re.M).search(text, found.end())
        end = following.start() if following else len(text)
        fields = source.model_dump(mode="json", exclude_defaults=True)
        dumped = yaml.safe_dump([fields], allow_unicode=True, sort_keys=False, width=100)
        entry = "".join(f"  {line}\n" if line else "\n" for line in dumped.splitlines())
        file.write_text(
            text[: found.start()] + entry + ("\n" if following else "") + text[end:], encoding="utf-8"
        )
        return file
    raise NewsmonError(f"no entry named {source.name} in {path or DEFAULT_SOURCES}")
