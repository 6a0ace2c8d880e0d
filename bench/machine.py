"""The machine a bench ran on: CPU, memory, load, versions of everything that matters."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil

from harness.paths import REPO_DIR

#: Packages whose versions the report names.
PACKAGES = (
    "Django",
    "djangorestframework",
    "gunicorn",
    "numpy",
    "scipy",
    "scikit-learn",
    "pillow",
    "psycopg",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "python-multipart",
)


def machine_info() -> dict:
    """CPU, cores, memory, OS, versions and git commit, for the report's header."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    commit = subprocess.run(
        ["git", "-C", str(REPO_DIR), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk.split(" [")[0],
        "git": commit or "-",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }
