"""Finding lexicon entries and cue phrases in analysed tokens."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Generic, TypeVar

from newsmon.nlp.lexicon import Entry, case_sensitive, lexicon, norm_key

T = TypeVar("T")


@dataclass(frozen=True)
class Hit(Generic[T]):
    payload: T
    surface: str  # the matched text, for evidence
    start: int  # token index


class PhraseMatcher(Generic[T]):
    """Leftmost-longest, non-overlapping match of token sequences (keys are norm_key'ed, so
    matching ignores case, spaces and hyphens)."""

    def __init__(self, phrases: Iterable[tuple[Sequence[str], T]]) -> None:
        self._table: dict[tuple[str, ...], list[T]] = {}
        for tokens, payload in phrases:
            key = tuple(norm_key(t) for t in tokens)
            if key and all(key):
                self._table.setdefault(key, []).append(payload)
        # First token -> the phrase lengths starting with it, longest first: most tokens
        # start no phrase and cost one dict lookup (every document is scanned ~20 times).
        self._lengths: dict[str, list[int]] = {}
        for key in self._table:
            self._lengths.setdefault(key[0], []).append(len(key))
        for lengths in self._lengths.values():
            lengths.sort(reverse=True)

    def find(self, tokens: Sequence[str], keys: Sequence[str] | None = None) -> list[Hit[T]]:
        """Matches in tokens; keys (their norm_key, if already computed) saves the work."""
        keys = keys if keys is not None else [norm_key(t) for t in tokens]
        hits: list[Hit[T]] = []
        i = 0
        while i < len(keys):
            for n in self._lengths.get(keys[i], ()):
                payloads = self._table.get(tuple(keys[i : i + n])) if i + n <= len(keys) else None
                if payloads:
                    surface = " ".join(tokens[i : i + n])
                    hits.extend(Hit(p, surface, i) for p in payloads)
                    i += n
                    break
            else:
                i += 1
        return hits


def _exact_key(token: str) -> str:
    return "".join(unicodedata.normalize("NFKC", token).split())


class LexiconMatcher:
    """Watch terms and gazetteer entities in tokens. The tokenizers keep every alias in one
    token, so this is a lookup per token; short Latin aliases ('ARM', 'Meta') only match in
    their own casing, so the English word 'arm' is no company."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self._exact: dict[str, list[Entry]] = {}
        self._folded: dict[str, list[Entry]] = {}
        for entry in entries:
            for alias in entry.aliases:
                if case_sensitive(alias):
                    table, key = self._exact, _exact_key(alias)
                else:
                    table, key = self._folded, norm_key(alias)
                if entry not in table.setdefault(key, []):
                    table[key].append(entry)

    def find(self, tokens: Sequence[str]) -> list[Hit[Entry]]:
        hits: list[Hit[Entry]] = []
        for i, token in enumerate(tokens):
            entries = self._exact.get(_exact_key(token)) or self._folded.get(norm_key(token))
            hits.extend(Hit(e, token, i) for e in entries or ())
        return hits


@cache
def lexicon_matcher() -> LexiconMatcher:
    return LexiconMatcher(lexicon().values())
