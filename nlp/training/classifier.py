"""Train a transformers sequence classifier on labelled JSONL, and build the tech-relevance data.

Input JSONL, one object a line:

* single-label: ``{"text": "...", "label": "tech"}``
* multi-label:  ``{"text": "...", "labels": ["tech", "policy"]}`` (an empty list is allowed)

An optional ``"weight"`` (positive number, default 1) scales that row's loss, e.g. to balance
languages. Extra keys (``lang``, ``source``, ...) are kept for evaluation grouping and
otherwise ignored.

No checkpoint can be downloaded where this runs, so by default the model is a small BERT
trained from scratch, with a WordPiece tokenizer trained here on the same texts. Pass
``base_model=DIR`` (a local ``save_pretrained`` folder, e.g. a KLUE-RoBERTa or XLM-R
checkpoint copied onto the machine) to fine-tune that instead. Either way the result is
saved with ``save_pretrained`` (safetensors) so that
``AutoModelForSequenceClassification.from_pretrained(out)`` and
``AutoTokenizer.from_pretrained(out)`` load it offline.

The shipped model ``nlp/models/tech_relevance`` is reproduced with::

    newsmon train --relevance-from-shared ../shared/data --data var/relevance.jsonl \\
        --out nlp/models/tech_relevance --positive-weight 3 --epochs 4 --threads 1

which reads the labelled headlines in ../shared/data at run time (nothing of that data is
copied into the repository), trains, and scores the held-out splits.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsmon.nlp.training.data import SPECIAL_TOKENS, TECH, TrainError, read_jsonl

if TYPE_CHECKING:  # torch/transformers take seconds to import: only when training.
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# (done, total, message) — called as training advances; the CLI draws a rich progress bar.
ProgressFn = Callable[[int, int, str], None]


def train_tokenizer(
    texts: Iterable[str], *, vocab_size: int, max_length: int, han_chars: bool = True
) -> PreTrainedTokenizerBase:
    """A WordPiece tokenizer for Korean + Chinese (+ Latin) text, trained on ``texts``.

    NFKD splits Hangul syllables into jamo, so no Korean syllable is ever out of
    vocabulary; WordPiece then learns whole words/morphemes back from jamo. Han characters
    are isolated one per token (BERT's ``handle_chinese_chars``), the usual choice for
    Chinese. ``limit_alphabet`` leaves the rarest characters out so that [UNK] is trained.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = list(texts)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.NFKD(),
            # strip_accents would delete Hangul jamo's combining vowels: keep it off.
            normalizers.BertNormalizer(
                clean_text=True, handle_chinese_chars=han_chars, strip_accents=False, lowercase=True
            ),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    chars = Counter(c for t in texts for c in tok.normalizer.normalize_str(t))
    # Characters seen at least twice; singletons become [UNK] so its embedding learns something.
    alphabet = max(64, sum(1 for n in chars.values() if n >= 2))
    # Note: tokenizers breaks ties between equally frequent merges differently from one
    # process to the next, so two trainings on the same data give slightly different vocabularies.
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS, limit_alphabet=alphabet
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )


@dataclass
class Metrics:
    n: int
    positives: int
    accuracy: float
    precision: float
    recall: float
    f1: float


