"""README, docs/ and the pages say what the code does.

Example outputs are checked against what the service and the commands really print; every
command, option, variable, make target, compose service and route they mention is checked
against the code, and every option of the operator commands is documented.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid

import pytest
import yaml
from django.core.management import get_commands, load_command_class
from django.urls import Resolver404, resolve

from harness.paths import PROJECT_DIR, REPO_DIR
from predicciones import storage
from predicciones.logfmt import JsonFormatter
from predicciones.management.base import OperatorCommand
from predicciones.management.commands.models import render_versions
from predicciones.tests.ops.test_container_files import environment_variables_read
from predicciones.tests.sample_images import labelled_images

README = (REPO_DIR / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in sorted((REPO_DIR / "docs").glob("*.md"))}
PAGES = {path.name: path.read_text() for path in sorted((PROJECT_DIR / "templates").glob("*.html"))}
TEXTS = {"README.md": README, **DOCS, **PAGES}
OPERATIONS = DOCS["operations.md"]
API = DOCS["api.md"]
LIFECYCLE = DOCS["lifecycle.md"]

#: Options every Django command has; not ours to document.
DJANGO_OPTIONS = {
    "--verbosity",
    "--settings",
    "--pythonpath",
    "--traceback",
    "--no-color",
    "--force-color",
    "--skip-checks",
    "--help",
    "--version",
}


def code_blocks(text: str, language: str = "") -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def block_after(text: str, marker: str, language: str = "") -> str:
    """The first fenced block (of ``language``) after ``marker``."""
    start = text.index(marker)
    return code_blocks(text[start:], language)[0]


# --- Example outputs are what the code prints ------------------------------------------------
@pytest.mark.django_db
def test_readme_predict_example_is_what_the_service_answers(client, own_store):
    curl = block_after(README, "### `POST /predict/`", "bash")
    image = re.search(r"image=@(\S+?)'", curl).group(1)
    model = re.search(r"model=(\S+?)'", curl).group(1)
    example = json.loads(
        re.sub(r',\s*"\.\.\. [^"]*"', "", block_after(README, "### `POST /predict/`", "json"))
    )
    with open(REPO_DIR / image, "rb") as fh:
        answer = client.post("/predict/", {"image": fh, "model": model}).json()
    label = {path.name: label for path, label in labelled_images()}[image.split("/")[-1]]

    assert set(example) == set(answer), "README's /predict/ example lists other fields"
    assert example["prediction"] == answer["prediction"] == label, (
        f"README shows {example['prediction']} for {image}; the service answers "
        f"{answer['prediction']}, labels.csv says {label}"
    )
    for field in ("status_code", "model", "model_version"):
        assert example[field] == answer[field], field
    assert example["confidence"] == answer["confidence"], answer["confidence"]
    assert example["alternatives"] == answer["alternatives"], answer["alternatives"]
    assert example["input_8x8"][0] == answer["input_8x8"][0], answer["input_8x8"][0]
    assert re.fullmatch(r"\d+\.\d{4,} seg", example["execution_time"])
    uuid.UUID(example["query_id"])
    feedback = block_after(API, "## `POST /feedback/`", "bash")
    assert f'"label": {label}' in feedback
    # The id of one's own answer, never a fixed one (a fixed id is someone else's, or a 404).
    assert "$QUERY_ID" in feedback and example["query_id"] not in feedback


@pytest.mark.django_db
def test_readme_error_example_is_the_real_message(client, own_store):
    line = re.search(r'\{"status_code": 415, [^\n]*\}', README).group(0)
    example = json.loads(line.replace("…", str(uuid.uuid4())))
    upload = io.BytesIO(b"just some text")
    upload.name = "notes.jpg"
    answer = client.post("/predict/", {"image": upload}).json()
    assert example["error"] == answer["error"]
    assert example["code"] == answer["code"]


@pytest.mark.django_db
def test_api_health_example_is_what_the_service_answers(client, own_store):
    from predicciones.readiness import store_state_forget

    store_state_forget()
    example = json.loads(block_after(API, "## `GET /health/`", "json"))
    client.get("/predict/")  # the first request registers and loads the shipped model
    assert client.get("/health/").json() == example


def test_lifecycle_models_example_is_what_the_command_prints():
    example = block_after(LIFECYCLE, "`models` prints")
    rows = []
    for line in example.splitlines()[1:3]:
        model, version, stage, traffic, accuracy, sha, created_by = line.split(None, 6)
        rows.append(
            {
                "model": model,
                "version": int(version),
                "stage": stage,
                "traffic_percent": int(traffic.rstrip("%")),
                "holdout": {"accuracy": float(accuracy), "n": 12150},
                "sha256": sha + "0" * 52,
                "created_by": created_by,
                "gate": None,
            }
        )
    gate = re.search(
        r"v(\d+) passed the validation gate against v(\d+) on the same (\d+) rows .*set (\w+)\): "
        r"([\d.]+) vs ([\d.]+)\.",
        example,
    )
    rows[int(gate.group(1)) - 1]["gate"] = {
        "against_version": int(gate.group(2)),
        "n": int(gate.group(3)),
        "set": gate.group(4),
        "accuracy": float(gate.group(5)),
        "against_accuracy": float(gate.group(6)),
    }
    assert render_versions(rows) + "\n" == example


@pytest.mark.django_db
def test_log_line_examples_have_the_fields_the_service_logs(client, own_store, png_seven, caplog):
    upload = io.BytesIO(png_seven)
    upload.name = "digit.png"
    with caplog.at_level(logging.INFO, logger="predicciones.access"):
        client.post("/predict/", {"image": upload, "model": "clf.pickle"})
    record = next(r for r in caplog.records if r.name == "predicciones.access")
    logged = set(json.loads(JsonFormatter().format(record)))
    example_json = json.loads(block_after(OPERATIONS, "With `DIGITS_LOG_JSON=1`", "json"))
    assert set(example_json) == logged
    plain = block_after(OPERATIONS, "Plain format:")
    assert set(re.findall(r" (\w+)=", plain)) == logged - {
        "time",
        "level",
        "logger",
        "message",
        "pid",
    }


# --- Names the docs use exist in the code --------------------------------------------------
def _joined(text: str) -> str:
    """Usage lines continued on the next line (``[--option ...]`` indented) as one line."""
    return re.sub(r"\n\s+(?=\[)", " ", text)


def documented_commands() -> list[tuple[str, str, str]]:
    """(file, command, rest of the line) for every ``manage.py <command>`` in the texts."""
    found = []
    for name, text in TEXTS.items():
        for match in re.finditer(r"manage\.py (\w+)([^\n#]*)", _joined(text)):
            found.append((name, match.group(1), match.group(2)))
    return found


def parser_options(command: str) -> set[str]:
    parser = load_command_class(get_commands()[command], command).create_parser(
        "manage.py", command
    )
    return {option for action in parser._actions for option in action.option_strings}


def our_commands() -> list[str]:
    return sorted(
        name
        for name, app in get_commands().items()
        if app == "predicciones" and isinstance(load_command_class(app, name), OperatorCommand)
    )


def test_every_documented_command_and_option_exists():
    commands = get_commands()
    problems = []
    for source, command, rest in documented_commands():
        if command not in commands:
            problems.append(f"{source}: manage.py {command} is not a command")
            continue
        options = parser_options(command)
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
            if option not in options:
                problems.append(f"{source}: manage.py {command} has no option {option}")
    assert not problems, "\n".join(problems)


def test_every_option_of_the_operator_commands_is_documented():
    documented: dict[str, set[str]] = {}
    for _, command, rest in documented_commands():
        documented.setdefault(command, set()).update(re.findall(r"(--[a-z][a-z-]*)", rest))
        if "[the retrain options]" in rest:
            documented[command] |= parser_options("retrain")
    missing = [
        f"manage.py {command} {option}"
        for command in our_commands()
        for option in sorted(parser_options(command) - DJANGO_OPTIONS - {"-v", "-h"})
        if option not in documented.get(command, set())
    ]
    assert not missing, "undocumented: " + ", ".join(missing)
    assert "bootstrap_model" in documented


def test_every_variable_mentioned_is_one_the_code_reads():
    tests = PROJECT_DIR / "predicciones" / "tests"
    read_by_tests = {
        name
        for path in tests.rglob("*.py")
        for name in re.findall(
            r"environ(?:\.get)?[\[(]\s*\"(DIGITS_[A-Z0-9_]+)\"", path.read_text()
        )
    }
    read = environment_variables_read() | read_by_tests
    unknown = sorted(
        f"{source}: {name}"
        for source, text in TEXTS.items()
        for name in set(re.findall(r"\b(DIGITS_[A-Z0-9_]*[A-Z0-9])\b(?!_\*)", text))
        if name not in read
    )
    assert not unknown, unknown


def test_every_make_target_mentioned_exists():
    makefile = (REPO_DIR / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    unknown = sorted(
        f"{source}: make {target}"
        for source, text in TEXTS.items()
        for target in set(re.findall(r"`make ([a-z][\w-]*)", text))
        if target not in targets
    )
    assert not unknown, unknown


def test_every_compose_service_mentioned_exists():
    compose = yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())
    services = set(compose["services"])
    pattern = re.compile(
        r"(?:`|<code>)([\w-]+)(?:`|</code>) service\b|\bservice (?:`|<code>)([\w-]+)(?:`|</code>)"
    )
    mentioned = {
        (source, a or b) for source, text in TEXTS.items() for a, b in pattern.findall(text)
    }
    assert mentioned, "the pattern finds nothing: the test would prove nothing"
    unknown = sorted(f"{source}: {name}" for source, name in mentioned if name not in services)
    assert not unknown, unknown


def test_every_route_mentioned_exists():
    routes = set()
    for text in TEXTS.values():
        routes |= set(re.findall(r"\b(?:GET|POST) (/(?:[\w/.-]|<name>)*)", text))
        routes |= set(re.findall(r"localhost(?::\d+)?(/[\w/.-]+)", text))
    assert {"/predict/", "/health/", "/metrics", "/dashboard/"} <= routes
    unknown = []
    for route in sorted(routes):
        try:
            resolve(route.replace("<name>", "clf.pickle"))
        except Resolver404:
            unknown.append(route)
    assert not unknown, unknown


# --- The capture's documented layout, line format and query snippet -------------------------
def test_lifecycle_capture_layout_is_what_the_store_gets():
    import datetime as dt

    layout = block_after(LIFECYCLE, "**The capture's layout**").split()
    hour = dt.datetime(2026, 11, 30, 13, tzinfo=dt.UTC)
    assert layout[0] == storage.capture_part_key("clf.pickle", 3, hour, 0)
    assert layout[1] == storage.capture_part_key("clf.pickle", 3, hour, 1)
    assert storage.capture_manifest_key("clf.pickle", 3, hour) in layout
    assert storage.label_part_key(hour + dt.timedelta(hours=1)) in layout
    assert storage.label_manifest_key(hour + dt.timedelta(hours=1)) in layout
    assert storage.summary_key("clf.pickle", 3, hour) in layout


def test_lifecycle_capture_line_has_the_fields_in_order():
    from predicciones.prediction_log.capture_files import PREDICTION_FIELDS

    line = block_after(LIFECYCLE, "A prediction line has every logged field", "json")
    example = json.loads(re.sub(r',\s*"\.\.\. [^"]*"', "", line))
    assert tuple(example) == PREDICTION_FIELDS


@pytest.mark.django_db
def test_lifecycle_python_snippet_reads_a_real_capture(own_store, settings, monkeypatch, rng):
    import datetime as dt

    from django.utils import timezone

    from predicciones.models import Prediction
    from predicciones.options import lifecycle_settings
    from predicciones.prediction_log.maintenance import log_maintain
    from predicciones.services.predictions import feedback_record
    from predicciones.services.registry import shipped_model_bootstrap
    from predicciones.tests.factories import predictions_log

    version = shipped_model_bootstrap()
    start = timezone.now() - dt.timedelta(hours=6)
    rows = predictions_log(
        version, rng.integers(0, 17, (40, 64)), start=start, step=dt.timedelta(minutes=3)
    )
    log_maintain(config=lifecycle_settings(retention_days=30))
    feedback_record(query_id=rows[0].query_id, label=7)  # after the capture
    Prediction.objects.filter(label=7).update(labelled_at=timezone.now() - dt.timedelta(hours=2))
    log_maintain(config=lifecycle_settings(retention_days=30))
    monkeypatch.chdir(settings.DIGITS_ARTIFACTS_DIR)
    namespace: dict = {}
    exec(block_after(LIFECYCLE, "With nothing but Python", "python"), namespace)
    assert {r["query_id"] for r in namespace["rows"]} == {str(r.query_id) for r in rows}
    assert namespace["labels"][str(rows[0].query_id)]["label"] == 7
