"""Where the embedded event store lives on disk."""


def test_a_new_data_folder_is_private_to_the_service_account(tmp_path):
    from rfr.application.app import RfrApplication
    from rfr.infrastructure.persistence import application_env
    from rfr.infrastructure.settings import Settings

    data_dir = tmp_path / "fresh" / "var"
    RfrApplication(env=application_env(Settings(data_dir=data_dir)))
    assert (data_dir.stat().st_mode & 0o777) == 0o700


HEAD_AND_CLOSE = """
import sys
from pathlib import Path
from rfr_audit_samples import open_app
app = open_app(Path(sys.argv[1]))
print(app.recorder.chain_head())
app.close()
"""


def test_A02_a_durable_head_read_leaves_other_processes_the_store_they_share(tmp_path):
    """A-02, ADR 0012: publishing the head (a durable read) in one process, then another process
    opening and closing the store, leaves the first one writing where every reader sees it.

    The head's flush used to open and close the store's files itself, which drops every POSIX
    lock the process holds on them, SQLite's own included: the other process then believed it
    was the last connection, deleted the WAL, and the first process's next commits went into the
    deleted file (every new reader got "disk I/O error")."""
    import os
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    from rfr_audit_samples import Case, open_app

    data = tmp_path / "var"
    writer = open_app(data)
    try:
        writer.save(Case("C-1", "Smith", "DS"))
        published = writer.recorder.chain_head()  # durable: what `rfr audit head` publishes
        here = Path(__file__).resolve().parent
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")])),
        }
        other = subprocess.run(
            [sys.executable, "-c", HEAD_AND_CLOSE, str(data)],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip() == str(published)
        writer.save(Case("C-2", "Smith", "DS"))
        with sqlite3.connect(data / "events.sqlite3") as reader:
            assert reader.execute("SELECT COUNT(*) FROM stored_events").fetchone() == (2,)
            assert reader.execute("SELECT count FROM rfr_audit_head").fetchone() == (2,)
    finally:
        writer.close()
