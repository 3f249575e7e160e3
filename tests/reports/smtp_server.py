"""A real SMTP server on loopback for the e-mail delivery tests (aiosmtpd), and a self-signed
certificate for its STARTTLS made with ``cryptography``.

The server keeps every message it accepted, parsed. ``refuse`` makes it answer the next
messages with an SMTP error instead (e.g. "451 4.3.0 try again later").
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import attrs
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@attrs.define
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@attrs.define
class RecordingHandler:
    received: list[Received] = attrs.Factory(list)
    refusals: list[str] = attrs.Factory(list)
    lock: threading.Lock = attrs.Factory(threading.Lock)

    def refuse(self, *replies: str) -> None:
        with self.lock:
            self.refusals.extend(replies)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refusals:
                return self.refusals.pop(0)
            message = message_from_bytes(envelope.content, policy=policy.default)
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 2.0.0 OK queued"


@attrs.frozen
class Login:
    user: str
    password: str

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.user.encode(),
            self.password.encode(),
        )
        return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server(
    handler: RecordingHandler, *, tls: ssl.SSLContext | None = None, login: Login | None = None
) -> Iterator[int]:
    """Runs the server on a free loopback port, yields the port, stops it after."""
    for _ in range(5):
        port = free_port()
        kwargs: dict[str, Any] = {}
        if tls is not None:
            kwargs.update(tls_context=tls, require_starttls=True)
        if login is not None:
            kwargs.update(authenticator=login, auth_required=True, auth_require_tls=True)
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        try:
            controller.start()
        except (OSError, RuntimeError):
            continue  # the port was taken between finding it and binding it: another one
        try:
            yield port
        finally:
            controller.stop()
        return
    raise RuntimeError("no free loopback port for the SMTP server")


def self_signed(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context with a certificate for 127.0.0.1, and the certificate's PEM file
    (for the client to trust)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rfr test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file
