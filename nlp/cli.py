"""``newsmon analyze``: the typer command the main CLI mounts (app.command("analyze"))."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console

from newsmon.errors import ConfigError
from newsmon.nlp.cluster import StoryClusters
from newsmon.nlp.jsonl import analyze_jsonl
from newsmon.nlp.pipeline import Analyzer, cluster_state_dir
from newsmon.nlp.stories import EventStories
from newsmon.nlp.topics import backend_names


def _open(stack: ExitStack, name: str, mode: str) -> IO[str]:
    if name == "-":
        return sys.stdout if "w" in mode else sys.stdin
    try:
        return stack.enter_context(Path(name).open(mode, encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot open {name}: {exc.strerror}") from None


def analyze_command(
    input_path: Annotated[str, typer.Option("--in", help="JSON lines to analyse ('-' = stdin).")] = "-",
    output_path: Annotated[
        str, typer.Option("--out", help="Where to write the results ('-' = stdout).")
    ] = "-",
    topics: Annotated[
        str | None,
        typer.Option(help=f"Topic backend: {', '.join(backend_names())} (default: NEWSMON_TOPIC_BACKEND)."),
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Story-cluster state folder (default: NEWSMON_DATA_DIR/clusters).")
    ] = None,
) -> None:
    """Analyse articles from JSON lines (title, text; optional id, url, lang, published, site)."""
    from newsmon.nlp.pipeline import settings_topic_backend
    from newsmon.settings import get_settings

    settings = get_settings()
    if topics:
        settings = settings.model_copy(update={"topic_backend": topics})
    analyzer = Analyzer(
        topic_backend=settings_topic_backend(settings),
        clusters=StoryClusters(state_dir or cluster_state_dir()),
        stories=EventStories(state_dir or cluster_state_dir()),
    )
    console = Console(stderr=True)
    with ExitStack() as stack:
        source = _open(stack, input_path, "r")
        sink = _open(stack, output_path, "w")
        stats = analyze_jsonl(source, sink, analyzer=analyzer)
    console.print(f"analyze: {stats.summary()}", highlight=False)
