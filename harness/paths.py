"""Where the bench finds the project, its scripts and the virtualenv's programs."""

import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]
PROJECT_DIR = REPO_DIR / "digits_model"
BENCH_DIR = REPO_DIR / "bench"
BIN_DIR = Path(sys.executable).parent
