"""What an operator sees when running the commands in a shell: the command's own output on
stdout, nothing else on stderr unless asked (-v 2), one line on stderr when it fails.

Real ``manage.py`` processes with the default log level (INFO), as an operator runs them.
"""

import json
import re
import shutil

import pytest

from harness.servers import ServerProcess

pytestmark = pytest.mark.slow

LONG_FLOAT = re.compile(r"\d\.\d{5,}")


@pytest.fixture(scope="module")
def operator():
    """A var folder with a migrated database and the shipped model registered."""
    shell = ServerProcess(env={"DIGITS_LOG_LEVEL": "INFO"})
    shell.manage("migrate", "--noinput", "-v", "0")
    shell.manage("bootstrap_model")
    yield shell
    shutil.rmtree(shell.var_dir, ignore_errors=True)


def test_a_pass_prints_sentences_and_no_log_lines(operator):
    result = operator.manage("run_pipeline")
    assert result.returncode == 0
    assert result.stderr == ""
    out = result.stdout
    assert out.startswith("Canary review: no canary running.")
    assert "Outcome: nothing retrained" in out
    assert not LONG_FLOAT.search(out), out
    assert "{" not in out


def test_logs_come_back_with_verbosity_2(operator):
    result = operator.manage("run_pipeline", "--json", "-v", "2")
    json.loads(result.stdout)  # stdout still holds exactly the document
    assert " INFO predicciones.services.pipeline pipeline for clf.pickle ok: " in result.stderr
    assert "{'" not in result.stderr  # sentences, not a Python dict


def test_bad_option_is_one_line_on_stderr(operator):
    result = operator.manage("run_pipeline", "--canary-percent", "150", check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "argument --canary-percent: expected a percentage from 0 to 99, got '150'" in (
        result.stderr
    )


def test_a_failing_step_prints_the_account_then_one_line(operator, tmp_path):
    # The artifact store is a path that cannot be a folder: the drift step cannot read the
    # version's training statistics (nor put them back).
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = operator.manage(
        "run_pipeline",
        "--json",
        check=False,
        env={"DIGITS_ARTIFACTS_DIR": str(blocker / "artifacts")},
    )
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert doc["status"] == "failed" and doc["step"] == "drift"
    assert doc["canary_review"]["decision"] == "none"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("CommandError: the drift step failed: ")
