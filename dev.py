#!/usr/bin/env python3
"""Set up the project's virtual environment from the lock file when needed, then run a command.

    python3 dev.py demo        # README command one: the end-to-end demo
    python3 dev.py test        # README command two: the test suite (pytest arguments pass on)
    python3 dev.py enms ui     # any `enms` command, e.g. the Dagster UI
    python3 dev.py setup       # only (re)install

Needs nothing but Python >= 3.11: the environment is `.venv/`, reinstalled whenever
requirements.lock or pyproject.toml change.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".enms-installed"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.lock", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"Python >= 3.11 is required (this is {sys.version.split()[0]})")
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    if not PYTHON.exists():
        _run(sys.executable, "-m", "venv", VENV)
    _run(PYTHON, "-m", "pip", "install", "--quiet", "uv")
    _run(BIN / "uv", "pip", "install", "--python", PYTHON, "-r", "requirements.lock")
    _run(BIN / "uv", "pip", "install", "--python", PYTHON, "--no-deps", "-e", ".")
    STAMP.write_text(_fingerprint())


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    setup()
    if command == "setup":
        return 0
    if command == "demo":
        cmd = [BIN / "enms", "demo", *rest]
    elif command == "test":
        cmd = [PYTHON, "-m", "pytest", *rest]
    elif command == "enms":
        cmd = [BIN / "enms", *rest]
    else:
        print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
        return 2
    return subprocess.call([str(c) for c in cmd], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