@dataclass
class TrainReport:
    out_dir: str
    labels: list[str]
    multi_label: bool
    base_model: str | None
    n_train: int
    epochs: int
    steps: int
    seconds: float
    final_loss: float
    n_params: int
    model_bytes: int
    config: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Metrics] = field(default_factory=dict)  # group -> metrics on eval_data

    def to_json(self) -> str:
        data = asdict(self)
        del data["out_dir"]  # saved inside that folder, which may be moved or committed
        return json.dumps(data, ensure_ascii=False, indent=2)


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length: far less padding, so far less CPU time."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for i in range(0, len(order), chunk):
        part = sorted(order[i : i + chunk], key=lambda j: lengths[j])
        batches.extend(part[k : k + batch_size] for k in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def _collate(ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return input_ids, mask


def train_classifier(
    data: Path,
    out: Path,
    *,
    epochs: int = 3,
    batch_size: int = 32,
    learning_rate: float | None = None,
    max_length: int = 64,
    base_model: str | None = None,
    vocab_size: int = 8000,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    han_chars: bool = True,
    positive_weight: float | None = None,
    seed: int = 13,
    threads: int | None = None,
    eval_data: Path | None = None,
    positive_label: str | None = None,
    metadata: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
) -> TrainReport:
    """Train and ``save_pretrained`` a sequence classifier into ``out``.

    From scratch (default): a BERT with ``hidden_size``/``num_layers``/``num_heads`` and a
    WordPiece vocabulary of ``vocab_size`` trained on ``data``. With ``base_model`` (a local
    folder; nothing is downloaded) that checkpoint is fine-tuned and the size options are
    ignored. ``positive_weight`` up-weights the loss of ``positive_label`` rows (rare
    classes: a tech headline is ~10% of the news), or, multi-label without a positive label,
    the positives of every label. ``eval_data`` (same JSONL format) is
    scored after training, per ``source`` key when rows carry one, and saved with the model
    in ``train_report.json``.
    """
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        get_linear_schedule_with_warmup,
    )

    started = time.monotonic()
    say = progress or (lambda done, total, msg: None)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    with _torch_threads(threads):  # restored afterwards: callers share the process
        ds = read_jsonl(Path(data))
        names = ds.label_names
        id2label = dict(enumerate(names))
        label2id = {n: i for i, n in id2label.items()}
        if positive_label is None and not ds.multi_label and TECH in label2id:
            positive_label = TECH
        if positive_label is not None and positive_label not in label2id:
            raise TrainError(f"positive label {positive_label!r} is not among {names}")
        problem_type = "multi_label_classification" if ds.multi_label else "single_label_classification"
        # Read back by TransformersBackend: which label is "relevance", how long inputs were.
        newsmon_meta = {
            "positive_label": positive_label,
            "relevance_label": positive_label,
            "max_length": max_length,
            **(metadata or {}),
        }

        say(0, 1, "tokenizer")
        if base_model:
            tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
            model: PreTrainedModel = AutoModelForSequenceClassification.from_pretrained(
                base_model,
                num_labels=len(names),
                id2label=id2label,
                label2id=label2id,
                problem_type=problem_type,
                ignore_mismatched_sizes=True,  # a new head for our labels
                local_files_only=True,
            )
            model.config.newsmon = newsmon_meta
            lr = learning_rate or 3e-5
        else:
            tokenizer = train_tokenizer(
                ds.texts, vocab_size=vocab_size, max_length=max_length, han_chars=han_chars
            )
            config = BertConfig(
                vocab_size=len(tokenizer),
                hidden_size=hidden_size,
                num_hidden_layers=num_layers,
                num_attention_heads=num_heads,
                intermediate_size=hidden_size * 4,
                max_position_embeddings=max(128, max_length),
                type_vocab_size=1,
                pad_token_id=tokenizer.pad_token_id,
                num_labels=len(names),
                id2label=id2label,
                label2id=label2id,
                problem_type=problem_type,
                newsmon=newsmon_meta,
            )
            model = BertForSequenceClassification(config)
            lr = learning_rate or 1e-3  # a small model from scratch wants a far larger step than fine-tuning

        encoded = tokenizer(ds.texts, truncation=True, max_length=max_length)["input_ids"]
        if ds.multi_label:
            target = torch.zeros((len(ds.texts), len(names)))
            for i, row in enumerate(ds.labels):
                for lab in row:
                    target[i, label2id[lab]] = 1.0
        else:
            target = torch.tensor([label2id[row[0]] for row in ds.labels], dtype=torch.long)

        weight = None
        if positive_weight and positive_label is not None:
            weight = torch.ones(len(names))
            weight[label2id[positive_label]] = positive_weight
        elif positive_weight and ds.multi_label:  # every label is a rare positive (topics)
            weight = torch.full((len(names),), float(positive_weight))
        loss_fn: torch.nn.Module = (
            torch.nn.BCEWithLogitsLoss(pos_weight=weight, reduction="none")
            if ds.multi_label
            else torch.nn.CrossEntropyLoss(weight=weight, reduction="none")
        )
        row_weight = torch.tensor(ds.weights)

        lengths = [len(x) for x in encoded]
        steps_per_epoch = math.ceil(len(encoded) / batch_size)
        total = steps_per_epoch * epochs
        no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
        groups = [
            {
                "params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
                "weight_decay": 0.01,
            },
            {
                "params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
                "weight_decay": 0.0,
            },
        ]
        optim = torch.optim.AdamW(groups, lr=lr)
        sched = get_linear_schedule_with_warmup(optim, max(1, total // 16), total)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

        model.train()
        step, ema = 0, None
        for epoch in range(epochs):
            for batch in _batches(lengths, batch_size, rng):
                input_ids, mask = _collate([encoded[i] for i in batch], pad_id)
                logits = model(input_ids=input_ids, attention_mask=mask).logits
                per_row = loss_fn(logits, target[batch])
                if per_row.dim() > 1:  # multi-label: mean over labels
                    per_row = per_row.mean(dim=1)
                w = row_weight[batch]
                loss = (per_row * w).sum() / w.sum()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optim.step()
                sched.step()
                optim.zero_grad(set_to_none=True)
                step += 1
                ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
                if step % 10 == 0 or step == total:
                    say(step, total, f"epoch {epoch + 1}/{epochs} loss {ema:.3f}")

        model.eval()
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out)  # safetensors
        tokenizer.save_pretrained(out)
        model_bytes = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
        report = TrainReport(
            out_dir=str(out),
            labels=names,
            multi_label=ds.multi_label,
            base_model=base_model,
            n_train=len(ds.texts),
            epochs=epochs,
            steps=step,
            seconds=round(time.monotonic() - started, 1),
            final_loss=round(ema or 0.0, 4),
            n_params=sum(p.numel() for p in model.parameters()),
            model_bytes=model_bytes,
            config={
                "batch_size": batch_size,
                "learning_rate": lr,
                "max_length": max_length,
                "vocab_size": len(tokenizer),
                "hidden_size": model.config.hidden_size,
                "num_layers": model.config.num_hidden_layers,
                "han_chars": han_chars,
                "positive_weight": positive_weight,
                "seed": seed,
            },
        )
        if eval_data is not None:
            say(total, total, "evaluating")
            report.eval = evaluate_classifier(model, tokenizer, eval_data, positive_label=positive_label)
        (out / "train_report.json").write_text(report.to_json() + "\n", encoding="utf-8")
        return report


def _predict_probs(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: list[str], *, batch_size: int = 64
) -> list[list[float]]:
    import torch

    multi = model.config.problem_type == "multi_label_classification"
    max_length = int((getattr(model.config, "newsmon", None) or {}).get("max_length") or 128)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch well
    probs: dict[int, list[float]] = {}
    with torch.inference_mode():
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            enc = tokenizer(
                [texts[i] for i in idx],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            enc.pop("token_type_ids", None)
            logits = model(**enc).logits
            p = torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)
            for i, row in zip(idx, p.tolist(), strict=True):
                probs[i] = row
    return [probs[i] for i in range(len(texts))]


def _metrics(gold: list[bool], pred: list[bool], correct: list[bool]) -> Metrics:
    tp = sum(g and p for g, p in zip(gold, pred, strict=True))
    fp = sum(p and not g for g, p in zip(gold, pred, strict=True))
    fn = sum(g and not p for g, p in zip(gold, pred, strict=True))
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    acc = sum(correct) / len(correct) if correct else 0.0
    return Metrics(len(gold), sum(gold), round(acc, 4), round(prec, 4), round(rec, 4), round(f1, 4))


def evaluate_classifier(
    model: PreTrainedModel | str | Path,
    tokenizer: PreTrainedTokenizerBase | None,
    data: Path,
    *,
    positive_label: str | None = None,
    group_key: str = "source",
    batch_size: int = 64,
) -> dict[str, Metrics]:
    """Accuracy and precision/recall/F1 of ``positive_label`` (micro over labels when
    multi-label or no positive label), overall (``"all"``) and per ``group_key`` value."""
    if isinstance(model, str | Path):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(str(model), local_files_only=True)
    assert tokenizer is not None
    model.eval()
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    ds = read_jsonl(Path(data), label_names=names)
    multi = model.config.problem_type == "multi_label_classification"
    if positive_label is None:
        positive_label = (getattr(model.config, "newsmon", None) or {}).get("positive_label")
    probs = _predict_probs(model, tokenizer, ds.texts, batch_size=batch_size)

    rows: list[tuple[str, list[bool], list[bool], bool]] = []  # group, gold, pred, all-correct
    for i, p in enumerate(probs):
        if multi:
            pred = {names[j] for j, v in enumerate(p) if v >= 0.5}
        else:
            pred = {names[max(range(len(p)), key=p.__getitem__)]}
        gold = set(ds.labels[i])
        if positive_label is not None:
            g, q = [positive_label in gold], [positive_label in pred]
        else:
            g, q = [n in gold for n in names], [n in pred for n in names]
        rows.append((str(ds.extra[i].get(group_key, "")), g, q, pred == gold))

    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups["all"].append(i)
        if row[0]:
            groups[row[0]].append(i)
    result: dict[str, Metrics] = {}
    for name, idx in groups.items():
        gold = [b for i in idx for b in rows[i][1]]
        pred = [b for i in idx for b in rows[i][2]]
        m = _metrics(gold, pred, [rows[i][3] for i in idx])
        m.n = len(idx)  # rows, even when multi-label counts label decisions
        result[name] = m
    return result
