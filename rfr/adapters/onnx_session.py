"""The one way the adapters open an ONNX model: on the CPU, with a bounded thread count."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def cpu_session(model_path: Path, threads: int) -> ort.InferenceSession:
    """A CPU session using ``threads`` intra-op threads and nothing more.

    One inter-op thread and sequential execution: the services run several sessions side by
    side on a few cores, so each must stay within the threads the settings give it.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
