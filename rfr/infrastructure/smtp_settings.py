"""How scheduled usage reports are sent by e-mail (A-04, ADR 0027), from the environment.

| variable | default | meaning |
|---|---|---|
| RFR_SMTP_HOST | (none: reports to $RFR_DATA_DIR/reports) | the mail server that sends scheduled reports |
| RFR_SMTP_PORT | 587 | its port |
| RFR_SMTP_STARTTLS | true | STARTTLS before anything is sent (false: plain SMTP, no login) |
| RFR_SMTP_USER | (none: no login) | the account to log in as; needs RFR_SMTP_PASSWORD and STARTTLS |
| RFR_SMTP_PASSWORD | (none) | its password; never logged, shown or recorded |
| RFR_SMTP_FROM | (required with a host) | the sender address, e.g. rfr-reports@force.police.uk |
| RFR_SMTP_CA_FILE | (none: the system's CAs) | PEM file of the CA to trust for STARTTLS (a force's own CA) |
| RFR_SMTP_TIMEOUT_SECONDS | 30 | how long to wait for the mail server at each step |
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs

from rfr.domain.user import email_acceptable

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@attrs.frozen
class SmtpSettings:
    host: str
    sender: str
    port: int = 587
    starttls: bool = True
    user: str | None = None
    # Kept out of every repr, and so out of logs, errors and events.
    password: str | None = attrs.field(default=None, repr=False)
    ca_file: Path | None = None
    timeout_seconds: float = 30.0

    @property
    def message_domain(self) -> str:
        """The domain of the Message-IDs sent: the sender's."""
        return self.sender.rpartition("@")[2]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings | None:
        """The settings, or None when RFR_SMTP_HOST is not set (reports go to the folder)."""
        host = env.get("RFR_SMTP_HOST", "").strip()
        if not host:
            return None
        sender = env.get("RFR_SMTP_FROM", "").strip()
        if not sender or not email_acceptable(sender).allowed:
            raise ValueError("RFR_SMTP_HOST needs RFR_SMTP_FROM, one sender address like rfr@force.police.uk")
        port_text = env.get("RFR_SMTP_PORT", "587").strip()
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"RFR_SMTP_PORT must be a port number, not {port_text!r}")
        starttls_text = env.get("RFR_SMTP_STARTTLS", "true").strip().lower()
        if starttls_text not in _TRUE + _FALSE:
            raise ValueError(f"RFR_SMTP_STARTTLS must be true or false, not {starttls_text!r}")
        starttls = starttls_text in _TRUE
        user = env.get("RFR_SMTP_USER", "").strip() or None
        password = env.get("RFR_SMTP_PASSWORD", "") or None
        if (user is None) != (password is None):
            raise ValueError("RFR_SMTP_USER and RFR_SMTP_PASSWORD go together: give both or neither")
        if user is not None and not starttls:
            # A password is never sent in clear over the network.
            raise ValueError("RFR_SMTP_USER needs RFR_SMTP_STARTTLS=true: a password is not sent in clear")
        ca_text = env.get("RFR_SMTP_CA_FILE", "").strip()
        ca_file = Path(ca_text).expanduser().resolve() if ca_text else None
        if ca_file is not None and not ca_file.is_file():
            raise ValueError(f"RFR_SMTP_CA_FILE is not a file: {ca_file}")
        timeout_text = env.get("RFR_SMTP_TIMEOUT_SECONDS", "30").strip()
        try:
            timeout = float(timeout_text)
        except ValueError:
            timeout = 0.0
        if not 0 < timeout <= 600:
            raise ValueError(
                f"RFR_SMTP_TIMEOUT_SECONDS must be a number of seconds up to 600, not {timeout_text!r}"
            )
        return cls(
            host=host,
            sender=sender,
            port=int(port_text),
            starttls=starttls,
            user=user,
            password=password,
            ca_file=ca_file,
            timeout_seconds=timeout,
        )
