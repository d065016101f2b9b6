"""A wheel of this checkout, as the tests that install minibinder use it (a fresh virtualenv,
pipx, minibinder's own image).

pip builds a project in place: setuptools writes `build/` and `*.egg-info` into the source tree.
`make test` runs two pytests at once, and both build wheels, so each build works on a copy of
the checkout of its own (2-3 MB; caches, virtualenvs and node_modules left out)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DATE_EPOCH = "1700000000"  # any fixed time: the wheel's files carry it
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "node_modules", "__pycache__", ".*_cache"
)


def build_wheel(folder: Path, reproducible: bool = False) -> Path:
    """Build a wheel of this checkout into `folder` and return its path. `reproducible` fixes
    SOURCE_DATE_EPOCH, so the same checkout gives the same bytes (and Docker's build cache
    holds across runs)."""
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH} if reproducible else None
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(folder), "."],
        check=True,
        capture_output=True,
        cwd=source,
        env=env,
        timeout=300,
    )
    shutil.rmtree(source)
    (wheel,) = folder.glob("minibinder-*.whl")
    return wheel
