"""Topic / relevance backend on a transformers sequence classifier (CPU by default).

The default model is ``nlp/models/tech_relevance``: a small BERT that this project trained
from scratch on labelled Korean and Chinese news headlines (see its README for data,
command and held-out scores). It answers "is this about tech/IT/science?".

Plugging in a pretrained multilingual checkpoint (production)
-------------------------------------------------------------
Nothing is downloaded at run time: models are read from a local folder, and a hub id is
only accepted with ``allow_hub=True``.

* Fine-tuned encoder (best accuracy): put a checkpoint such as ``klue/roberta-base``
  (Korean) or ``xlm-roberta-base`` (Korean + Chinese) in a folder, e.g. with
  ``huggingface-cli download xlm-roberta-base --local-dir /models/xlmr`` on a machine
  with network access, then fine-tune it on the same labelled data::

      newsmon train --relevance-from-shared ../shared/data --data var/rel.jsonl \\
          --base-model /models/xlmr --out /models/tech_relevance_xlmr --epochs 2 --batch-size 16

  and point the backend at ``/models/tech_relevance_xlmr``. Any
  ``AutoModelForSequenceClassification`` folder with a ``tech`` label works unchanged.
* Zero-shot, no training (``ZeroShotBackend``): an NLI model such as
  ``MoritzLaurer/mDeBERTa-v3-base-xnli-multilingual-nli-2mil7`` copied to a folder, with
  the topic labels written as hypotheses (``"This text is about {}."`` works across
  languages). Slower (one forward pass per label) and less accurate than a fine-tuned
  model, but new topics need no data.

Either runs on GPU with ``device="cuda"``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from newsmon.errors import ConfigError
from newsmon.models import Article, Topic

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "tech_relevance"
# The `transformers` topic backend's default: multi-label over the taxonomy (nlp/models/topics/README.md).
TOPIC_MODEL_DIR = Path(__file__).resolve().parent / "models" / "topics"
TextMode = Literal["title", "title+text"]


def article_text(article: Article, mode: TextMode = "title", max_chars: int = 400) -> str:
    """The text the classifier sees. The shipped model was trained on headlines, so by
    default the title (or, for an untitled page, the start of the body)."""
    title = article.title.strip()
    body = " ".join(article.text.split())[:max_chars]
    if mode == "title" and title:
        return title
    return f"{title} {body}".strip() if title else body


def _resolve(model: str | Path, allow_hub: bool) -> tuple[str, bool]:
    """(name for from_pretrained, local_files_only)."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"transformers model folder {path} has no config.json")
        return str(path), True
    if allow_hub and "/" in str(model) and not str(model).startswith((".", "/", "~")):
        return str(model), False  # explicitly allowed: may download into the HF cache
    raise ConfigError(
        f"transformers model {model!r}: no such folder (hub ids are only fetched with allow_hub=True)"
    )


