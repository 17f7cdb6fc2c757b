"""A real, recording SMTP server (aiosmtpd in a thread) for tests and the latency benchmark.

aiosmtpd is a test dependency (``pip install -e .[test]``); nothing in the alert path
imports this module.
"""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from newsmon.index.localnode.launcher import free_port

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    received_at: float  # time.time() when the server accepted it


def self_signed_cert(directory: Path, subject: str = "localhost") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key; the cert doubles as the CA file.

    ``subject``: its common name; CAs in one trust store need different ones (looked up by name).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(IPv4Address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class SmtpSink:
    """Records every accepted message; refuses with 451 once ``refuse_after`` were accepted,
    and for good (554) each message for which ``reject`` returns True.

    ``starttls`` offers STARTTLS (and requires it before AUTH); ``implicit_tls`` serves
    SMTPS; ``credentials`` requires AUTH with that user and password.
    """

    def __init__(
        self,
        *,
        refuse_after: int | None = None,
        reject: Callable[[EmailMessage], bool] | None = None,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.refuse_after = refuse_after
        self.reject = reject
        self.messages: list[ReceivedMail] = []
        self.refused = 0
        self._credentials = credentials
        self._arrived = threading.Condition()
        self.port = free_port()
        smtp_args: dict[str, Any] = {"tls_context": starttls, "require_starttls": False}
        if credentials:
            if starttls is None:
                # Plain or implicit-TLS test servers: aiosmtpd cannot tell SMTPS from plain
                # text, so it warns on every connection; that warning is noise here.
                warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
            smtp_args |= {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": starttls is not None,
            }
        self._controller = Controller(
            self, hostname=HOST, port=self.port, ssl_context=implicit_tls, **smtp_args
        )

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._controller.stop()

    def settings(self) -> dict[str, Any]:
        """``load_settings`` overrides that point newsmon at this server."""
        return {"smtp_host": HOST, "smtp_port": self.port}

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and self._credentials == (
            auth_data.login.decode(),
            auth_data.password.decode(),
        )
        # handled=False: let aiosmtpd answer "535" itself on failure.
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._arrived:
            if self.refuse_after is not None and len(self.messages) >= self.refuse_after:
                self.refused += 1
                return "451 4.3.0 Temporarily refusing mail (test server)"
            raw = envelope.original_content or b""
            message = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            if self.reject and self.reject(message):
                self.refused += 1
                return "554 5.6.0 Message rejected (test server)"
            self.messages.append(
                ReceivedMail(envelope.mail_from or "", list(envelope.rcpt_tos), message, raw, time.time())
            )
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until at least ``count`` messages arrived (or ``timeout``); returns them all."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)
