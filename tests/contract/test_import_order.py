"""usearch loaded before onnxruntime crashes the interpreter; our usearch adapter must prevent it."""

import subprocess
import sys


def test_the_usearch_adapter_can_be_imported_before_onnxruntime():
    code = "import rfr.adapters.indexes.usearch_index; import onnxruntime; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
