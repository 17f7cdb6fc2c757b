"""SMTP delivery against a real server: plain, STARTTLS, implicit TLS, AUTH, and clear errors."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.smtpsink import SmtpSink, self_signed_cert, server_context

from newsmon.alerts.ledger import group_stories
from newsmon.alerts.mailer import SmtpError, SmtpTransport
from newsmon.alerts.render import compose
from newsmon.alerts.rules import load_rules
from newsmon.alerts.sample import sample_articles
from newsmon.index.localnode.launcher import free_port
from newsmon.settings import Settings, load_settings

pytestmark = pytest.mark.integration

TO = ["desk@example.org"]
USER = ("alerts", "s3cret pass")


@pytest.fixture
def cert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate that the client trusts through SSL_CERT_FILE."""
    cert_path, key_path = self_signed_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    yield cert_path, key_path


def _settings(port: int, **overrides: Any) -> Settings:
    return load_settings(smtp_host="127.0.0.1", smtp_port=port, alert_from="newsmon@example.org", **overrides)


def _send(settings: Settings, **article: Any) -> None:
    rule = load_rules()[0]
    story = group_stories(rule.name, [a.model_copy(update=article) for a in sample_articles()])[1]
    msg = compose(rule, "immediate", [story], sender=settings.alert_from, recipients=TO)
    transport = SmtpTransport(settings)
    try:
        transport.send(msg, TO)
    finally:
        transport.close()


def _error(settings: Settings) -> str:
    with pytest.raises(SmtpError) as err:
        _send(settings)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_plain_smtp_delivers_a_parseable_message() -> None:
    with SmtpSink() as sink:
        _send(_settings(sink.port))
        [mail] = sink.wait_for(1)
    assert mail.mail_from == "newsmon@example.org" and mail.rcpt_tos == TO
    assert mail.message["Subject"] == "[newsmon] 商务部：加强相关两用物项对美国出口管制"
    assert b"=?utf-8?" in mail.raw.split(b"\r\n\r\n", 1)[0]  # RFC 2047 on the wire


# Encoded words that decode to CR/LF plus a forged header, in each form a title could carry them.
_FORGED = base64.b64encode(b"x\r\nX-Injected: yes\r\nBcc: victim@example.org").decode()
HOSTILE_TITLES = [
    f"수출통제 강화 =?utf-8?b?{_FORGED}?=",
    "수출통제 =?utf-8?q?x=0D=0AX-Injected:_yes?=",
    f"=?UTF-8?B?{_FORGED}?= =?iso-8859-1?q?=0A=0DReply-To:_evil@example.org?=",
    "export\r\nX-Injected: raw\u2028X-Other: yes\x85X-Next: yes",
]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_crawled_title_never_becomes_a_header(title: str) -> None:
    with SmtpSink() as sink:
        _send(_settings(sink.port), title=title)
        [mail] = sink.wait_for(1)
    head = mail.raw.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0] for line in head.split(b"\r\n") if line[:1] not in (b" ", b"\t")]
    # Exactly the headers compose() sets, each once, and nothing else.
    assert sorted(names) == sorted(
        [
            b"Subject",
            b"From",
            b"To",
            b"Date",
            b"Message-ID",
            b"Auto-Submitted",
            b"X-Newsmon-Rule",
            b"Content-Type",
            b"MIME-Version",
        ]
    )
    assert mail.rcpt_tos == TO and mail.message["Reply-To"] is None and mail.message["Bcc"] is None
    subject = str(mail.message["Subject"])
    assert "\r" not in subject and "\n" not in subject and "X-Injected" not in mail.message
    assert subject.startswith("[newsmon] ")


def test_starttls_with_auth(cert: tuple[Path, Path]) -> None:
    with SmtpSink(starttls=server_context(*cert), credentials=USER) as sink:
        _send(_settings(sink.port, smtp_tls="starttls", smtp_user=USER[0], smtp_password=USER[1]))
        assert len(sink.wait_for(1)) == 1


def test_implicit_tls_with_auth(cert: tuple[Path, Path]) -> None:
    with SmtpSink(implicit_tls=server_context(*cert), credentials=USER) as sink:
        _send(_settings(sink.port, smtp_tls="ssl", smtp_user=USER[0], smtp_password=USER[1]))
        assert len(sink.wait_for(1)) == 1


def test_auth_failure_is_one_clear_line(cert: tuple[Path, Path]) -> None:
    with SmtpSink(starttls=server_context(*cert), credentials=USER) as sink:
        message = _error(_settings(sink.port, smtp_tls="starttls", smtp_user="alerts", smtp_password="wrong"))
        assert message.startswith(f"SMTP: authentication as 'alerts' at 127.0.0.1:{sink.port} failed: 535")
        assert not sink.messages


def test_connection_refused_is_one_clear_line() -> None:
    port = free_port()
    assert _error(_settings(port)) == f"SMTP: cannot connect to 127.0.0.1:{port}: connection refused"


def test_missing_starttls_and_untrusted_certificate(tmp_path: Path) -> None:
    with SmtpSink() as sink:
        message = _error(_settings(sink.port, smtp_tls="starttls"))
        assert "does not support STARTTLS" in message
    cert_path, key_path = self_signed_cert(tmp_path)  # not in the client's trust store
    with SmtpSink(starttls=server_context(cert_path, key_path)) as sink:
        assert "TLS certificate of 127.0.0.1" in _error(_settings(sink.port, smtp_tls="starttls"))


def test_auth_required_but_not_configured_and_non_ascii_password() -> None:
    with SmtpSink(credentials=USER) as sink:
        assert "refused" in _error(_settings(sink.port))
        message = _error(_settings(sink.port, smtp_user="alerts", smtp_password="密码"))
        assert (
            message
            == f"SMTP: NEWSMON_SMTP_USER and NEWSMON_SMTP_PASSWORD must be ASCII for 127.0.0.1:{sink.port}"
        )


def test_test_email_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from newsmon.alerts.cli import alerts_app
    from newsmon.settings import get_settings

    with SmtpSink() as sink:
        monkeypatch.setenv("NEWSMON_SMTP_PORT", str(sink.port))
        get_settings.cache_clear()
        result = CliRunner().invoke(alerts_app, ["test-email", "--to", "ops@example.org"])
        assert result.exit_code == 0, result.output
        [mail] = sink.wait_for(1)
    assert mail.rcpt_tos == ["ops@example.org"]
    assert mail.message["Subject"].startswith("[TEST] [newsmon] 美 상무부")
    assert f"test email sent to ops@example.org via 127.0.0.1:{sink.port}" in result.output
