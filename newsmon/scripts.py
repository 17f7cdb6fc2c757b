"""Writing systems: which script a text is in, and the languages newsmon tells apart by it.

One definition for the crawler (page language, text weight), the index (which analyzer suits a
query) and the NLP stage (dictionary keys).
"""

from __future__ import annotations

import re

HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")  # syllables, jamo, compatibility jamo
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")  # unified (and extension A), compatibility
KANA = re.compile(r"[\u3040-\u30ff]")
LATIN = re.compile(r"[A-Za-z]")
CJK = re.compile(
    r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff]"
)
CJK_LANGS = ("ko", "zh", "ja")


def lang_by_script(text: str) -> str | None:
    """ko/zh/ja from the script mix, "en" for Latin text, None if there are no letters.

    Script counts are enough to tell these apart (a page's language, a headline's); finer
    language identification is the NLP stage's (``nlp.lang.detect_lang``, lingua).
    """
    sample = text[:5000]
    hangul, han = len(HANGUL.findall(sample)), len(HAN.findall(sample))
    kana, latin = len(KANA.findall(sample)), len(LATIN.findall(sample))
    cjk = hangul + han + kana
    if cjk and cjk * 3 >= latin * 0.5:  # one CJK character ~ a word: compare with Latin letters / 6
        if hangul >= 0.3 * cjk:
            return "ko"
        if kana >= 0.05 * cjk:
            return "ja"
        return "zh"
    return "en" if latin else None


def is_cjk_lang(lang: str | None) -> bool:
    return lang in CJK_LANGS
