"""The worker's reconciliation is wired to the store alone: no model is opened to read it (ADR 0015)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest

from rfr.adapters.biometric_store import EncryptedFileStore
from rfr.application.services.biometric_support import Biometrics
from rfr.entrypoints import composition
from rfr.entrypoints.composition import BiometricOptions, Services
from rfr.infrastructure.settings import Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, persistence="memory")


def test_the_grace_period_is_read_from_the_environment() -> None:
    assert BiometricOptions.from_env({}).orphan_grace_s == 3600
    assert BiometricOptions.from_env({"RFR_ORPHAN_GRACE_SECONDS": "5"}).orphan_grace_s == 5
    with pytest.raises(ValueError, match="RFR_ORPHAN_GRACE_SECONDS"):
        BiometricOptions.from_env({"RFR_ORPHAN_GRACE_SECONDS": "0"})


def test_a_round_with_nothing_to_erase_opens_the_store_and_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_models(*args: object, **kwargs: object) -> Biometrics:
        raise AssertionError("the models were opened")

    monkeypatch.setattr(composition, "build_biometrics", no_models)
    options = BiometricOptions(orphan_grace_s=7)
    with Services(_settings(tmp_path), biometric_options=options) as services:
        reconciliation = services.reconciliation
        assert reconciliation.grace == timedelta(seconds=7)
        store = services.biometric_store()
        assert isinstance(store, EncryptedFileStore) and services.biometric_store() is store
        summary = reconciliation.run(sweep_files=True)
        assert (summary.checked, summary.erased_total, summary.failed, summary.swept) == (0, 0, (), True)


def test_injected_biometrics_lend_their_store(tmp_path: Path) -> None:
    store = EncryptedFileStore.in_data_dir(tmp_path)
    bio = cast(Biometrics, type("Bio", (), {"store": store})())
    with Services(_settings(tmp_path), biometrics=lambda: bio) as services:
        assert services.biometric_store() is store
    store.close()
