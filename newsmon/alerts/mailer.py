"""SMTP delivery from the NEWSMON_SMTP_* settings (plain, STARTTLS or implicit TLS; optional AUTH).

TLS certificates are verified against the system trust store (``ssl.create_default_context``);
a private CA can be added with the standard ``SSL_CERT_FILE`` environment variable.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from contextlib import suppress
from email.message import EmailMessage
from typing import Protocol

from newsmon.errors import NewsmonError
from newsmon.settings import Settings, SmtpTls

TIMEOUT_S = 30.0


class SmtpError(NewsmonError):
    """Mail could not be handed to the SMTP server; the message says why in one line.

    ``permanent``: the server is fine but refused this one message for good (5xx after
    DATA), so the caller may go on with the next one.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Transport(Protocol):
    def send(self, msg: EmailMessage, recipients: list[str]) -> None: ...

    def close(self) -> None: ...


def _describe(exc: BaseException, where: str, user: str | None) -> str:
    """One line for the user; order matters because most of these are OSErrors."""
    if isinstance(exc, ConnectionRefusedError):
        return f"SMTP: cannot connect to {where}: connection refused"
    if isinstance(exc, socket.gaierror):
        return f"SMTP: cannot resolve the host of {where}"
    if isinstance(exc, TimeoutError):
        return f"SMTP: {where} did not answer within {TIMEOUT_S:.0f} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"SMTP: TLS certificate of {where} is not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"SMTP: TLS with {where} failed: {exc.reason or exc}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"SMTP: authentication as {user!r} at {where} failed: {_reply(exc.smtp_code, exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"SMTP: {where} does not support {exc}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = "; ".join(f"{rcpt}: {_reply(*reply)}" for rcpt, reply in exc.recipients.items())
        return f"SMTP: {where} refused all recipients: {codes}"
    if isinstance(exc, smtplib.SMTPConnectError):
        return f"SMTP: {where} refused the connection: {_reply(exc.smtp_code, exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP: {where} refused the message: {_reply(exc.smtp_code, exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"SMTP: {where} closed the connection"
    if isinstance(exc, UnicodeEncodeError):  # smtplib sends AUTH credentials as ASCII only
        return f"SMTP: NEWSMON_SMTP_USER and NEWSMON_SMTP_PASSWORD must be ASCII for {where}"
    if isinstance(exc, OSError):
        return f"SMTP: cannot talk to {where}: {exc.strerror or exc}"
    return f"SMTP: {where}: {exc}"


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(message.split())}"


class SmtpTransport:
    """Connects on the first message and reuses the connection for the rest of the run."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._where = f"{settings.smtp_host}:{settings.smtp_port}"
        self._smtp: smtplib.SMTP | None = None

    def _fail(self, exc: BaseException) -> SmtpError:
        # smtplib resets the transaction after a refused DATA, so the session stays usable.
        permanent = isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500
        if not permanent:
            self.close()
        return SmtpError(_describe(exc, self._where, self._settings.smtp_user), permanent=permanent)

    def connect(self) -> None:
        s = self._settings
        context = ssl.create_default_context()
        try:
            if s.smtp_tls is SmtpTls.ssl:
                self._smtp = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=TIMEOUT_S, context=context)
            else:
                self._smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=TIMEOUT_S)
            self._smtp.ehlo()
            if s.smtp_tls is SmtpTls.starttls:
                if not self._smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("STARTTLS (set NEWSMON_SMTP_TLS=none or ssl)")
                self._smtp.starttls(context=context)
                self._smtp.ehlo()
            if s.smtp_user:
                if not self._smtp.has_extn("auth"):
                    raise smtplib.SMTPNotSupportedError("AUTH (unset NEWSMON_SMTP_USER or enable TLS)")
                self._smtp.login(s.smtp_user, s.smtp_password or "")
        except (OSError, smtplib.SMTPException, UnicodeEncodeError) as exc:
            raise self._fail(exc) from exc

    def send(self, msg: EmailMessage, recipients: list[str]) -> None:
        """Hand ``msg`` to the server; returns only once the server accepted it."""
        if self._smtp is None:
            self.connect()
        assert self._smtp is not None
        try:
            # Partially refused recipients are not an error here: the others got the mail,
            # and retrying would send it to them twice.
            self._smtp.send_message(msg, from_addr=self._settings.alert_from, to_addrs=recipients)
        except (OSError, smtplib.SMTPException) as exc:
            raise self._fail(exc) from exc

    def close(self) -> None:
        if self._smtp is not None:
            with suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
            with suppress(OSError):
                self._smtp.close()
            self._smtp = None


class Outbox:
    """A transport that keeps messages instead of sending them (dry runs)."""

    def __init__(self) -> None:
        self.messages: list[tuple[EmailMessage, list[str]]] = []

    def send(self, msg: EmailMessage, recipients: list[str]) -> None:
        self.messages.append((msg, recipients))

    def close(self) -> None:
        return None
