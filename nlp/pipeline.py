"""The analysis pipeline: language, tokens, entities, keywords, topics, relevance, the
export-control alert, the wire-copy cluster and the event story of each article.

Heavy models (Kiwi, jieba's dictionary, lingua) load once per process, on first use.
Articles are processed in batches so that Korean texts go through Kiwi's batch API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from itertools import islice
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from newsmon.errors import ConfigError
from newsmon.models import AlertDecision, Article, Topic
from newsmon.nlp.alert import AlertModel
from newsmon.nlp.cluster import StoryClusters
from newsmon.nlp.cues import TokenizedDoc
from newsmon.nlp.encoder import (
    EVENT_MODEL_FILE,
    EVENT_SOURCE_CHARS,
    embed,
    encode_events,
    event_input,
    lead_of,
)
from newsmon.nlp.entities import entities_of, keywords_of
from newsmon.nlp.lang import detect_lang, to_simplified
from newsmon.nlp.lexicon import data_fingerprint
from newsmon.nlp.signal import META_FILE, Signal, SignalModel, cue_vector, lexical_text
from newsmon.nlp.signal import MODEL_DIR as SIGNAL_MODEL_DIR
from newsmon.nlp.stories import MODEL_FILE as STORY_MODEL_FILE
from newsmon.nlp.stories import EventStories, report_of
from newsmon.nlp.tokenize import Tokenizers, get_tokenizers
from newsmon.nlp.topics import RulesBackend, TopicBackend, classify, get_backend
from newsmon.settings import Settings, get_settings

NLP_VERSION = "1"
BATCH_SIZE = 64


@cache
def analyzer_version() -> str:
    """Stored in Article.analyzer: code, tokenizer and data versions, so articles analysed
    by an older lexicon or tokenizer can be found and re-analysed."""
    return (
        f"newsmon-nlp/{NLP_VERSION} kiwi/{version('kiwipiepy')} jieba/{version('jieba')} "
        f"lexicon/{data_fingerprint()}"
    )


@dataclass(frozen=True)
class Prepared:
    """A batch after language identification and tokenization."""

    articles: list[Article]  # with lang and tokens set
    docs: list[TokenizedDoc]
    # What the sentence encoder reads (Chinese in simplified characters).
    titles: list[str]
    leads: list[str]
    bodies: list[str]  # the texts' starts, for the event encoder (stories)

    @property
    def lexical_texts(self) -> list[str]:
        """What the alert's lexical head reads, per article."""
        return [lexical_text(title, lead) for title, lead in zip(self.titles, self.leads, strict=True)]


def event_inputs(prepared: Prepared) -> list[str]:
    """What the event encoder reads, per article of the batch."""
    return [event_input(title, body) for title, body in zip(prepared.titles, prepared.bodies, strict=True)]


class RelevanceModel(Protocol):
    def relevance(self, articles: list[Article]) -> list[float]: ...


def default_relevance_model(model_dir: Path | None = None) -> RelevanceModel | None:
    """The tech-relevance classifier in ``model_dir`` (default: the shipped
    nlp/models/tech_relevance), loaded on first use; None if the folder holds no model."""
    from newsmon.nlp.transformers_backend import DEFAULT_MODEL_DIR, TransformersBackend

    folder = model_dir or DEFAULT_MODEL_DIR
    if not (folder / "config.json").is_file():
        if model_dir is not None:
            raise ConfigError(f"NEWSMON_RELEVANCE_MODEL: no model in {model_dir} (config.json missing)")
        return None
    return TransformersBackend(folder)


SIGNAL_BACKEND = "signal"


def default_signal_model() -> SignalModel | None:
    """The shipped signal heads (nlp/models/signal), or None where none were trained yet."""
    return SignalModel() if (SIGNAL_MODEL_DIR / META_FILE).is_file() else None


def settings_topic_backend(settings: Settings) -> TopicBackend | str:
    """NEWSMON_TOPIC_BACKEND, with NEWSMON_TOPIC_MODEL as the model of the transformers
    backend or of the ensemble's transformers member (an ensemble.json beside it is used)."""
    # Settings already checked that NEWSMON_TOPIC_MODEL holds a model.
    model = {"model_dir_or_hub_id": settings.topic_model} if settings.topic_model else {}
    if settings.topic_backend == "transformers":
        return get_backend("transformers", **model)
    if settings.topic_backend == "ensemble":
        return get_backend("ensemble", transformers=model)
    if settings.topic_backend == SIGNAL_BACKEND:
        return SIGNAL_BACKEND
    return get_backend(settings.topic_backend)


