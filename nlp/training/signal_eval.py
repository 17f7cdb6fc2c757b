"""Score every backend on the signal corpus's evaluation split (``newsmon signal eval``), next to
a naive keyword baseline, and the ``newsmon signal`` commands. Nothing here fits or chooses:
the evaluation split is only scored."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from newsmon.errors import NewsmonError
from newsmon.nlp.pipeline import Analyzer
from newsmon.nlp.signal import (
    ALERT,
    META_FILE,
    MODEL_DIR,
    SignalModel,
)
from newsmon.nlp.training.signal import (
    CORPUS_DIR,
    LANGS,
    TOPICS,
    Progress,
    SignalItem,
    corpus_fingerprint,
    featurize,
    load_corpus,
    prf,
    targets,
    train,
)

# ------------------------------------------------------------------------------ evaluation

# A naive keyword baseline, the kind of list an analyst would type into a news alert service.
KEYWORDS: dict[str, tuple[str, ...]] = {
    ALERT: (
        "export control",
        "export ban",
        "entity list",
        "出口管制",
        "实体清单",
        "實體清單",
        "禁止出口",
        "出口禁令",
        "수출통제",
        "수출 통제",
        "수출규제",
        "수출 규제",
        "수출금지",
    ),
    "export_controls": (
        "export control",
        "entity list",
        "出口管制",
        "实体清单",
        "實體清單",
        "수출통제",
        "수출 통제",
        "수출규제",
    ),
    "trade_policy": ("tariff", "trade war", "关税", "關稅", "贸易战", "貿易戰", "관세", "무역"),
    "ai_models": (
        "AI model",
        "chatbot",
        "LLM",
        "大模型",
        "人工智能",
        "人工智慧",
        "AI 모델",
        "인공지능",
        "생성형",
    ),
    "semiconductors": ("chip", "semiconductor", "芯片", "晶片", "半导体", "半導體", "반도체", "칩"),
    "compute_infrastructure": (
        "data center",
        "GPU",
        "cloud",
        "数据中心",
        "資料中心",
        "算力",
        "데이터센터",
        "클라우드",
    ),
    "funding_business": (
        "revenue",
        "earnings",
        "funding",
        "IPO",
        "营收",
        "營收",
        "融资",
        "融資",
        "매출",
        "투자",
        "상장",
    ),
}


def _label_matrix(found: Sequence[set[str]]) -> np.ndarray:
    return np.array([[label in labels for label in TOPICS] for labels in found], dtype=bool).reshape(
        -1, len(TOPICS)
    )


def keyword_decisions(items: Sequence[SignalItem]) -> np.ndarray:
    labels = [ALERT, *TOPICS]
    rows = []
    for item in items:
        text = f"{item.title}\n{item.text}".lower()
        rows.append([any(k.lower() in text for k in KEYWORDS[label]) for label in labels])
    return np.array(rows, dtype=bool)


def _scores(decisions: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Alert P/R/F1, export_controls F1, topic macro-F1 and per-topic P/R/F1."""
    per_topic = {label: prf(decisions[:, j + 1], truth[:, j + 1]) for j, label in enumerate(TOPICS)}
    return {
        "alert": dict(zip(("precision", "recall", "f1"), prf(decisions[:, 0], truth[:, 0]), strict=True)),
        "export_controls_f1": per_topic["export_controls"][2],
        "topic_macro_f1": round(float(np.mean([v[2] for v in per_topic.values()])), 4),
        "topics": {k: dict(zip(("precision", "recall", "f1"), v, strict=True)) for k, v in per_topic.items()},
    }


def flagged(
    signal: SignalModel, probs: np.ndarray, langs: Sequence[str], headlines: bool = False
) -> np.ndarray:
    """The alert decisions of the shipped heads: each article's probability (``probs``, from
    ``SignalModel.probabilities``) against its language's threshold."""
    return probs[:, 0] >= np.array([signal.alert_threshold(lang, headlines) for lang in langs])


