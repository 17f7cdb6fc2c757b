"""Entities (canonical gazetteer ids) and keywords of a tokenized article."""

from __future__ import annotations

import re
from collections import Counter

from newsmon.nlp.cues import TokenizedDoc

KEYWORDS = 10
TITLE_WEIGHT = 3
# Tokens that make poor keywords: numbers, single Latin letters, lone Hangul syllables or
# Han characters (the '美', '中' of Korean headlines).
_POOR = re.compile(r"^(?:[\d.,%]+|[A-Za-z]|[\uac00-\ud7a3]|[\u4e00-\u9fff])$")


def entities_of(doc: TokenizedDoc) -> list[str]:
    """Gazetteer ids (org:..., chip:..., agency:..., model:...) in order of first mention."""
    ids = (hit.payload.id for _, hit in doc.lexicon_hits if hit.payload.kind != "term")
    return list(dict.fromkeys(ids))


def keywords_of(doc: TokenizedDoc, limit: int = KEYWORDS) -> list[str]:
    """Watch terms found (canonical names) first, then the most frequent content tokens,
    title tokens counting TITLE_WEIGHT times; entity aliases are left to `entities`."""
    terms = [hit.payload.name for _, hit in doc.lexicon_hits if hit.payload.kind == "term"]
    covered = {hit.surface for _, hit in doc.lexicon_hits}
    counts: Counter[str] = Counter()
    for tokens, weight in ((doc.title, TITLE_WEIGHT), (doc.body, 1)):
        for token in tokens:
            if token not in covered and not _POOR.match(token):
                counts[token] += weight
    # Counter.most_common keeps first-seen order among ties, so title words win ties.
    frequent = [token for token, n in counts.most_common() if n > 1]
    return list(dict.fromkeys([*terms, *frequent]))[:limit]
