"""Render the README's sample alert email from the synthetic articles in newsmon.alerts.sample.

Writes ``docs/alert_email.txt`` (headers and the text part) and, when Chromium is installed
(``apt-get install chromium fonts-noto-cjk``), ``docs/alert_email.png``: the HTML part as
headless Chromium renders it. The date is fixed so the output only changes with the code.

    .venv/bin/python bench/render_sample_email.py [--mode digest|immediate] [--out docs]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from newsmon.alerts.ledger import group_stories
from newsmon.alerts.render import compose
from newsmon.alerts.rules import load_rules
from newsmon.alerts.sample import sample_articles

ROOT = Path(__file__).resolve().parent.parent
WHEN = datetime(2025, 1, 14, 3, 30, tzinfo=UTC)


def sample_message(mode: str) -> EmailMessage:
    rule = load_rules()[0]
    stories = group_stories(rule.name, sample_articles())
    return compose(
        rule,
        "digest" if mode == "digest" else "immediate",
        stories if mode == "digest" else stories[:1],
        sender="newsmon@example.org",
        recipients=["analysts@example.org"],
        now=WHEN,
    )


def as_text(msg: EmailMessage) -> str:
    headers = "".join(f"{name}: {msg[name]}\n" for name in ("From", "To", "Date", "Subject"))
    body = msg.get_body(("plain",))
    assert body is not None
    return f"{headers}\n{body.get_content()}"


def screenshot(html: str, png: Path) -> bool:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "alert_email.html"
        page.write_text(html, encoding="utf-8")
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={Path(tmp) / 'profile'}",
                f"--screenshot={png}",
                "--window-size=900,1200",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("digest", "immediate"), default="digest")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    msg = sample_message(args.mode)
    text_path, png_path = args.out / "alert_email.txt", args.out / "alert_email.png"
    text_path.write_text(as_text(msg), encoding="utf-8")
    print(f"wrote {text_path}")
    html = msg.get_body(("html",))
    assert html is not None
    if screenshot(html.get_content(), png_path):
        print(f"wrote {png_path}")
    else:
        print("chromium not found: no screenshot (apt-get install chromium fonts-noto-cjk)")


if __name__ == "__main__":
    main()