def false_alarms_by_kind(items: Sequence[SignalItem], flags: np.ndarray) -> dict[str, dict[str, float]]:
    """Per language and overall: how often the alert flags each kind of negative, and the
    precision it would have with the split's pooled mix of them.

    The kinds: reports of an action event that the guide labels no alert (reactions,
    explainers, market pieces of that action: their event id is ``evt:``), and every other
    negative. Precision depends on how many of each the split holds per alert, and that mix is
    the corpus's, not the news's: it differs by language. With recall R and flag rates f_same,
    f_other, the pooled mix (rho_same, rho_other negatives per alert) gives
    R / (R + rho_same * f_same + rho_other * f_other)."""
    truth = np.array([item.alert for item in items], dtype=bool)
    same = np.array([item.event.startswith("evt:") for item in items]) & ~truth
    other = ~truth & ~same
    langs = np.array([item.lang for item in items])
    rho_same, rho_other = same.sum() / max(1, truth.sum()), other.sum() / max(1, truth.sum())
    out: dict[str, dict[str, float]] = {}
    for scope in (*LANGS, "all"):
        keep = np.ones(len(items), dtype=bool) if scope == "all" else langs == scope
        alerts, found = int((truth & keep).sum()), int((truth & keep & flags).sum())
        row: dict[str, float] = {"alerts": alerts, "alerts_flagged": found}
        for kind, mask in (("same_event", same & keep), ("other", other & keep)):
            row[f"{kind}_negatives"] = int(mask.sum())
            row[f"{kind}_flagged"] = int((mask & flags).sum())
        recall = found / max(1, alerts)
        f_same = row["same_event_flagged"] / max(1, row["same_event_negatives"])
        f_other = row["other_flagged"] / max(1, row["other_negatives"])
        denominator = recall + rho_same * f_same + rho_other * f_other
        row["precision_at_pooled_mix"] = round(recall / denominator, 4) if denominator else 1.0
        out[scope] = row
    return out


