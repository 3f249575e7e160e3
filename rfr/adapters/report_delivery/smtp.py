"""Scheduled usage reports sent by e-mail through an SMTP server (A-04, ADR 0027).

One message per period to the administrators' addresses, with the HTML report, the CSV and
the JSON document attached. The Message-ID is the period's own (``message_id_for``), given by
the use case: every attempt at one period sends the same message, so if a worker dies after
the server accepted it and before the delivery was recorded, the copy sent on the next
attempt is recognisably the same message (mail systems treat a repeated Message-ID as one).

A failure is raised as ``ReportDeliveryError`` with a description fit for the record: the
server's reply code and text, or the kind of network error. The login's password never
appears in it (nor the user name with it), and a refused login is described without the
server's text, which some servers fill with what was sent.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from rfr.application.ports import ReportDeliveryError, ReportMessage
from rfr.infrastructure.smtp_settings import SmtpSettings

# The server's reply is quoted in the record only this far: a diagnosis, not a transcript.
MAX_REPLY = 200


class SmtpReportSink:
    channel = "smtp"
    needs_addresses = True

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.message_domain = settings.message_domain

    def __repr__(self) -> str:
        s = self.settings
        return f"SmtpReportSink({s.host}:{s.port}, starttls={s.starttls}, login={s.user is not None})"

    def deliver(self, message: ReportMessage) -> str:
        addresses = [address for _, address in message.recipients if address]
        if not addresses:
            raise ReportDeliveryError("no recipient has an e-mail address")
        try:
            email = self._email(message, addresses)
        except ValueError as e:
            # A header the message cannot carry (the email package refuses line breaks in one).
            raise ReportDeliveryError(f"the report cannot be made into an e-mail: {e}") from None
        s = self.settings
        where = f"{s.host}:{s.port}"
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds) as smtp:
                smtp.ehlo()
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=s.ca_file))
                    smtp.ehlo()
                if s.user is not None and s.password is not None:
                    smtp.login(s.user, s.password)
                refused = smtp.send_message(email, from_addr=s.sender, to_addrs=addresses)
        except smtplib.SMTPAuthenticationError as e:
            raise ReportDeliveryError(
                f"the mail server at {where} refused the login ({e.smtp_code})"
            ) from None
        except smtplib.SMTPRecipientsRefused as e:
            codes = ", ".join(f"{a} ({code})" for a, (code, _) in sorted(e.recipients.items()))
            raise ReportDeliveryError(
                f"the mail server at {where} refused every recipient: {codes}"
            ) from None
        except smtplib.SMTPResponseException as e:
            raise ReportDeliveryError(
                f"the mail server at {where} refused the report: {e.smtp_code} {self._reply(e.smtp_error)}"
            ) from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as e:
            raise ReportDeliveryError(
                f"the report could not be sent through {where}: {type(e).__name__}: {self._scrub(str(e))}"
            ) from None
        location = f"smtp {where} {message.message_id}"
        if refused:
            # The others have it: trying again would send them a second copy. Recorded, not retried.
            codes = ", ".join(f"{a} ({code})" for a, (code, _) in sorted(refused.items()))
            location += f"; refused for {codes}"
        return location

    def _email(self, message: ReportMessage, addresses: list[str]) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.settings.sender
        email["To"] = ", ".join(addresses)
        email["Subject"] = message.subject
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = message.message_id
        email.set_content(message.text)
        for attachment in message.attachments:
            maintype, _, subtype = attachment.media_type.partition("/")
            email.add_attachment(
                attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
            )
        return email

    def _reply(self, reply: bytes | str) -> str:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return self._scrub(" ".join(text.split()))[:MAX_REPLY]

    def _scrub(self, text: str) -> str:
        """The text without the password, should any server or library echo it."""
        password = self.settings.password
        return text.replace(password, "[password]") if password else text
