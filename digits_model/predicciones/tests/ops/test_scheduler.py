"""docker/scheduler.py: the jobs service's loop, with a stand-in manage.py and the real one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.paths import REPO_DIR

SCHEDULER = REPO_DIR / "docker" / "scheduler.py"

FAKE_MANAGE = """
import sys, pathlib
pathlib.Path(sys.argv[0]).with_name("calls.txt").open("a").write(" ".join(sys.argv[1:]) + "\\n")
print("ran", " ".join(sys.argv[1:]))
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] == "fail" else 0)
"""


@pytest.fixture
def fake_manage(tmp_path):
    script = tmp_path / "manage.py"
    script.write_text(FAKE_MANAGE)
    return script


def run(*args, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, str(SCHEDULER), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_once_runs_every_job_and_exits_with_the_worst_code(fake_manage):
    result = run("--once", "--manage-py", str(fake_manage), "--jobs", "ok --json; fail 3; ok")
    assert result.returncode == 3
    assert result.stdout.splitlines() == ["ran ok --json", "ran fail 3", "ran ok"]
    finished = [e for e in events(result.stderr) if e["event"] == "job finished"]
    assert [(e["job"], e["exit_code"]) for e in finished] == [
        ("ok --json", 0),
        ("fail 3", 3),
        ("ok", 0),
    ]
    assert all(e["seconds"] >= 0 for e in finished)


def test_jobs_default_to_maintain_then_run_pipeline_and_come_from_the_environment(fake_manage):
    result = run("--once", "--manage-py", str(fake_manage))
    assert result.stdout.splitlines() == ["ran maintain --json", "ran run_pipeline --json"]
    result = run(
        "--once",
        "--manage-py",
        str(fake_manage),
        env={"DIGITS_JOBS": "check_drift --json;run_pipeline --json"},
    )
    assert result.stdout.splitlines() == ["ran check_drift --json", "ran run_pipeline --json"]


def test_loop_repeats_every_interval_and_stops_on_sigterm(fake_manage, tmp_path):
    process = subprocess.Popen(
        [sys.executable, str(SCHEDULER), "--manage-py", str(fake_manage), "--jobs", "tick"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DIGITS_JOB_INTERVAL": "0.3"},
    )
    calls = tmp_path / "calls.txt"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if calls.exists() and len(calls.read_text().splitlines()) >= 3:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert len(calls.read_text().splitlines()) >= 3
    assert events(stderr)[-1]["event"] == "scheduler stopped"


def test_a_job_over_its_time_limit_is_stopped(tmp_path):
    script = tmp_path / "manage.py"
    script.write_text("import time\ntime.sleep(60)\n")
    started = time.monotonic()
    result = run("--once", "--manage-py", str(script), "--jobs", "slow", "--timeout", "0.5")
    assert result.returncode == 124
    assert time.monotonic() - started < 30


def test_bad_settings_are_refused():
    assert run("--once", "--jobs", " ; ").returncode == 2
    assert run("--once", "--interval", "0").returncode == 2


def test_runs_a_real_management_command(tmp_path):
    result = run(
        "--once",
        "--jobs",
        "check",
        env={"SECRET_KEY": "scheduler-test", "DIGITS_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