def evaluate(
    corpus: Path = CORPUS_DIR,
    model: Path = MODEL_DIR,
    *,
    analyzer: Analyzer | None = None,
    with_transformers: bool = True,
    headlines: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score every backend on the evaluation split (``headlines``: its headlines alone), per
    language and overall."""
    from newsmon.nlp.topics import classify, get_backend

    say = progress or (lambda _line: None)
    items = [item.headline() if headlines else item for item in load_corpus(corpus) if item.holdout]
    signal = SignalModel(model)
    analyzer = analyzer or Analyzer(topic_backend="rules", relevance_model=None, signal=None)
    feats = featurize(items, analyzer, say)
    truth = targets(items).astype(bool)
    probs = signal.probabilities(feats.embeddings, feats.cues, feats.texts)
    alert = flagged(signal, probs, feats.langs, headlines)
    topic_thr = np.array([signal.meta["topic_thresholds"][t] for t in TOPICS])
    backends: dict[str, np.ndarray] = {
        "signal": np.column_stack([alert, probs[:, 1:] >= topic_thr]),
        "rules": np.column_stack([feats.rules_alert, _label_matrix(feats.rules_topics)]),
        "keywords": keyword_decisions(items),
    }
    if with_transformers:
        # The topic backends that use the shipped from-scratch BERT; the alert is the rules' one.
        for name in ("transformers", "ensemble"):
            say(f"scoring the {name} topic backend")
            backend = get_backend(name)
            found = [
                {t.label for t in ts}
                for prepared in feats.batches
                for ts in classify(backend, prepared.articles, prepared.docs)
            ]
            backends[name] = np.column_stack([feats.rules_alert, _label_matrix(found)])
    langs = np.array(feats.langs)
    report: dict[str, Any] = {
        "corpus": {
            "fingerprint": corpus_fingerprint(corpus),
            "eval_items": len(items),
            "eval_events": len({item.event for item in items}),
            "eval_alerts": int(truth[:, 0].sum()),
            "by_lang": {lang: int(np.sum(langs == lang)) for lang in LANGS},
        },
        "model_trained_on": signal.meta["corpus"]["fingerprint"],
        "results": {},
    }
    for name, decisions in backends.items():
        report["results"][name] = {"all": _scores(decisions, truth)} | {
            lang: _scores(decisions[langs == lang], truth[langs == lang]) for lang in LANGS
        }
    report["signal_false_alarms"] = false_alarms_by_kind(items, alert)
    return report


def false_alarm_table(rows: dict[str, dict[str, float]]) -> list[str]:
    """``false_alarms_by_kind`` as a Markdown table."""
    lines = [
        "| | alerts flagged | same-event negatives flagged | other negatives flagged "
        "| precision at the pooled mix |",
        "|---|---|---|---|---|",
    ]
    for scope, r in rows.items():
        lines.append(
            f"| {scope} | {r['alerts_flagged']} of {r['alerts']} "
            f"| {r['same_event_flagged']} of {r['same_event_negatives']} "
            f"| {r['other_flagged']} of {r['other_negatives']} | {r['precision_at_pooled_mix']:.3f} |"
        )
    return lines


def table(report: dict[str, Any]) -> list[str]:
    """The report as Markdown tables, one per language and overall."""
    lines: list[str] = []
    for scope in (*LANGS, "all"):
        lines += [
            f"**{scope}**",
            "",
            "| backend | alert P | alert R | alert F1 | export_controls F1 | topic macro-F1 "
            "| ai_models P | compute P | funding P |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, results in report["results"].items():
            r = results[scope]
            t, a = r["topics"], r["alert"]
            cells = [
                a["precision"],
                a["recall"],
                a["f1"],
                r["export_controls_f1"],
                r["topic_macro_f1"],
                t["ai_models"]["precision"],
                t["compute_infrastructure"]["precision"],
                t["funding_business"]["precision"],
            ]
            lines.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
        lines.append("")
    return lines


def heldout_flag_rates(
    shared: Path,
    model: Path = MODEL_DIR,
    *,
    sources: Sequence[str] | None = None,
    analyzer: Analyzer | None = None,
    progress: Progress | None = None,
) -> dict[str, dict[str, int]]:
    """How many of the shared sets' held-out headlines (real everyday news of every class; none
    trained on) the alert flags, per set (``sources``: only these). Nearly none of them reports
    an export-control action, so this bounds the false alarms on ordinary news."""
    from newsmon.nlp.training.data import relevance_rows

    rows = [r for r in relevance_rows(shared) if r[0] == "heldout" and (sources is None or r[1] in sources)]
    items = [
        SignalItem(f"heldout:{n}", f"heldout:{n}", lang, f"shared:{source}", text, "", False, ())
        for n, (_split, source, lang, _label, text) in enumerate(rows)
    ]
    signal = SignalModel(model)
    feats = featurize(
        items, analyzer or Analyzer(topic_backend="rules", relevance_model=None, signal=None), progress
    )
    flags = flagged(
        signal, signal.probabilities(feats.embeddings, feats.cues, feats.texts), feats.langs, True
    )
    out: dict[str, dict[str, int]] = {}
    for (_split, source, *_), flag in zip(rows, flags, strict=True):
        counts = out.setdefault(source, {"headlines": 0, "flagged": 0})
        counts["headlines"] += 1
        counts["flagged"] += int(flag)
    return out


# ------------------------------------------------------------------------------ label agreement

# A second annotator's alert labels for a random sample of training items (nlp/data/README.md).
SECOND_ANNOTATOR = CORPUS_DIR / "agreement" / "second_annotator.tsv"


def annotator_agreement(
    corpus: Path = CORPUS_DIR, second: Path = SECOND_ANNOTATOR
) -> dict[str, dict[str, Any]]:
    """The corpus's alert labels against a second annotator's (a TSV of id, alert, why: labels
    given from the guide's alert section and each item's headline and text alone), per language
    and overall: items, share agreed, Cohen's kappa, and the disagreements each way."""
    from sklearn.metrics import cohen_kappa_score

    if not second.is_file():
        raise NewsmonError(f"no second annotator's labels at {second}")
    items = {item.id: item for item in load_corpus(corpus)}
    pairs: list[tuple[str, int, int]] = []
    for number, line in enumerate(second.read_text(encoding="utf-8").splitlines()[1:], start=2):
        item_id, label, *_ = [*line.split("\t"), ""]
        if item_id not in items or label not in ("0", "1"):
            raise NewsmonError(f"{second.name}:{number}: unknown item or label not 0/1")
        pairs.append((items[item_id].lang, int(items[item_id].alert), int(label)))
    out: dict[str, dict[str, Any]] = {}
    for lang in (*LANGS, "all"):
        chosen = [(a, b) for g, a, b in pairs if lang in (g, "all")]
        if not chosen:
            continue
        ours, theirs = zip(*chosen, strict=True)
        out[lang] = {
            "items": len(chosen),
            "agreement": round(float(np.mean(np.equal(ours, theirs))), 3),
            "kappa": round(float(cohen_kappa_score(ours, theirs)), 3),
            "corpus_1_second_0": sum(a > b for a, b in chosen),
            "corpus_0_second_1": sum(a < b for a, b in chosen),
        }
    return out