def settings_analyzer(settings: Settings) -> Analyzer:
    """The analyzer the pipeline and the DAGs use, configured from settings."""
    return Analyzer(
        topic_backend=settings_topic_backend(settings),
        clusters=StoryClusters(cluster_state_dir(settings)),
        stories=EventStories(cluster_state_dir(settings)),
        # Unset: "default", the signal heads' relevance head where they have one.
        relevance_model=default_relevance_model(settings.relevance_model)
        if settings.relevance_model
        else "default",
    )


class Analyzer:
    """One configured pipeline. Keep one per process: the models it uses are shared."""

    def __init__(
        self,
        topic_backend: TopicBackend | str = "rules",
        clusters: StoryClusters | None = None,
        tokenizers: Tokenizers | None = None,
        relevance_model: RelevanceModel | Literal["default"] | None = "default",
        signal: SignalModel | Literal["default"] | None = "default",
        stories: EventStories | Literal["default"] | None = "default",
    ) -> None:
        self.tokenizers = tokenizers or get_tokenizers()
        # The signal heads decide the alert (and, with the "signal" backend, the topics).
        self.signal = default_signal_model() if signal == "default" else signal
        if topic_backend == SIGNAL_BACKEND and self.signal is None:
            raise ConfigError(f"NEWSMON_TOPIC_BACKEND=signal: no signal model in {SIGNAL_MODEL_DIR}")
        # None: topics come from the signal heads.
        self.topics: TopicBackend | None = (
            None
            if topic_backend == SIGNAL_BACKEND
            else get_backend(topic_backend)
            if isinstance(topic_backend, str)
            else topic_backend
        )
        self.rules = (
            self.topics if isinstance(self.topics, RulesBackend) else RulesBackend(tokenizers=self.tokenizers)
        )
        # Article.relevance: the topic backend's own model if it has a relevance label (a
        # transformers backend on tech_relevance), else the given classifier; by default the
        # signal heads' relevance head (no torch needed), else the shipped tech-relevance BERT.
        scorer = getattr(self.topics, "relevance", None)
        if not getattr(self.topics, "has_relevance", True):
            scorer = None
        if not callable(scorer) and relevance_model == "default":
            with_head = self.signal is not None and self.signal.relevance_head is not None
            relevance_model = None if with_head else default_relevance_model()
        self.relevance_model = scorer if callable(scorer) else getattr(relevance_model, "relevance", None)
        # Without a persistent store, ids are still consistent within this analyzer's lifetime.
        self.clusters = clusters if clusters is not None else StoryClusters()
        # Event stories (nlp.stories); in memory unless given a persistent one, None: off.
        self.stories = (
            (EventStories() if STORY_MODEL_FILE.is_file() and EVENT_MODEL_FILE.is_file() else None)
            if stories == "default"
            else stories
        )
        self.alerts = AlertModel(tokenizers=self.tokenizers)

    def prepare(self, articles: list[Article]) -> Prepared:
        """Language, tokens and tokenized docs. Chinese is tokenized in simplified characters,
        so traditional Hong Kong and Taiwan text meets the same cues, dictionaries and models."""
        langs = [detect_lang(f"{a.title}\n{a.text}", hint=a.lang) for a in articles]
        simplified = [
            (to_simplified(a.title), to_simplified(a.text)) if lang == "zh" else (a.title, a.text)
            for a, lang in zip(articles, langs, strict=True)
        ]
        flat = self.tokenizers.tokenize_many(
            [part for pair in simplified for part in pair],
            [lang for lang in langs for _ in range(2)],
        )
        docs = [TokenizedDoc(title=flat[2 * i], body=flat[2 * i + 1]) for i in range(len(articles))]
        tokenized = [
            a.model_copy(update={"lang": lang, "tokens": doc.title + doc.body})
            for a, lang, doc in zip(articles, langs, docs, strict=True)
        ]
        return Prepared(
            tokenized,
            docs,
            [title for title, _ in simplified],
            # A headline-only item (some feeds) reads as its own lead, like the heads' training rows.
            [lead_of(text) or title for title, text in simplified],
            [text[:EVENT_SOURCE_CHARS] for _, text in simplified],
        )

    def signals(
        self,
        prepared: Prepared,
        topics: list[dict[str, Topic]],
        decisions: list[AlertDecision],
        embeddings: np.ndarray | None = None,
    ) -> list[Signal]:
        """The heads' view of a batch; ``topics`` and ``decisions``: the rules' scores of its docs;
        ``embeddings``: the batch's, where the caller has them already."""
        assert self.signal is not None
        rows = [
            cue_vector(self.alerts, self.rules, doc, topics=t, decision=d)
            for doc, t, d in zip(prepared.docs, topics, decisions, strict=True)
        ]
        cues = np.array(rows, dtype=np.float32)
        langs = [a.lang for a in prepared.articles]
        if embeddings is None:
            embeddings = embed(prepared.titles, prepared.leads)
        headline_only = [not a.text.strip() for a in prepared.articles]
        return self.signal.score(
            embeddings, cues.reshape(len(langs), -1), prepared.lexical_texts, langs, headline_only
        )

    def analyze_batch(self, articles: list[Article]) -> list[Article]:
        prepared = self.prepare(articles)
        tokenized, docs = prepared.articles, prepared.docs
        rule_alerts = [self.alerts.decide(doc) for doc in docs]
        rule_topics = [self.rules.score(doc) for doc in docs] if self.signal is not None else []
        # One encoder pass serves the signal heads and the event stories.
        embeddings = (
            embed(prepared.titles, prepared.leads)
            if self.signal is not None or self.stories is not None
            else None
        )
        story_vectors = (
            np.hstack([embeddings, encode_events(event_inputs(prepared))])
            if self.stories is not None and embeddings is not None
            else None
        )
        signals = (
            self.signals(prepared, rule_topics, rule_alerts, embeddings) if self.signal is not None else None
        )
        # Nothing to read, nothing to decide: the heads would only echo their bias.
        blank = [not (doc.title or doc.body) for doc in docs]
        if self.topics is None:
            assert self.signal is not None and signals is not None
            topics = [
                [] if empty else self.signal.topics(sig, scored)
                for sig, scored, empty in zip(signals, rule_topics, blank, strict=True)
            ]
        else:
            topics = classify(self.topics, tokenized, docs)
        # Relevance: the model's P(tech news), but never below how strongly the article
        # touches anything watched (best topic or alert score): the model learned "tech
        # section", and export-control news often runs in politics or world sections.
        given = (
            self.relevance_model(tokenized)
            if self.relevance_model is not None
            else [s.relevance or 0.0 for s in signals]
            if signals is not None and self.signal is not None and self.signal.relevance_head is not None
            else None
        )
        out: list[Article] = []
        for i, (article, doc, labels) in enumerate(zip(tokenized, docs, topics, strict=True)):
            alert = rule_alerts[i]
            if signals is not None and not blank[i]:
                assert self.signal is not None
                alert = self.signal.alert_decision(signals[i], alert.evidence)
            relevance = max([t.score for t in labels] + [alert.score] + ([given[i]] if given else []))
            entities, keywords = entities_of(doc), keywords_of(doc)
            cluster = self.clusters.assign(article.id, article.title, article.text)
            story = None
            if self.stories is not None:
                assert story_vectors is not None
                report = report_of(
                    article.id,
                    article.lang,
                    article.published or article.first_seen or article.fetched,
                    story_vectors[i],
                    entities,
                    keywords,
                    prepared.titles[i],
                    article.text,
                )
                story = self.stories.assign(report, copy_of=cluster if cluster != article.id else None)
            out.append(
                article.model_copy(
                    update={
                        "entities": entities,
                        "keywords": keywords,
                        "topics": labels,
                        "relevance": round(relevance, 4),
                        "alert": alert,
                        "cluster_id": cluster,
                        "story_id": story,
                        "analyzer": analyzer_version(),
                    }
                )
            )
        return out

    def analyze(
        self,
        articles: Iterable[Article],
        progress: Callable[[int], None] | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> Iterator[Article]:
        it = iter(articles)
        try:
            while batch := list(islice(it, batch_size)):
                yield from self.analyze_batch(batch)
                if progress is not None:
                    progress(len(batch))
        finally:
            # Once per run, not per batch: the state files hold the whole indexes.
            self.clusters.save()
            if self.stories is not None:
                self.stories.save()


def cluster_state_dir(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).layout.clusters


@cache
def default_analyzer() -> Analyzer:
    """The settings' analyzer (``settings_analyzer``), one per process; story clusters
    persisted under NEWSMON_DATA_DIR/clusters, so the same story keeps its cluster id from
    one run to the next."""
    return settings_analyzer(get_settings())


def analyze_articles(
    articles: Iterable[Article],
    progress: Callable[[int], None] | None = None,
    *,
    analyzer: Analyzer | None = None,
) -> Iterator[Article]:
    """Analysed copies of the articles, in order, batched. progress(n) is called after each
    batch with the number of articles it finished (fits rich's Progress.advance). Without an
    analyzer, the process-wide default_analyzer() is used."""
    return (analyzer or default_analyzer()).analyze(articles, progress)


def analyze_article(article: Article, *, analyzer: Analyzer | None = None) -> Article:
    return (analyzer or default_analyzer()).analyze_batch([article])[0]
