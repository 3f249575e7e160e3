"""Every onnxruntime session's thread spinning is chosen in one place (ADR 0022): off unless
RFR_ORT_SPINNING=1, for every adapter, since they all open their sessions with ``cpu_session``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from rfr.adapters.onnx_session import SPINNING_DEFAULT, cpu_session, spinning_from_env

SPIN_KEYS = ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning")


@pytest.fixture(scope="module")
def identity_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("onnx") / "identity.onnx"
    onnx.save(model, path)
    return path


def _spinning(session) -> list[str]:
    options = session.get_session_options()
    return [options.get_session_config_entry(key) for key in SPIN_KEYS]


def test_sessions_do_not_spin_by_default(identity_model, monkeypatch):
    monkeypatch.delenv("RFR_ORT_SPINNING", raising=False)
    assert SPINNING_DEFAULT is False
    session = cpu_session(identity_model, 2)
    assert _spinning(session) == ["0", "0"]
    x = np.array([[1.0, 2.0]], dtype=np.float32)
    assert np.array_equal(session.run(None, {"x": x})[0], x)


def test_RFR_ORT_SPINNING_turns_spinning_on_for_every_session_made_after(identity_model, monkeypatch):
    monkeypatch.setenv("RFR_ORT_SPINNING", "1")
    assert _spinning(cpu_session(identity_model, 1)) == ["1", "1"]
    monkeypatch.setenv("RFR_ORT_SPINNING", "0")
    assert _spinning(cpu_session(identity_model, 1)) == ["0", "0"]


def test_an_explicit_choice_wins_over_the_environment(identity_model, monkeypatch):
    monkeypatch.setenv("RFR_ORT_SPINNING", "0")
    assert _spinning(cpu_session(identity_model, 1, spinning=True)) == ["1", "1"]


@pytest.mark.parametrize("value", ["yes", "2", "true", "-1"])
def test_a_value_other_than_0_or_1_is_refused_naming_the_variable(value):
    with pytest.raises(ValueError, match="RFR_ORT_SPINNING must be 0 or 1"):
        spinning_from_env({"RFR_ORT_SPINNING": value})


def test_unset_or_blank_is_the_default():
    assert spinning_from_env({}) is SPINNING_DEFAULT
    assert spinning_from_env({"RFR_ORT_SPINNING": " "}) is SPINNING_DEFAULT
