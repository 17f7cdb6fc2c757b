"""The curated data files (watch terms, gazetteer, stopwords, taxonomy, alert rules) and
the text normalisation every matcher shares."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from newsmon.scripts import HAN, HANGUL

DATA_DIR = Path(__file__).resolve().parent / "data"

_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")
_KEY_DROP = re.compile(r"[\s\-_·・.]+")


def norm_key(token: str) -> str:
    """Matching key of a token or alias: NFKC, case-folded, without spaces and hyphens,
    so 'Entity List', 'entity-list' and Kiwi's 'entity list' all meet."""
    return _KEY_DROP.sub("", unicodedata.normalize("NFKC", token).casefold())


def script_of(text: str) -> str:
    """Which tokenizer dictionary gets an alias. 'protected': any ASCII letter or digit,
    Hangul mixed with Han ('美 상무부'), or several words ('거래 제한 명단'): Kiwi user words do
    not hold these reliably (a spaced phrase of known nouns loses to them) and jieba's
    cannot hold them at all, so they go through one regex in every language. Else 'hangul'
    (Kiwi user word) or 'han' (jieba user word)."""
    hangul, han = bool(HANGUL.search(text)), bool(HAN.search(text))
    if _ASCII_ALNUM.search(text) or (hangul and han) or len(text.split()) > 1:
        return "protected"
    if hangul:
        return "hangul"
    return "han" if han else "other"


def phrase_lang(text: str) -> str:
    """Language whose tokenizer reads a lexicon phrase: Hangul -> ko, Han -> zh, else en."""
    if HANGUL.search(text):
        return "ko"
    return "zh" if HAN.search(text) else "en"


@dataclass(frozen=True)
class Entry:
    """One watch term or gazetteer entity: canonical id 'kind:slug' and its aliases."""

    id: str
    name: str
    aliases: tuple[str, ...]
    group: str = ""  # watch terms only: 'control' or 'material'

    @property
    def kind(self) -> str:
        return self.id.split(":", 1)[0]


@cache
def load_data(name: str) -> Any:
    with (DATA_DIR / name).open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _entries(section: Mapping[str, Mapping[str, Any]]) -> Iterable[Entry]:
    for entry_id, spec in section.items():
        aliases = tuple(dict.fromkeys(str(a) for a in spec["aliases"]))
        yield Entry(id=entry_id, name=str(spec["name"]), aliases=aliases, group=spec.get("group", ""))


@cache
def lexicon() -> dict[str, Entry]:
    """All watch terms and gazetteer entities by id (one namespace: ids must not clash)."""
    out: dict[str, Entry] = {}
    for entry in (
        *_entries(load_data("watch_terms.yaml")["terms"]),
        *_entries(load_data("gazetteer.yaml")["entities"]),
    ):
        if entry.id in out:
            raise ValueError(f"duplicate lexicon id {entry.id}")
        out[entry.id] = entry
    return out


def dictionary_words(script: str) -> list[str]:
    """Aliases of one script that tokenizers must keep whole, longest first."""
    words = {a for e in lexicon().values() for a in e.aliases if script_of(a) == script}
    return sorted(words, key=lambda w: (-len(w), w))


def case_sensitive(alias: str) -> bool:
    # Short single words ('Arm', 'Meta', 'BIS', 'H20') are ordinary English words or
    # acronyms in other casings; longer names and phrases are matched in any case.
    return " " not in alias and len(alias) < 6


def _alias_regex(alias: str) -> str:
    # Parts stay apart: "수출 통제" must not fire inside "수출통제법" (that is a word of its own).
    body = r"[\s\-]+".join(re.escape(part) for part in alias.split())
    return f"(?:{body})" if case_sensitive(alias) else f"(?i:{body})"


@cache
def protected_pattern() -> re.Pattern[str]:
    """One regex over every protected alias (see script_of). ASCII lookarounds instead of \\b
    because a Hangul particle glued to 'H20' ('H20과') must not block the match."""
    alternation = "|".join(_alias_regex(a) for a in dictionary_words("protected"))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternation})(?![A-Za-z0-9])")


@cache
def stopwords() -> dict[str, frozenset[str]]:
    data = load_data("stopwords.yaml")
    return {lang: frozenset(norm_key(w) for w in words) for lang, words in data.items()}


@cache
def data_fingerprint() -> str:
    """Short hash of the data files: part of Article.analyzer, so a lexicon edit is visible
    as a new analyzer version and stored articles can be re-analysed."""
    digest = hashlib.sha1()
    for path in sorted(DATA_DIR.glob("*.yaml")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]
