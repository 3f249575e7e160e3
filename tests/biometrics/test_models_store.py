"""ModelStore and `rfr models`: build once, verify by sha256, rebuild what is damaged, lock builds."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rfr.entrypoints.cli import main
from rfr.infrastructure.models import ARTEFACTS, RESNET, ModelStore, ModelStoreError, dlib_models_dir

FIXED = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_first_use_builds_and_records_the_artefact(tmp_path):
    store = ModelStore(tmp_path / "models", now=lambda: FIXED)
    path = store.path(RESNET)
    assert path == tmp_path / "models" / RESNET and store.built == [RESNET]
    entry = json.loads((tmp_path / "models" / "manifest.json").read_text())["artefacts"][0]
    source = dlib_models_dir() / "dlib_face_recognition_resnet_model_v1.dat"
    assert entry["name"] == entry["file"] == RESNET
    assert entry["sha256"] == _sha(path)
    assert entry["source"] == source.name and entry["source_sha256"] == _sha(source)
    assert entry["converter_version"] == ARTEFACTS[RESNET].converter_version
    assert entry["created_at"] == "2025-01-02T03:04:05+00:00"
    # no temporary file is left behind by the atomic write
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [".lock", RESNET, "manifest.json"]


def test_a_second_store_on_the_same_folder_reuses_the_verified_artefact(tmp_path):
    ModelStore(tmp_path).path(RESNET)
    again = ModelStore(tmp_path)
    assert again.path(RESNET).exists() and again.built == []
    assert again.verify()[RESNET] is None


def test_a_corrupted_artefact_is_rebuilt_to_the_recorded_checksum(tmp_path, caplog):
    path = ModelStore(tmp_path).path(RESNET)
    recorded = _sha(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    store = ModelStore(tmp_path)
    assert "differs from the manifest" in store.verify()[RESNET]
    with caplog.at_level(logging.WARNING, logger="rfr.infrastructure.models"):
        store.path(RESNET)
    assert store.built == [RESNET] and _sha(path) == recorded
    assert any("rebuilding" in r.message and RESNET in r.message for r in caplog.records)


def test_an_artefact_from_another_converter_version_is_rebuilt(tmp_path):
    ModelStore(tmp_path).path(RESNET)
    manifest = tmp_path / "manifest.json"
    document = json.loads(manifest.read_text())
    document["artefacts"][0]["converter_version"] = "0"
    manifest.write_text(json.dumps(document))
    store = ModelStore(tmp_path)
    store.path(RESNET)
    assert store.built == [RESNET]


def test_an_unknown_source_is_refused_not_converted(tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / ARTEFACTS[RESNET].source).write_bytes(b"not the CC0 model")
    store = ModelStore(tmp_path / "models", source_dir=sources)
    with pytest.raises(ModelStoreError, match="refusing to convert an unknown model"):
        store.path(RESNET)
    assert not (tmp_path / "models" / RESNET).exists()


def test_unknown_artefact_names_are_refused(tmp_path):
    with pytest.raises(KeyError, match="known: "):
        ModelStore(tmp_path).path("resnet50.onnx")


_CHILD = """
import sys
from pathlib import Path
from rfr.infrastructure.models import RESNET, ModelStore
store = ModelStore(Path(sys.argv[1]))
print("ready", flush=True)
store.path(RESNET)
print("built" if store.built else "reused", flush=True)
"""


def test_two_processes_waiting_on_the_lock_build_only_once(tmp_path):
    holder = ModelStore(tmp_path)
    with holder.lock():
        children = [
            subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # both are now past "ready" and blocked on the lock we hold
        assert all(child.poll() is None for child in children)
        assert not (tmp_path / RESNET).exists()
    outcomes = sorted(child.communicate(timeout=60)[0].strip() for child in children)
    assert [child.returncode for child in children] == [0, 0]
    assert outcomes == ["built", "reused"]


def test_cli_builds_all_prints_the_manifest_and_verifies(tmp_path, capsys):
    models = tmp_path / "models"
    assert main(["models", "build", "--models-dir", str(models)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert sorted(a["name"] for a in printed["artefacts"]) == sorted(ARTEFACTS)
    for artefact in printed["artefacts"]:
        assert _sha(models / artefact["file"]) == artefact["sha256"]
    assert main(["models", "verify", "--models-dir", str(models)]) == 0
    (models / RESNET).write_bytes(b"damaged")
    assert main(["models", "verify", "--models-dir", str(models)]) == 1
    assert f"{RESNET}: sha256" in capsys.readouterr().out


def test_a_prebuilt_read_only_folder_is_used_without_writing(tmp_path):
    models = tmp_path / "models"
    ModelStore(models).path(RESNET)
    (models / ".lock").unlink()
    models.chmod(0o555)
    try:
        store = ModelStore(models)
        assert store.path(RESNET).exists() and store.built == []
        assert not (models / ".lock").exists()
    finally:
        models.chmod(0o755)
