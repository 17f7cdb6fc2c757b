"""SMTP delivery against a real server: plain, STARTTLS, implicit TLS, AUTH, and clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsmon.alerts.ledger import group_stories
from newsmon.alerts.mailer import SmtpError, SmtpTransport
from newsmon.alerts.render import compose
from newsmon.alerts.rules import load_rules
from newsmon.alerts.sample import sample_articles
from newsmon.alerts.smtpsink import SmtpSink, free_port, self_signed_cert, server_context
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


def _send(settings: Settings) -> None:
    rule = load_rules()[0]
    story = group_stories(rule.name, sample_articles())[1]
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
