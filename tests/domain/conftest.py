"""Fixtures of the domain tests; the builders live in ``domain_builders`` beside this file.

The folder goes on ``sys.path`` because ``--import-mode=importlib`` does not put it there, and
test modules import the builders by name.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
