"""The one way the adapters open an ONNX model: on the CPU, with a bounded thread count."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import onnxruntime as ort

# Whether onnxruntime's worker threads spin (busy-wait) for the next piece of work instead of
# sleeping ("session.intra_op.allow_spinning"; onnxruntime's own default is to spin). Off, from
# bench/face_stages.py (ADR 0022, docs/benchmarks.md "Face stages"): every session has its own
# threads, a request runs several sessions one after the other (YuNet then SFace; MMOD then the
# ResNet), and the threads of the session that has just finished, spinning, likely hold a core the
# next one needs. In five runs on 2 cores, SFace's whole pipeline took 29 to 48 ms a 640 px image
# without spinning and 67 to 131 ms with it, and every pattern of requests (back to back, 200 ms
# apart, two at once) cost 1.1 to 3.4 times the CPU spinning.
SPINNING_DEFAULT = False
# RFR_ORT_SPINNING=1 turns spinning back on, for a machine where one session runs back to back with
# cores to spare (one stage alone, dlib's ResNet, was up to 1.8 times as fast spinning).
SPINNING_VARIABLE = "RFR_ORT_SPINNING"


def spinning_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """RFR_ORT_SPINNING: "1" lets the threads spin, "0" makes them sleep; unset, the default."""
    env = os.environ if environ is None else environ
    text = env.get(SPINNING_VARIABLE, "").strip()
    if not text:
        return SPINNING_DEFAULT
    if text not in ("0", "1"):
        raise ValueError(f"{SPINNING_VARIABLE} must be 0 or 1, not {text!r}")
    return text == "1"


def cpu_session(model_path: Path, threads: int, *, spinning: bool | None = None) -> ort.InferenceSession:
    """A CPU session using ``threads`` intra-op threads and nothing more.

    One inter-op thread and sequential execution: the services run several sessions side by
    side on a few cores, so each must stay within the threads the settings give it.
    ``spinning`` (None: RFR_ORT_SPINNING, else ``SPINNING_DEFAULT``) is read here, where every
    session is made, rather than passed down from the settings through every adapter: all of a
    process's sessions share its cores, so they want the same choice, and this function is the
    one place every adapter opens its sessions (the benchmark builds engines both ways by it).
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    spin = spinning_from_env() if spinning is None else spinning
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
