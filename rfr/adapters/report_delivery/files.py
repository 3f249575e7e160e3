"""Scheduled usage reports delivered as files under the data folder (the embedded default sink)."""

from __future__ import annotations

from pathlib import Path

from rfr.application.ports import ReportDeliveryError, ReportMessage
from rfr.infrastructure.atomic_files import replace_together

REPORTS_DIR = "reports"


class FileReportSink:
    """Reports as files under ``<data dir>/reports``, readable by the service account only: the
    delivery when no mail server is configured (RFR_SMTP_HOST unset).

    A report names users and libraries, so files are 0600 in 0700 folders. Each file is
    written to a temporary name and renamed, so a reader never sees half a report; writing a
    period again replaces it, so a period delivered twice is still one report.
    """

    channel = "folder"
    needs_addresses = False
    # Message-IDs of reports no mail system sees: a domain reserved never to resolve (RFC 2606).
    message_domain = "rfr.invalid"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def deliver(self, message: ReportMessage) -> str:
        """``<period>.json`` (the location returned), ``.csv`` and ``.html`` of the schedule's folder."""
        try:
            folder = self._folder(message.schedule_id, message.period_label)
            writers = {}
            for attachment in message.attachments:
                suffix = Path(attachment.filename).suffix
                content = attachment.content
                writers[self.data_dir / folder / f"{message.period_label}{suffix}"] = (
                    lambda tmp, content=content: tmp.write_bytes(content)
                )
            replace_together(writers)
        except OSError as e:
            # A full or read-only disk, a folder in the way: a failed attempt, tried again.
            raise ReportDeliveryError(
                f"the report could not be written under {REPORTS_DIR}/: {type(e).__name__}: {e.strerror}"
            ) from None
        return (folder / f"{message.period_label}.json").as_posix()

    def _folder(self, schedule_id: str, period_label: str) -> Path:
        for part in (schedule_id, period_label):
            if not part or "/" in part or "\\" in part or part.startswith("."):
                raise ValueError(f"not a safe file name part: {part!r}")
        relative = Path(REPORTS_DIR) / schedule_id
        (self.data_dir / relative).mkdir(parents=True, exist_ok=True, mode=0o700)
        return relative

    def write(self, schedule_id: str, period_label: str, content: bytes) -> str:
        """One JSON document for the period; returns where."""
        relative = self._folder(schedule_id, period_label) / f"{period_label}.json"
        # The temporary file is created 0600, and the rename keeps that mode.
        replace_together({self.data_dir / relative: lambda tmp: tmp.write_bytes(content)})
        return relative.as_posix()
