"""The ``newsmon`` command line: thin wrappers over library functions the DAGs call too."""

from __future__ import annotations

import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from newsmon.alerts.cli import RulesPath
from newsmon.errors import NewsmonError, one_line
from newsmon.index.cli import JsonOpt, SinceOpt, SiteOpt, UntilOpt
from newsmon.settings import get_settings

if TYPE_CHECKING:  # the launcher is imported where a command needs it
    from newsmon.index.localnode.launcher import MemberStatus

app = typer.Typer(
    help="newsmon: crawl, analyse, index and alert on Korean and Chinese tech news.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
es_app = typer.Typer(
    help="Manage the local Elasticsearch node (development and tests).", no_args_is_help=True
)
app.add_typer(es_app, name="es")
state_app = typer.Typer(
    help="The shared state database (NEWSMON_STATE_URL): crawl state, inbox, locks, alert ledger.",
    no_args_is_help=True,
)
app.add_typer(state_app, name="state")

console = Console(stderr=True)
out = Console()


# --- local Elasticsearch node -------------------------------------------------------------


@es_app.command("start")
def es_start(
    nodes: Annotated[
        int | None,
        typer.Option(
            "--nodes",
            min=1,
            help="Nodes to run as one cluster on this machine (default NEWSMON_ES_NODES, 1).",
        ),
    ] = None,
) -> None:
    """Start the local node on NEWSMON_ES_URL's port (a cluster: that port and the next ones);
    data under NEWSMON_DATA_DIR/es (a cluster: NEWSMON_DATA_DIR/es-cluster)."""
    from newsmon.index.localnode import launcher as esnode

    settings = get_settings()
    with console.status(f"starting Elasticsearch at {settings.es_url} ..."):
        st = esnode.start(settings, nodes=nodes)
    out.print(f"Elasticsearch {st.version or ''} running at {st.url} (pid {st.pid}, health {st.health})")
    _print_members(esnode.cluster_members(settings))


@es_app.command("stop")
def es_stop() -> None:
    """Stop the local node, or every node of the local cluster, started by `newsmon es start`."""
    from newsmon.index.localnode import launcher as esnode

    if esnode.stop(get_settings()):
        out.print("Elasticsearch stopped")
    else:
        out.print("Elasticsearch was not running (no pid file)")


@es_app.command("status")
def es_status() -> None:
    """Show whether the node is running and its health (and each node of a local cluster)."""
    from newsmon.index.localnode import launcher as esnode

    settings = get_settings()
    st = esnode.status(settings)
    if st.running:
        who = f"pid {st.pid}" if st.managed else "not started by newsmon"
        size = f", {st.nodes} nodes" if st.nodes and st.nodes > 1 else ""
        out.print(f"running at {st.url} ({who}), health {st.health}{size}, version {st.version}")
        _print_members(esnode.cluster_members(settings))
    else:
        out.print(f"not running at {st.url}")
        raise typer.Exit(3)


def _print_members(members: list[MemberStatus]) -> None:
    for m in members:
        out.print(f"  {m.name}: pid {m.pid}, {m.url}")


# --- shared state -------------------------------------------------------------------------


@state_app.command("upgrade")
def state_upgrade() -> None:
    """Create or migrate the tables of the shared state database to this version's schema."""
    from newsmon.state import upgrade

    url = get_settings().state_url
    if url is None:
        raise NewsmonError(
            "NEWSMON_STATE_URL is not set: the embedded state under NEWSMON_DATA_DIR needs no migration"
        )
    before, after = upgrade(url)
    was = "" if before == after else f" (was {before or 'empty'})"
    out.print(f"state database at schema {after}{was}")


@state_app.command("import")
def state_import() -> None:
    """Copy this data dir's embedded state (crawl state, alert ledger) into the shared database."""
    from newsmon.state_import import import_embedded_state

    counts = import_embedded_state(get_settings(), progress=lambda line: console.print(line, markup=False))
    out.print(
        f"imported {counts['sources']} sources' crawl state ({counts['seen']} seen URLs, {counts['outbox']} "
        f"undelivered articles) and {counts['stories']} alert stories"
    )


# --- main job -----------------------------------------------------------------------------


@app.command("run")
def run(
    sources: Annotated[Path | None, typer.Option(help="Source registry (YAML file or folder).")] = None,
    demo: Annotated[bool, typer.Option(help="Crawl the bundled offline demo site.")] = False,
    feeds_only: Annotated[bool, typer.Option(help="Poll feeds only (no sitemaps or list pages).")] = False,
) -> None:
    """Run crawl -> analyze -> index -> alerts once, and print a summary."""
    from newsmon.pipeline import run_once, summary_table

    summary = run_once(
        get_settings(), sources_path=sources, demo=demo, feeds_only=feeds_only, console=console
    )
    out.print(summary_table(summary))
    if summary.error:
        _fail(summary.error)


# --- crawl only: the run's first stage ---------------------------------------------------


def crawl_command(
    names: Annotated[
        list[str] | None, typer.Argument(help="Sources to crawl (default: all enabled).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Move the crawl's JSON lines here instead of leaving them in the inbox."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only articles published since: 2025-03-01, 36h, 7d.")
    ] = None,
    feeds_only: Annotated[bool, typer.Option("--feeds-only", help="Skip sitemaps and list pages.")] = False,
    demo: Annotated[
        bool, typer.Option("--demo", help="Crawl the bundled offline demo site instead.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> None:
    """Crawl news sources into the run's inbox, as `newsmon run` does first: the next run (or
    its DAG) analyses and indexes them. The demo site is served where `newsmon run --demo`
    serves it, so the same article gets the same id."""
    from contextlib import ExitStack

    from newsmon.crawlers.cli import parse_since
    from newsmon.pipeline import crawl_sources, crawl_to_inbox

    settings = get_settings()
    window = parse_since(since) if since else None

    def say(line: str) -> None:
        if not quiet:
            console.print(line, markup=False, highlight=False)

    with ExitStack() as stack:
        sources = crawl_sources(settings, stack, demo=demo, names=names, progress=say)
        if out is not None and settings.state_url:
            # The shared inbox is a queue, not files to move: the crawl writes to ``out`` itself.
            from newsmon.crawlers.run import crawl

            stats = crawl(sources, settings, out, since=window, feeds_only=feeds_only, progress=say)
        else:
            stats = crawl_to_inbox(settings, sources, since=window, feeds_only=feeds_only, progress=say)
    if out is not None and stats.out_file is not None and stats.out_file != out:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(stats.out_file, out)
        stats.out_file = out
    out_console = Console(highlight=False)
    out_console.print(
        f"fetched {stats.pages_fetched} pages: {stats.articles_new} new, {stats.articles_updated} updated, "
        f"{stats.articles_unchanged} unchanged articles -> {stats.out_file or 'the shared inbox queue'}",
        markup=False,
    )
    for label, counts in (("skipped", stats.skipped), ("errors", stats.errors)):
        if counts:
            out_console.print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), markup=False)


# --- commands that analyse and index (the app's pipeline, as `newsmon run`) --------------


def index_command(
    files: Annotated[list[Path] | None, typer.Argument(help="JSON-lines files of articles.")] = None,
    setup: Annotated[
        bool, typer.Option("--setup", help="Create or update template, index and alias.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Set up the index, and/or analyse and index articles from JSONL files (as `newsmon run`
    does with its inbox; spooled ones are replayed)."""
    from newsmon.index.cli import counts_table, print_json, progress_bar
    from newsmon.index.client import es_client
    from newsmon.index.setup import setup_index
    from newsmon.pipeline import ProcessStats, analyse_and_index

    if not setup and not files:
        raise NewsmonError("nothing to do: give JSONL files of articles and/or --setup")
    settings = get_settings()
    client = es_client(settings)  # one for the command: setup and every file
    report: dict[str, Any] = {}
    if setup:
        report["setup"] = asdict(setup_index(settings, client))
        if not json_out:
            out.print(counts_table("index setup", report["setup"], "value"))
    spooled = 0
    if files:
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise NewsmonError(f"no such file: {', '.join(missing)}")
        stats = ProcessStats()
        with progress_bar(len(files), "files") as advance:
            for path in files:
                analyse_and_index(settings, [path], stats, client=client)
                advance(1)
        spooled = stats.indexed.get("spooled", 0)
        report["index"] = {"analyzed": stats.analyzed, **stats.indexed, **stats.errors}
        if not json_out:
            out.print(counts_table("analysed and indexed articles", report["index"]))
    if json_out:
        print_json(report)
    if spooled:
        raise NewsmonError(
            f"Elasticsearch at {settings.es_url} did not take {spooled} article(s): they are spooled "
            f"under {settings.layout.spool} and the next index run replays them"
        )


class _IndexGroup(TyperGroup):
    """``newsmon index rollover`` is a subcommand; any other arguments go to ``newsmon index
    articles``, so ``newsmon index [FILES] [--setup]`` keeps working as it always has."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = [DEFAULT_INDEX_COMMAND, *args]
        return super().parse_args(ctx, args)


DEFAULT_INDEX_COMMAND = "articles"
index_app = typer.Typer(
    cls=_IndexGroup,
    help="Set up the index and index articles (`newsmon index [FILES] [--setup]`), or roll it over.",
)


def index_rollover_command(json_out: JsonOpt = False) -> None:
    """Start a new index generation when the current one is 30 days old or its primary shard
    holds 50 GB (what the ILM policy does where NEWSMON_ES_ILM is on); newsmon_daily runs it."""
    from newsmon.index.cli import counts_table, print_json
    from newsmon.pipeline import roll_over_index

    result = roll_over_index(get_settings())
    if json_out:
        print_json(result)
    else:
        out.print(counts_table("index rollover", result, "value"))


def reprocess_command(
    since: SinceOpt = None,
    until: UntilOpt = None,
    site: SiteOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-run the NLP analysis on stored articles and write back what changed."""
    from newsmon.index.cli import counts_table, print_json, progress_bar
    from newsmon.pipeline import reprocess_stored

    with progress_bar(None, "reprocessing") as advance:
        stats = reprocess_stored(get_settings(), since, until, site, progress=advance)
    if json_out:
        print_json(asdict(stats))
    else:
        out.print(counts_table("reprocessed articles", asdict(stats)))


def alerts_run_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Match and render, but send nothing.")] = False,
    digest: Annotated[
        bool, typer.Option("--digest", help="Run the digest rules instead of the immediate ones.")
    ] = False,
    rules: RulesPath = None,
) -> None:
    """Run the alert rules over the articles indexed since their last run."""
    from newsmon.alerts.cli import say
    from newsmon.alerts.rules import load_rules, rules_path
    from newsmon.pipeline import alert_run

    settings = get_settings()
    stats = alert_run(
        settings,
        dry_run=dry_run,
        mode="digest" if digest else "immediate",
        rules=load_rules(rules or rules_path(settings)),
        progress=say,
    )
    verb = "dry run, nothing sent: would send" if dry_run else "sent"
    say(
        f"{stats.matched} matched articles, {stats.new_stories} new stories; {verb} {stats.sent} stories"
        f" in {stats.emails} emails; {stats.skipped_already_sent}"
        f" already sent; {stats.failed_pending} pending for the next run"
    )
    if stats.error:
        raise NewsmonError(stats.error)


def _mount() -> None:
    """Commands that live beside the library code they wrap (Scrapy split: the CLI only routes)."""
    from newsmon.airflow_local import newsmon_airflow_command
    from newsmon.alerts.cli import alerts_app
    from newsmon.crawlers.cli import extract_command, sources_app
    from newsmon.index.cli import kibana_app, search_command, stats_command
    from newsmon.nlp.cli import analyze_command
    from newsmon.nlp.training.cli import train_command
    from newsmon.nlp.training.e5_checkpoint import export_e5_command
    from newsmon.nlp.training.signal_eval import signal_app
    from newsmon.nlp.training.stories import stories_eval_command, stories_train_command

    app.command("crawl")(crawl_command)
    app.command("extract")(extract_command)
    app.add_typer(sources_app, name="sources")
    app.command("analyze")(analyze_command)
    index_app.command(DEFAULT_INDEX_COMMAND)(index_command)
    index_app.command("rollover")(index_rollover_command)
    app.add_typer(index_app, name="index")
    app.command("search")(search_command)
    app.command("stats")(stats_command)
    app.command("reprocess")(reprocess_command)
    app.command("train")(train_command)
    app.command("airflow")(newsmon_airflow_command)
    alerts_app.command("run")(alerts_run_command)  # matches come from the index: the app wires it
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(kibana_app, name="kibana")
    signal_app.command("stories-train")(stories_train_command)
    signal_app.command("stories")(stories_eval_command)
    signal_app.command("export-e5")(export_e5_command)
    app.add_typer(signal_app, name="signal")


_mount()


def _es_url() -> str:
    try:
        return get_settings().es_url
    except NewsmonError:
        return "NEWSMON_ES_URL"


def _fail(line: str) -> None:
    # Text, not markup: the line may hold brackets from a URL or a server's message.
    console.print(Text.assemble(("error:", "bold red"), " ", line), highlight=False, soft_wrap=True)
    sys.exit(2)


def main() -> None:
    # typer vendors click and exports no UsageError; the pinned typer keeps it here.
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    try:
        # standalone_mode=False: failures come here to be said in one line, not in a box.
        code = app(standalone_mode=False, prog_name="newsmon")
    except NoArgsIsHelpError as exc:  # a bare group (`newsmon`, `newsmon es`): its help
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "newsmon"
        _fail(f"{where}: {exc.format_message()} (see `{where} --help`)")
    except (KeyboardInterrupt, typer.Abort):
        console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if (line := one_line(exc, _es_url())) is None:
            raise  # a bug: its traceback is what a report needs
        _fail(line)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
