"""`newsmon train`: the transformers classifier, the tech-relevance data and the topic model with
its ensemble (``classifier`` gives the recipe of the shipped models)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from newsmon.nlp.training.classifier import train_classifier
from newsmon.nlp.training.data import TECH, TrainError, build_relevance_dataset

if TYPE_CHECKING:  # torch/transformers take seconds to import: only when training.
    pass


def train_command(
    data: Annotated[
        Path, typer.Option("--data", help="Labelled JSONL ({'text','label'} or {'text','labels'}).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder to save the model and tokenizer into.")],
    epochs: Annotated[int, typer.Option(help="Passes over the data.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Rows per step.")] = 32,
    learning_rate: Annotated[
        float | None, typer.Option(help="Default 1e-3 from scratch, 3e-5 fine-tuning.")
    ] = None,
    max_length: Annotated[int, typer.Option(help="Tokens kept per text.")] = 64,
    base_model: Annotated[
        str | None,
        typer.Option(help="Local checkpoint folder to fine-tune instead of training from scratch."),
    ] = None,
    vocab_size: Annotated[int, typer.Option(help="WordPiece vocabulary (from scratch only).")] = 8000,
    hidden_size: Annotated[int, typer.Option(help="Hidden size (from scratch only).")] = 128,
    layers: Annotated[int, typer.Option(help="Transformer layers (from scratch only).")] = 2,
    heads: Annotated[int, typer.Option(help="Attention heads (from scratch only).")] = 4,
    han_chars: Annotated[
        bool,
        typer.Option(
            "--han-chars/--han-words",
            help="One token per Chinese character, or WordPiece pieces learnt over Han runs.",
        ),
    ] = True,
    positive_weight: Annotated[
        float | None, typer.Option(help="Loss weight of the positive label's rows (rare classes).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 13,
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads (1 is fastest on a busy 2-core machine).")
    ] = None,
    eval_data: Annotated[
        Path | None, typer.Option("--eval", help="Held-out JSONL to score after training.")
    ] = None,
    relevance_from_shared: Annotated[
        Path | None,
        typer.Option(
            help="Build the tech-relevance set from this ../shared/data folder into --data "
            "(held-out rows into <data>.heldout.jsonl, scored after training) first."
        ),
    ] = None,
    topics_from_shared: Annotated[
        Path | None,
        typer.Option(
            help="Train the topic model: build --data from this ../shared/data folder (the "
            "labelled topic set's tuning half + rules-labelled headlines), tune the rules+model "
            "ensemble, and score both on the held-out half (nlp.topic_eval)."
        ),
    ] = None,
) -> None:
    """Train a text classifier (transformers) on labelled JSONL and save it to --out."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    console = Console(stderr=True)
    metadata: dict[str, Any] = {}
    for folder, flag in (
        (relevance_from_shared, "--relevance-from-shared"),
        (topics_from_shared, "--topics-from-shared"),
    ):
        if folder is not None and not folder.is_dir():
            raise typer.BadParameter(f"no such folder: {folder}", param_hint=flag)
    if relevance_from_shared is not None:
        stats = build_relevance_dataset(relevance_from_shared, data)
        eval_data = eval_data or Path(stats.heldout_path)
        metadata["task"] = "tech_relevance"
        metadata["relevance_label"] = TECH
        console.print(
            f"wrote {data} ({sum(sum(c.values()) for c in stats.train.values())} rows) and {eval_data}"
        )
    elif topics_from_shared is not None:
        metadata["task"] = "topics"
    elif not data.is_file():
        raise typer.BadParameter(f"no such file: {data}", param_hint="--data")

    with Progress(
        TextColumn("[bold]train[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("loading", total=None)

        logged = [0]

        def tick(done: int, total: int, msg: str) -> None:
            bar.update(task, completed=done, total=total, description=msg)
            # Not a terminal (CI, nohup): no live bar, so a plain line every 5%.
            if not console.is_terminal and total > 1 and done - logged[0] >= total / 20:
                logged[0] = done
                console.print(f"train {done}/{total} {msg}")

        options: dict[str, Any] = {
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "max_length": max_length,
            "base_model": base_model,
            "vocab_size": vocab_size,
            "hidden_size": hidden_size,
            "num_layers": layers,
            "num_heads": heads,
            "han_chars": han_chars,
            "positive_weight": positive_weight,
            "seed": seed,
            "threads": threads,
            "metadata": metadata,
            "progress": tick,
        }
        try:
            if topics_from_shared is not None:
                from newsmon.nlp.training.topic_eval import train_topic_model

                topic_report = train_topic_model(topics_from_shared, data, out, say=console.print, **options)
            else:
                report = train_classifier(data, out, eval_data=eval_data, **options)
        except TrainError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None

    if topics_from_shared is not None:
        table = Table("held-out half: backend", "label", "positives", "precision", "recall", "F1")
        for row in topic_report.heldout:
            table.add_row(
                *(str(row[k]) for k in ("backend", "label", "positives", "precision", "recall", "f1"))
            )
        Console().print(table)
        console.print(f"saved {out} (model, ensemble.json, topic_eval.json)")
        return
    console.print(
        f"saved {report.out_dir}: {report.n_params:,} parameters, {report.model_bytes / 1e6:.1f} MB, "
        f"{report.n_train} rows x {report.epochs} epochs in {report.seconds:.0f}s"
    )
    if report.eval:
        table = Table("held-out set", "n", "positives", "accuracy", "precision", "recall", "F1")
        for name, m in report.eval.items():
            table.add_row(
                name,
                str(m.n),
                str(m.positives),
                f"{m.accuracy:.3f}",
                f"{m.precision:.3f}",
                f"{m.recall:.3f}",
                f"{m.f1:.3f}",
            )
        Console().print(table)


if __name__ == "__main__":  # python -m newsmon.nlp.training.cli ...
    typer.run(train_command)
