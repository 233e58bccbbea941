"""A script run in a child Python process on this checkout: the cross-process tests' other side."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def spawn_python(script: str, *args: object, capture_stderr: bool = True) -> subprocess.Popen:
    """``python -c script args...`` with this checkout importable; stdout (and stderr) piped, as text."""
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE if capture_stderr else None, text=True)