class TransformersBackend:
    """Label probabilities, topics and a relevance score from a sequence classifier.

    The model is loaded on first use (once, thread-safe), so constructing the backend is
    free and a pipeline that never classifies never pays the import.
    """

    name = "transformers"

    def __init__(
        self,
        model_dir_or_hub_id: str | Path = DEFAULT_MODEL_DIR,
        device: str = "cpu",
        batch_size: int = 32,
        *,
        allow_hub: bool = False,
        max_length: int | None = None,
        text_mode: TextMode = "title",
        topic_threshold: float = 0.5,
        relevance_label: str | None = None,
        negative_labels: Sequence[str] = ("other",),
        cache_size: int = 4096,
    ) -> None:
        self.model_ref = str(model_dir_or_hub_id)
        self.device = device
        self.batch_size = batch_size
        self.allow_hub = allow_hub
        self.max_length = max_length
        self.text_mode: TextMode = text_mode
        self.topic_threshold = topic_threshold
        self._relevance_label = relevance_label
        self.negative_labels = set(negative_labels)
        self.evidence = [f"model:{Path(self.model_ref).name or self.model_ref}"]
        self._lock = threading.Lock()
        self._predict_lock = threading.Lock()
        self._model: PreTrainedModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._labels: list[str] = []
        self._multi = False
        # classify() and relevance() on the same batch should cost one forward pass.
        self._cache: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._cache_size = cache_size

    # -- loading

    def _load(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        if self._model is not None and self._tokenizer is not None:
            return self._model, self._tokenizer
        with self._lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForSequenceClassification, AutoTokenizer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # "Loading weights" bars are noise in a service
                name, local_only = _resolve(self.model_ref, self.allow_hub)
                tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
                model = AutoModelForSequenceClassification.from_pretrained(
                    name, local_files_only=local_only, dtype=torch.float32
                )
                model.to(self.device).eval()
                cfg = model.config
                self._labels = [cfg.id2label[i] for i in range(cfg.num_labels)]
                self._multi = cfg.problem_type == "multi_label_classification"
                meta = getattr(cfg, "newsmon", None) or {}
                if self.max_length is None:
                    limit = getattr(cfg, "max_position_embeddings", 512) or 512
                    self.max_length = min(
                        int(meta.get("max_length") or tokenizer.model_max_length or 512), limit
                    )
                if self._relevance_label is None:
                    self._relevance_label = meta.get("relevance_label") or meta.get("positive_label")
                self._tokenizer = tokenizer
                self._model = model
        assert self._model is not None and self._tokenizer is not None
        return self._model, self._tokenizer

    @property
    def labels(self) -> list[str]:
        self._load()
        return list(self._labels)

    @property
    def relevance_label(self) -> str:
        self._load()
        if self._relevance_label is None:
            positives = [lab for lab in self._labels if lab not in self.negative_labels]
            if len(positives) != 1:
                raise ConfigError(
                    f"model {self.model_ref} has labels {self._labels}: say which one is relevance"
                )
            self._relevance_label = positives[0]
        return self._relevance_label

    # -- inference

    def predict(self, texts: list[str]) -> list[dict[str, float]]:
        """label -> probability for each text (softmax, or sigmoid for multi-label models)."""
        import torch

        model, tokenizer = self._load()
        # One caller at a time: the cache is shared, and two threads would only split 2 cores.
        with self._predict_lock, torch.inference_mode():
            # Kept locally too: a batch larger than the cache must not evict its own results.
            known = {t: self._cache[t] for t in set(texts) if t in self._cache}
            todo = sorted(set(texts) - set(known), key=len)  # similar lengths batch well
            for k in range(0, len(todo), self.batch_size):
                chunk = todo[k : k + self.batch_size]
                enc = tokenizer(
                    chunk, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
                )
                if "token_type_ids" in enc and getattr(model.config, "type_vocab_size", 2) < 2:
                    enc.pop("token_type_ids")
                logits = model(**enc.to(self.device)).logits.float()
                probs = torch.sigmoid(logits) if self._multi else torch.softmax(logits, dim=-1)
                for text, row in zip(chunk, probs.cpu().tolist(), strict=True):
                    known[text] = dict(zip(self._labels, row, strict=True))
                    self._remember(text, known[text])
            return [dict(known[t]) for t in texts]

    def _remember(self, text: str, probs: dict[str, float]) -> None:
        self._cache[text] = probs
        self._cache.move_to_end(text)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _texts(self, articles: Sequence[Article]) -> list[str]:
        return [article_text(a, self.text_mode) for a in articles]

    def scores(self, articles: Sequence[Article]) -> list[dict[str, Topic]]:
        """Every label's probability as a Topic (the negative label ``other`` excluded),
        thresholds not applied; empty texts score nothing."""
        texts = self._texts(articles)
        probs = iter(self.predict([t for t in texts if t]))
        return [
            {
                lab: Topic(label=lab, score=round(p, 4), evidence=list(self.evidence))
                for lab, p in (next(probs) if text else {}).items()
                if lab not in self.negative_labels
            }
            for text in texts
        ]

    def classify(self, articles: Sequence[Article]) -> list[list[Topic]]:
        """Topics whose probability reaches ``topic_threshold``, best first."""
        return [
            sorted((t for t in row.values() if t.score >= self.topic_threshold), key=lambda t: -t.score)
            for row in self.scores(articles)
        ]

    @property
    def has_relevance(self) -> bool:
        """Whether the model has a relevance label (the topic model has not: the pipeline
        then takes relevance from the tech-relevance model)."""
        try:
            return bool(self.relevance_label)
        except ConfigError:
            return False

    def relevance(self, articles: Sequence[Article]) -> list[float]:
        """Probability of the relevance label (``tech``) for ``Article.relevance``; 0.0 for an
        article with neither title nor text."""
        texts = self._texts(articles)
        label = self.relevance_label
        probs = iter(self.predict([t for t in texts if t]))
        return [round(next(probs)[label], 4) if t else 0.0 for t in texts]

    def annotate(self, articles: Sequence[Article]) -> None:
        """Fill ``topics`` (added to any already there) and ``relevance`` in place."""
        for article, topics, rel in zip(
            articles, self.classify(articles), self.relevance(articles), strict=True
        ):
            known = {t.label for t in article.topics}
            article.topics.extend(t for t in topics if t.label not in known)
            article.relevance = rel


def topic_model_backend(
    model_dir_or_hub_id: str | Path = TOPIC_MODEL_DIR, **options: Any
) -> TransformersBackend:
    """The ``transformers`` topic backend: the shipped topic model unless told otherwise."""
    return TransformersBackend(model_dir_or_hub_id, **options)


class ZeroShotBackend:
    """Zero-shot topics from a local NLI checkpoint (e.g. mDeBERTa-v3 XNLI), no training.

    ``labels`` maps a topic label to the phrase put in ``hypothesis_template``, e.g.
    ``{"tech": "technology", "ai": "artificial intelligence"}``. Each label is scored
    independently (multi-label entailment), so scores do not sum to one.
    """

    name = "zero-shot"

    def __init__(
        self,
        model_dir_or_hub_id: str | Path,
        labels: Mapping[str, str],
        device: str = "cpu",
        batch_size: int = 8,
        *,
        allow_hub: bool = False,
        hypothesis_template: str = "This text is about {}.",
        relevance_label: str | None = None,
        topic_threshold: float = 0.5,
        text_mode: TextMode = "title",
    ) -> None:
        if not labels:
            raise ConfigError("zero-shot backend needs at least one label")
        self.model_ref = str(model_dir_or_hub_id)
        self.label_phrases = dict(labels)
        self.device = device
        self.batch_size = batch_size
        self.allow_hub = allow_hub
        self.hypothesis_template = hypothesis_template
        self.relevance_label = relevance_label or next(iter(self.label_phrases))
        self.topic_threshold = topic_threshold
        self.text_mode: TextMode = text_mode
        self.evidence = [f"zero-shot:{Path(self.model_ref).name or self.model_ref}"]
        self._lock = threading.Lock()
        self._pipe: Any = None

    def _load(self) -> Any:
        with self._lock:
            if self._pipe is None:
                from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                name, local_only = _resolve(self.model_ref, self.allow_hub)
                tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
                model = AutoModelForSequenceClassification.from_pretrained(name, local_files_only=local_only)
                self._pipe = pipeline(
                    "zero-shot-classification", model=model, tokenizer=tokenizer, device=self.device
                )
        return self._pipe

    def predict(self, texts: list[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        pipe = self._load()
        phrase_to_label = {v: k for k, v in self.label_phrases.items()}
        outputs = pipe(
            texts,
            candidate_labels=list(self.label_phrases.values()),
            hypothesis_template=self.hypothesis_template,
            multi_label=True,
            batch_size=self.batch_size,
        )
        if isinstance(outputs, dict):
            outputs = [outputs]
        return [
            {phrase_to_label[lab]: float(s) for lab, s in zip(o["labels"], o["scores"], strict=True)}
            for o in outputs
        ]

    def classify(self, articles: Sequence[Article]) -> list[list[Topic]]:
        texts = [article_text(a, self.text_mode) for a in articles]
        probs = iter(self.predict([t for t in texts if t]))
        result: list[list[Topic]] = []
        for text in texts:
            p = next(probs) if text else {}
            topics = [
                Topic(label=lab, score=round(s, 4), evidence=list(self.evidence))
                for lab, s in p.items()
                if s >= self.topic_threshold
            ]
            result.append(sorted(topics, key=lambda t: -t.score))
        return result

    def relevance(self, articles: Sequence[Article]) -> list[float]:
        texts = [article_text(a, self.text_mode) for a in articles]
        probs = iter(self.predict([t for t in texts if t]))
        return [round(next(probs)[self.relevance_label], 4) if t else 0.0 for t in texts]
