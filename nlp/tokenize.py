"""Tokenizers per language, each fed the watch-term and gazetteer dictionaries.

Korean: Kiwi morphemes (content tags only, predicates as lemmas) through Kiwi's batch API.
Chinese: jieba. English and anything else: a plain word regex. In every language a watched
Latin or mixed-script alias ("Entity List", "ECCN 3A090", "美 상무부") comes out as one token.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from newsmon.nlp.lexicon import dictionary_words, norm_key, phrase_lang, protected_pattern, stopwords
from newsmon.scripts import HANGUL
from newsmon.settings import get_settings

if TYPE_CHECKING:
    from jieba import Tokenizer as JiebaTokenizer
    from kiwipiepy import Kiwi

# A pathological page (a 2 MB table dump) must not stall a batch; news bodies are far shorter.
MAX_CHARS = 30_000

# Kiwi tags kept: nouns, foreign words, Hanja, roots, and predicates (as lemmas).
_KIWI_NOUNS = ("NNG", "NNP", "SL", "SH", "XR")
_KIWI_PREDICATES = ("VV", "VA")
_WORD = re.compile(r"[^\W_]+(?:[\-.][^\W_]+)*")
_HAS_WORD_CHAR = re.compile(r"[^\W_]")


def kiwi_workers() -> int:
    """NEWSMON_KIWI_WORKERS, checked with the other settings (a bad value is one line).

    Kiwi >= 0.21: -1 = one worker thread per core; 0 = no worker thread, which also disables
    the batch API this module relies on, so 0 is read as 1."""
    return get_settings().kiwi_workers or 1


def split_protected(text: str) -> Iterator[tuple[bool, str]]:
    """(is_protected, piece) runs of text: protected aliases vs the gaps between."""
    pos = 0
    for m in protected_pattern().finditer(text):
        if m.start() > pos:
            yield False, text[pos : m.start()]
        yield True, m.group()
        pos = m.end()
    if pos < len(text):
        yield False, text[pos:]


class Tokenizers:
    """Lazily built tokenizers; one per process is enough (see get_tokenizers)."""

    def __init__(self, kiwi_num_workers: int | None = None) -> None:
        workers = kiwi_workers() if kiwi_num_workers is None else kiwi_num_workers
        self.kiwi_num_workers = workers or 1
        self._stop = stopwords()

    @cached_property
    def kiwi(self) -> Kiwi:
        from kiwipiepy import Kiwi

        kiwi = Kiwi(num_workers=self.kiwi_num_workers)
        for word in dictionary_words("hangul"):
            kiwi.add_user_word(word, "NNP")
        # Latin and mixed-script aliases through a regex rule: Kiwi splits 'H20' into
        # H/SL 20/SN otherwise, and user words cannot hold them.
        kiwi.add_re_word(protected_pattern(), "NNP")
        return kiwi

    @cached_property
    def _korean_alias_keys(self) -> tuple[frozenset[str], frozenset[str]]:
        """Keys of the aliases Kiwi may still split (its model can outvote a user word:
        '품목의 수출통제를' comes out as 수출/통제), and every prefix of those keys."""
        aliases = [a for a in dictionary_words("hangul") + dictionary_words("protected") if HANGUL.search(a)]
        keys = frozenset(norm_key(a) for a in aliases)
        return keys, frozenset(k[:n] for k in keys for n in range(1, len(k) + 1))

    @cached_property
    def jieba(self) -> JiebaTokenizer:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        tok = jieba.Tokenizer()
        tok.initialize()
        for word in dictionary_words("han"):
            # A high frequency makes the user word win over any split of it.
            tok.add_word(word, freq=1_000_000, tag="nz")
        return tok

    def _keep(self, token: str, lang: str) -> bool:
        return bool(_HAS_WORD_CHAR.search(token)) and norm_key(token) not in self._stop.get(lang, ())

    def _kiwi_tokens(self, text: str, analysed: Iterable[Any]) -> list[str]:
        spans: list[list[Any]] = []  # [form, start, end, is_noun]
        for tok in analysed:
            form: str = tok.form
            end = tok.start + tok.len
            if tok.tag == "XSN" and spans and spans[-1][3] and spans[-1][2] == tok.start and form != "들":
                # '무기'+'화', '희토'+'류': the derived noun is the word ('weaponisation', not
                # 'weapon'); the plural '들' is not.
                spans[-1][0] += form
                spans[-1][2] = end
            elif tok.tag.startswith(_KIWI_NOUNS):
                spans.append([form, tok.start, end, True])
            elif tok.tag.startswith(_KIWI_PREDICATES):
                spans.append([form + "다", tok.start, end, False])
        return [form for form in self._merge_aliases(text, spans) if self._keep(form, "ko")]

    def _merge_aliases(self, text: str, spans: list[list[Any]]) -> Iterator[str]:
        """Re-join runs of adjacent nouns that spell a watched alias (수출+통제 -> 수출통제).
        Only exact alias spellings join, so '산업'+'부문' never becomes the ministry 산업부."""
        keys, prefixes = self._korean_alias_keys
        i = 0
        while i < len(spans):
            best, key, j = i, "", i
            # Extend the run while it still spells the start of some alias; keep the longest hit.
            while j < len(spans) and spans[j][3] and (j == i or spans[j][1] - spans[j - 1][2] <= 1):
                key += norm_key(spans[j][0])
                if key not in prefixes:
                    break
                j += 1
                if key in keys:
                    best = j
            if best > i + 1:
                yield text[spans[i][1] : spans[best - 1][2]]
                i = best
            else:
                yield spans[i][0]
                i += 1

    def korean(self, texts: Sequence[str]) -> list[list[str]]:
        """Kiwi over many texts at once: the batch API spreads them over Kiwi's threads."""
        if not texts:
            return []
        clipped = [t[:MAX_CHARS] for t in texts]
        return [self._kiwi_tokens(t, r) for t, r in zip(clipped, self.kiwi.tokenize(clipped), strict=True)]

    def _with_protected(self, text: str, lang: str, cut: Callable[[str], Iterable[str]]) -> list[str]:
        out: list[str] = []
        for protected, piece in split_protected(text[:MAX_CHARS]):
            words = [piece] if protected else cut(piece)
            out.extend(w.strip() for w in words if self._keep(w, lang))
        return out

    def chinese(self, text: str) -> list[str]:
        # HMM off: its new-word guessing glues runs of single characters together ('对'+'镓'),
        # hiding one-character watch terms such as 镓 (gallium) and 锗 (germanium).
        return self._with_protected(text, "zh", lambda piece: self.jieba.cut(piece, HMM=False))

    def simple(self, text: str, lang: str = "en") -> list[str]:
        return self._with_protected(text, lang, lambda piece: (m.group() for m in _WORD.finditer(piece)))

    def tokenize_many(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[list[str]]:
        """Tokens for each text in its language; the Korean ones go to Kiwi as one batch."""
        out: list[list[str]] = [[] for _ in texts]
        korean = [i for i, lang in enumerate(langs) if lang == "ko"]
        for i, tokens in zip(korean, self.korean([texts[i] for i in korean]), strict=True):
            out[i] = tokens
        for i, (text, lang) in enumerate(zip(texts, langs, strict=True)):
            if lang == "zh":
                out[i] = self.chinese(text)
            elif lang != "ko":
                out[i] = self.simple(text, lang or "en")
        return out

    def tokenize(self, text: str, lang: str | None) -> list[str]:
        return self.tokenize_many([text], [lang])[0]

    def phrase_tokens(self, phrase: str) -> list[str]:
        """Tokens of a lexicon phrase, by the tokenizer of its script."""
        return self.tokenize(phrase, phrase_lang(phrase))


@cache
def get_tokenizers() -> Tokenizers:
    """The process-wide tokenizers: Kiwi and jieba load once, on first use."""
    return Tokenizers()
