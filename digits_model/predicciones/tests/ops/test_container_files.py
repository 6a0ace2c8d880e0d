"""The dockerfile, compose file and operations docs, checked where Docker cannot run.

(`make docker-check` builds and runs them for real where a Docker engine starts.)
"""

from __future__ import annotations

import re

import yaml

from harness.paths import REPO_DIR

DOCKERFILE = (REPO_DIR / "dockerfile").read_text()
COMPOSE = yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())
CONFIGURATION = (REPO_DIR / "docs" / "configuration.md").read_text()


def instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_dockerfile_builds_on_the_official_slim_image_without_buildkit_only_syntax():
    assert instructions("FROM") == ["python:3.11-slim"]
    assert not re.search(r"^\s*#\s*syntax", DOCKERFILE, re.M | re.I)
    assert "<<" not in DOCKERFILE and "--link" not in DOCKERFILE and "ADD " not in DOCKERFILE


def test_dockerfile_installs_dependencies_before_copying_the_code():
    text = DOCKERFILE
    assert text.index("COPY requirements.txt") < text.index("pip install")
    assert text.index("pip install") < text.index("COPY digits_model/")
    assert "--no-cache-dir" in text


def test_dockerfile_runs_as_a_user_with_health_check_and_entrypoint():
    (user,) = instructions("USER")
    assert user not in {"root", "0"}
    assert instructions("EXPOSE") == ["8000"]
    (health,) = instructions("HEALTHCHECK")
    assert "/health/" in health and "curl" not in health
    assert instructions("ENTRYPOINT") == ['["/app/docker/entrypoint.sh"]']
    assert instructions("CMD") == ['["serve"]']


def test_dockerignore_keeps_local_state_and_secrets_out():
    ignored = (REPO_DIR / ".dockerignore").read_text().split()
    for entry in [".git", ".venv", "var", ".env", "digits_model/predicciones/tests"]:
        assert entry in ignored


def test_compose_default_service_is_web_on_port_80_with_a_named_volume():
    services = COMPOSE["services"]
    default = [name for name, s in services.items() if not s.get("profiles")]
    assert default == ["web"]
    web = services["web"]
    assert web["image"] == "corona-model:v0"
    assert web["build"] == {"context": ".", "dockerfile": "dockerfile"}
    assert web["ports"] == ["80:8000"]
    assert web["volumes"] == ["data:/data"]
    assert "data" in COMPOSE["volumes"]


def test_compose_full_profile_adds_database_store_bucket_and_jobs():
    services = COMPOSE["services"]
    full = {name for name, s in services.items() if "full" in s.get("profiles", [])}
    assert full == {"db", "minio", "minio-init", "jobs"}
    assert services["minio-init"]["command"] == ["init-bucket"]
    assert services["jobs"]["command"] == ["jobs"]
    assert services["jobs"]["depends_on"]["web"]["condition"] == "service_healthy"
    env = dict(
        line.split("=", 1)
        for line in (REPO_DIR / "compose.full.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["COMPOSE_PROFILES"] == "full"
    assert env["DATABASE_URL"].startswith("postgres://") and "@db:5432/" in env["DATABASE_URL"]
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    web_env = services["web"]["environment"]
    for name in ["DATABASE_URL", "DIGITS_S3_BUCKET", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"]:
        assert name in web_env


def environment_variables_read() -> set[str]:
    """Every variable the settings, gunicorn config and container scripts read."""
    sources = [
        REPO_DIR / "digits_model" / "digits_model" / "settings.py",
        REPO_DIR / "digits_model" / "gunicorn.conf.py",
        REPO_DIR / "docker" / "entrypoint.sh",
        REPO_DIR / "docker" / "scheduler.py",
        REPO_DIR / "docker" / "init_bucket.py",
    ]
    pattern = re.compile(
        r"(?:environ\.get|environ\[|env_\w+)\(?\s*[\"']([A-Z][A-Z0-9_]+)[\"']|\$\{([A-Z][A-Z0-9_]+)"
    )
    names = set()
    for source in sources:
        for match in pattern.finditer(source.read_text()):
            names.add(match.group(1) or match.group(2))
    return names - {"DIGITS_METRICS_DIR_IS_TEMPORARY"}  # internal marker, not a setting


def test_every_environment_variable_is_documented():
    names = environment_variables_read()
    assert {"SECRET_KEY", "DIGITS_API_KEYS", "DIGITS_JOB_INTERVAL", "DIGITS_BIND"} <= names
    missing = sorted(name for name in names if f"`{name}`" not in CONFIGURATION)
    assert not missing, f"not in docs/configuration.md's table: {missing}"


def test_every_variable_compose_passes_is_one_the_service_reads():
    read = environment_variables_read() | {
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    }
    for name in ["web", "jobs"]:
        for variable in COMPOSE["services"][name]["environment"]:
            assert variable in read, f"{name} passes {variable}, which nothing reads"


# --- Hardening ---------------------------------------------------------------------------------
OUR_IMAGE = {"web", "minio-init", "jobs"}


def test_every_service_drops_its_capabilities_and_has_a_memory_limit():
    for name, service in COMPOSE["services"].items():
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["mem_limit"], name
        if name in OUR_IMAGE:
            assert "cap_add" not in service, name
    assert set(COMPOSE["services"]["db"]["cap_add"]) <= {
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "SETGID",
        "SETUID",
    }


def test_our_containers_write_only_to_the_volume_and_tmp():
    for name in OUR_IMAGE:
        service = COMPOSE["services"][name]
        assert service["read_only"] is True, name
        assert [mount.split(":")[0] for mount in service["tmpfs"]] == ["/tmp"], name
    # The metrics folder of the image is under /tmp.
    assert "PROMETHEUS_MULTIPROC_DIR=/tmp/digits-metrics" in DOCKERFILE


def test_minio_refuses_to_start_with_empty_credentials():
    import subprocess

    minio = COMPOSE["services"]["minio"]
    entrypoint = minio["entrypoint"]
    assert entrypoint[:5] == [
        "/bin/sh",
        "/require-env.sh",
        "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD",
        "--",
    ]
    assert "./docker/require-env.sh:/require-env.sh:ro" in minio["volumes"]
    script = str(REPO_DIR / "docker" / "require-env.sh")
    command = ["sh", script, "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "--", "echo", "started"]
    empty = {"PATH": "/usr/bin:/bin", "MINIO_ROOT_USER": "digits", "MINIO_ROOT_PASSWORD": ""}
    refused = subprocess.run(command, env=empty, capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        "refusing to start: empty or unset: MINIO_ROOT_PASSWORD "
        "(docker compose --env-file compose.full.env)"
    ]
    given = {**empty, "MINIO_ROOT_PASSWORD": "digits-local-only"}
    started = subprocess.run(command, env=given, capture_output=True, text=True)
    assert (started.returncode, started.stdout) == (0, "started\n")
    bad = subprocess.run(["sh", script, "A;rm", "--", "true"], capture_output=True, text=True)
    assert bad.returncode == 2
