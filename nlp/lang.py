"""Language identification with lingua, limited to the languages the pipeline handles."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lingua import LanguageDetector

SUPPORTED = ("ko", "zh", "en", "ja")
# Under this many letters lingua confuses CJK languages that share Han characters (a two-
# character headline like '华为' is Chinese or Japanese alike), so the crawler's hint wins.
MIN_LETTERS = 6
# Language is settled by the opening of a text; lingua's cost grows with length.
SAMPLE_CHARS = 600


@cache
def _detector() -> LanguageDetector:
    from lingua import Language, LanguageDetectorBuilder

    languages = (Language.KOREAN, Language.CHINESE, Language.ENGLISH, Language.JAPANESE)
    return LanguageDetectorBuilder.from_languages(*languages).build()


def detect_lang(text: str, hint: str | None = None) -> str | None:
    """ko, zh, en or ja; the hint (e.g. the crawler's lang) when the text is too short to tell."""
    sample = text[:SAMPLE_CHARS]
    if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
        return hint or (_lingua(sample) if sample.strip() else None)
    return _lingua(sample) or hint


def _lingua(sample: str) -> str | None:
    language = _detector().detect_language_of(sample)
    return language.iso_code_639_1.name.lower() if language else None


@cache
def _t2s() -> Callable[[str], str]:
    # opencc-purepy: OpenCC's dictionaries in pure Python (no native build). "tw2sp" converts
    # characters and Taiwan's vocabulary (晶片 -> 芯片, 軟體 -> 软件), which plain t2s keeps.
    from opencc_purepy import OpenCC

    return OpenCC("tw2sp").convert


def to_simplified(text: str) -> str:
    """Chinese text in simplified characters (traditional Hong Kong/Taiwan text converted), so
    one cue list, dictionary and model serve both scripts. Display and search keep the original."""
    return _t2s()(text) if text else text
