"""Bench scripts run as child processes (``python -m bench.<name>``), each printing one JSON
object per measurement."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

from harness.paths import REPO_DIR


def phase_run(module: str, env: dict[str, str], *args: str) -> dict:
    """Run one phase of a bench script (``python -m module --phase ...``) in a process of its
    own with ``env``; the JSON object it prints last. SystemExit with its stderr if it fails."""
    proc = subprocess.run(
        [sys.executable, "-m", module, "--phase", *args],
        env=env,
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"phase {args[0]} of {module} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def script_run(module: str, *args: str) -> dict:
    """Run ``python -m module`` from the repository's folder and collect its JSON lines.

    It makes its own database, so ``DATABASE_URL`` is not passed on. Returns ``exit_code`` and
    ``results``, plus the end of its stderr when it failed or printed nothing.
    """
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    results = []
    for line in proc.stdout.splitlines():
        with contextlib.suppress(ValueError):
            results.append(json.loads(line))
    out = {"exit_code": proc.returncode, "results": results}
    if proc.returncode not in (0, 1) or not results:
        out["stderr_tail"] = proc.stderr.strip().splitlines()[-5:]
    return out
