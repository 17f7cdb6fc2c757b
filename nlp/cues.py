"""Cues (lexicon groups, gazetteer kinds and ids, free phrases) found in a tokenized article:
the explainable evidence behind topic scores and alert decisions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from newsmon.models import Article
from newsmon.nlp.lang import detect_lang
from newsmon.nlp.lexicon import Entry, norm_key
from newsmon.nlp.match import Hit, PhraseMatcher, lexicon_matcher
from newsmon.nlp.tokenize import Tokenizers, get_tokenizers

# Body tokens this close to the start count as the lead: a news lead states the event, a
# mention further down is usually context ("... amid US export controls").
LEAD_TOKENS = 60


@dataclass
class TokenizedDoc:
    title: list[str]
    body: list[str]

    # Normalised once per document: every topic and alert feature scans these.
    @cached_property
    def title_keys(self) -> list[str]:
        return [norm_key(t) for t in self.title]

    @cached_property
    def body_keys(self) -> list[str]:
        return [norm_key(t) for t in self.body]

    @cached_property
    def lexicon_hits(self) -> list[tuple[str, Hit[Entry]]]:
        """(where, hit) of every watch term and entity; where is title, lead or body."""
        out = [("title", h) for h in lexicon_matcher().find(self.title)]
        out += [(_where(h.start), h) for h in lexicon_matcher().find(self.body)]
        return out


def _where(body_index: int) -> str:
    return "lead" if body_index < LEAD_TOKENS else "body"


@dataclass(frozen=True)
class CueHit:
    cue: str  # 'group:control', 'kind:chip', a lexicon id, or the phrase itself
    weight: float
    surface: str
    where: str  # title | lead | body


@dataclass
class CueSet:
    """Weighted cues of one topic or alert feature, as written in the data files:
    {groups: {control: 3}, kinds: {chip: 2}, entities: {org:tsmc: 1.5}, phrases: {관세: 3}}."""

    spec: Mapping[str, Mapping[str, float]]
    tokenizers: Tokenizers = field(default_factory=get_tokenizers)

    @cached_property
    def _phrases(self) -> PhraseMatcher[tuple[str, float]]:
        items = self.spec.get("phrases", {}).items()
        return PhraseMatcher((self.tokenizers.phrase_tokens(p), (p, float(w))) for p, w in items)

    def find(self, doc: TokenizedDoc) -> list[CueHit]:
        groups = self.spec.get("groups", {})
        kinds = self.spec.get("kinds", {})
        entities = self.spec.get("entities", {})
        hits: list[CueHit] = []
        for where, hit in doc.lexicon_hits:
            entry = hit.payload
            for cue, weight in (
                (f"group:{entry.group}", groups.get(entry.group)),
                (f"kind:{entry.kind}", kinds.get(entry.kind)),
                (entry.id, entities.get(entry.id)),
            ):
                if weight is not None:
                    hits.append(CueHit(cue, float(weight), hit.surface, where))
        phrase_hits = [("title", h) for h in self._phrases.find(doc.title, doc.title_keys)]
        phrase_hits += [(_where(h.start), h) for h in self._phrases.find(doc.body, doc.body_keys)]
        for where, h in phrase_hits:
            phrase, weight = h.payload
            hits.append(CueHit(phrase, weight, h.surface, where))
        return hits


def evidence(hits: Sequence[CueHit], limit: int = 8) -> list[str]:
    """Distinct matched surfaces, strongest cue first."""
    ranked = sorted(hits, key=lambda h: (h.where != "title", -h.weight))
    return list(dict.fromkeys(h.surface for h in ranked))[:limit]


def docs_for(articles: Sequence[Article], tokenizers: Tokenizers) -> list[TokenizedDoc]:
    """TokenizedDocs of articles. Analysed ones keep their tokens (title tokens then body
    tokens, as the pipeline stores them: the title is re-tokenized to find the split);
    the others are tokenized here."""
    langs = [a.lang or detect_lang(f"{a.title}\n{a.text}") or "en" for a in articles]
    titles = tokenizers.tokenize_many([a.title for a in articles], langs)
    todo = [i for i, a in enumerate(articles) if not a.tokens]
    fresh = dict(
        zip(
            todo,
            tokenizers.tokenize_many([articles[i].text for i in todo], [langs[i] for i in todo]),
            strict=True,
        )
    )
    docs: list[TokenizedDoc] = []
    for i, (article, title) in enumerate(zip(articles, titles, strict=True)):
        if i in fresh:
            body = fresh[i]
        elif article.tokens[: len(title)] == title:
            body = article.tokens[len(title) :]
        else:
            body = article.tokens
        docs.append(TokenizedDoc(title=title, body=body))
    return docs
