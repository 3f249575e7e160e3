"""Scheduled usage reports delivered as files under the data folder (the embedded default sink)."""

from __future__ import annotations

from pathlib import Path

from rfr.infrastructure.atomic_files import replace_together

REPORTS_DIR = "reports"


class FileReportSink:
    """Reports as files under ``<data dir>/reports``, readable by the service account only.

    A report names users and libraries, so files are 0600 in 0700 folders. Each file is
    written to a temporary name and renamed, so a reader never sees half a report.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def write(self, schedule_id: str, period_label: str, content: bytes) -> str:
        for part in (schedule_id, period_label):
            if not part or "/" in part or "\\" in part or part.startswith("."):
                raise ValueError(f"not a safe file name part: {part!r}")
        relative = Path(REPORTS_DIR) / schedule_id / f"{period_label}.json"
        (self.data_dir / relative.parent).mkdir(parents=True, exist_ok=True, mode=0o700)
        # The temporary file is created 0600, and the rename keeps that mode.
        replace_together({self.data_dir / relative: lambda tmp: tmp.write_bytes(content)})
        return relative.as_posix()
