"""``newsmon alerts ...``: check the rules, send a test email, run the rules now."""

from __future__ import annotations

from email.utils import make_msgid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from newsmon.alerts.ledger import group_stories
from newsmon.alerts.mailer import SmtpTransport
from newsmon.alerts.render import compose
from newsmon.alerts.rules import load_rules, rules_path
from newsmon.alerts.sample import sample_articles
from newsmon.errors import NewsmonError
from newsmon.settings import get_settings

alerts_app = typer.Typer(help="Alert rules and alert emails.", no_args_is_help=True)
console = Console()

RulesPath = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        help="Alert rules file (default: NEWSMON_ALERT_RULES, else the packaged one).",
        dir_okay=False,
    ),
]


def say(line: str) -> None:
    # markup=False: lines carry crawled titles, which may contain [brackets].
    console.print(line, markup=False, highlight=False, soft_wrap=True)


@alerts_app.command("rules")
def rules_command(rules: RulesPath = None) -> None:
    """List the alert rules and check that the file is valid."""
    rules = rules or rules_path(get_settings())
    loaded = load_rules(rules)
    default_to = ", ".join(get_settings().alert_to) or "(NEWSMON_ALERT_TO is empty)"
    table = Table("rule", "mode", "query", "recipients")
    for rule in loaded:
        # Text(): rule terms are data, not rich markup.
        cells = (rule.name, rule.mode, rule.query.summary(), ", ".join(rule.recipients) or default_to)
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)
    say(f"{len(loaded)} rule(s) OK in {rules}")


@alerts_app.command("test-email")
def test_email_command(
    to: Annotated[
        list[str] | None, typer.Option("--to", help="Recipient (repeatable); default NEWSMON_ALERT_TO.")
    ] = None,
    rules: RulesPath = None,
) -> None:
    """Send a sample alert (synthetic articles) to check the SMTP settings."""
    settings = get_settings()
    recipients = to or settings.alert_to
    if not recipients:
        raise NewsmonError("test-email: no recipients: pass --to or set NEWSMON_ALERT_TO")
    rule = load_rules(rules or rules_path(get_settings()))[0]
    story = group_stories(rule.name, sample_articles())[0]
    msg = compose(
        rule,
        "immediate",
        [story],
        sender=settings.alert_from,
        recipients=recipients,
        subject_prefix="[TEST] ",
    )
    # A fresh Message-ID: mail clients hide a repeated one, and test emails do repeat.
    msg.replace_header("Message-ID", make_msgid(domain=settings.alert_from.rpartition("@")[2] or None))
    transport = SmtpTransport(settings)
    try:
        transport.send(msg, recipients)
    finally:
        transport.close()
    say(
        f"test email sent to {', '.join(recipients)} via {settings.smtp_host}:{settings.smtp_port}"
        f" (tls: {settings.smtp_tls.value})"
    )