# ------------------------------------------------------------------------------ command line


def _say(line: str) -> None:
    typer.echo(line, err=True)


signal_app = typer.Typer(
    help="The signal heads (export-control alert, topics): train and evaluate on the signal corpus.",
    no_args_is_help=True,
)


@signal_app.command("train")
def train_command(
    corpus: Annotated[Path, typer.Option(help="Folder of the corpus's JSONL files.")] = CORPUS_DIR,
    out: Annotated[Path, typer.Option(help="Folder to write the heads to.")] = MODEL_DIR,
    shared: Annotated[
        Path | None, typer.Option(help="../shared/data: add its labelled headlines (topic_trainset.tsv).")
    ] = None,
    out_of_fold: Annotated[
        Path | None,
        typer.Option(
            help="Also write each training row's out-of-fold probabilities here (JSON lines): "
            "where the training split's own misses and false alarms lie."
        ),
    ] = None,
) -> None:
    """Fit the heads on the training split (events never in the evaluation split)."""
    result = train(corpus, out, shared=shared, progress=_say, out_of_fold=out_of_fold)
    meta = result.meta
    typer.echo(
        f"trained on {meta['corpus']['training_items']} items ({meta['corpus']['training_events']} events); "
        f"alert thresholds {meta['alert_thresholds']} (headline-only items: "
        f"{meta['headline_alert_thresholds']}); wrote {out}"
    )


@signal_app.command("eval")
def eval_command(
    corpus: Annotated[Path, typer.Option(help="Folder of the corpus's JSONL files.")] = CORPUS_DIR,
    model: Annotated[Path, typer.Option(help="Folder of the heads.")] = MODEL_DIR,
    out: Annotated[Path | None, typer.Option(help="Also write the report as JSON here.")] = None,
    transformers: Annotated[bool, typer.Option(help="Also score the BERT topic backends.")] = True,
    shared: Annotated[
        Path | None,
        typer.Option(help="../shared/data: also count the alerts on its held-out everyday headlines."),
    ] = None,
) -> None:
    """Score every backend on the evaluation split, per language, and print the tables."""
    if not (model / META_FILE).is_file():
        raise NewsmonError(f"no signal heads in {model} (run `newsmon signal train`)")
    reports: dict[str, Any] = {
        "full": evaluate(corpus, model, with_transformers=transformers, progress=_say),
        "headlines": evaluate(corpus, model, with_transformers=False, headlines=True, progress=_say),
    }
    if shared is not None:
        reports["shared_heldout_flagged"] = heldout_flag_rates(shared, model, progress=_say)
    if out is not None:
        out.write_text(json.dumps(reports, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    c = reports["full"]["corpus"]
    typer.echo(
        f"evaluation split: {c['eval_items']} items, {c['eval_events']} events, {c['eval_alerts']} alerts "
        f"({', '.join(f'{k} {v}' for k, v in c['by_lang'].items())})\n"
    )
    for variant in ("full", "headlines"):
        typer.echo(f"## {'headline and text' if variant == 'full' else 'headlines only'}\n")
        typer.echo("\n".join(table(reports[variant])))
        typer.echo("The signal alert's false alarms by kind:\n")
        typer.echo("\n".join(false_alarm_table(reports[variant]["signal_false_alarms"])) + "\n")
    for source, counts in reports.get("shared_heldout_flagged", {}).items():
        typer.echo(
            f"held-out {source} headlines flagged as alerts: {counts['flagged']} of {counts['headlines']}"
        )


@signal_app.command("agreement")
def agreement_command(
    corpus: Annotated[Path, typer.Option(help="Folder of the corpus's JSONL files.")] = CORPUS_DIR,
    second: Annotated[
        Path, typer.Option(help="The second annotator's labels (id, alert, why).")
    ] = SECOND_ANNOTATOR,
) -> None:
    """How far a second annotator's alert labels agree with the corpus's, per language."""
    rows = annotator_agreement(corpus, second)
    typer.echo("| | items | agreement | Cohen's kappa | corpus 1, second 0 | corpus 0, second 1 |")
    typer.echo("|---|---|---|---|---|---|")
    for lang, r in rows.items():
        typer.echo(
            f"| {lang} | {r['items']} | {r['agreement']:.3f} | {r['kappa']:.3f} | "
            f"{r['corpus_1_second_0']} | {r['corpus_0_second_1']} |"
        )
