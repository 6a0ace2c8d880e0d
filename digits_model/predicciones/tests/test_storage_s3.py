"""The artifact store against a real S3-protocol server (moto_server on loopback), and the
shipped model's bootstrap through it."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from harness.s3 import MotoServer
from predicciones import storage
from predicciones.ml.classifier import sha256_bytes
from predicciones.models import ModelVersion
from predicciones.services.registry import shipped_model_bootstrap


def test_round_trip_exists_and_delete(s3_store):
    store = storage.get_store()
    assert isinstance(store, storage.S3Store)
    store.ping()
    key = "models/x/v1/model.pickle"
    assert not store.exists(key)
    store.put_bytes(key, b"\x00\x01 binary \xff")
    assert store.exists(key)
    assert store.get_bytes(key) == b"\x00\x01 binary \xff"
    storage.put_json(store, "drift/x/v1/a.json", {"b": [1, 2], "a": None})
    assert storage.get_json(store, "drift/x/v1/a.json") == {"a": None, "b": [1, 2]}
    store.delete(key)
    store.delete(key)  # deleting a missing object is not an error
    assert not store.exists(key)


def test_keys_live_under_the_prefix(s3_store):
    storage.get_store().put_bytes("models/x/v1/training_stats.json", b"{}")
    assert s3_store.server.keys(s3_store.bucket) == ["digits/models/x/v1/training_stats.json"]


def test_missing_object_is_object_missing_error(s3_store):
    with pytest.raises(storage.ObjectMissingError, match="not found"):
        storage.get_store().get_bytes("models/none/v1/model.pickle")


def test_missing_bucket_is_a_clear_store_error(s3_store, settings):
    settings.DIGITS_S3_BUCKET = "no-such-bucket-here"
    with pytest.raises(storage.StoreError, match="does not exist"):
        storage.get_store().ping()


def test_unreachable_server_is_a_store_error_not_a_hang(settings, monkeypatch):
    from harness.processes import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    for name, value in MotoServer().env("b").items():
        if name.startswith("AWS_") and name != "AWS_ENDPOINT_URL":
            monkeypatch.setenv(name, value)
    settings.DIGITS_S3_BUCKET = "unreachable"
    storage._store_for.cache_clear()
    store = storage.get_store()
    for call in (store.ping, lambda: store.get_bytes("a"), lambda: store.put_bytes("a", b"")):
        with pytest.raises(storage.StoreError, match="unreachable"):
            call()
    storage._store_for.cache_clear()


def test_keys_are_never_paths(s3_store):
    with pytest.raises(ValueError, match="invalid artifact key"):
        storage.get_store().put_bytes("../escape", b"")


@pytest.mark.django_db
def test_bootstrap_uploads_the_shipped_artifact_and_statistics_to_s3(s3_store, settings):
    version = shipped_model_bootstrap()
    assert version is not None and version.version == 1
    keys = s3_store.server.keys(s3_store.bucket)
    assert keys == [f"digits/{version.artifact_key}", f"digits/{version.stats_key}"]
    store = storage.get_store()
    assert sha256_bytes(store.get_bytes(version.artifact_key)) == version.sha256
    shipped_stats = json.loads(
        settings.DIGITS_SHIPPED_MODEL_PATH.with_suffix(".stats.json").read_text()
    )
    assert storage.get_json(store, version.stats_key) == shipped_stats


@pytest.mark.django_db
def test_registry_bootstrapped_locally_then_pointed_at_s3_gets_its_objects(s3_store, settings):
    # First start on the local folder...
    bucket = settings.DIGITS_S3_BUCKET
    settings.DIGITS_S3_BUCKET = ""
    version = shipped_model_bootstrap()
    assert s3_store.server.keys(bucket) == []
    # ...then S3 is configured: the next start's bootstrap_model restores the objects.
    settings.DIGITS_S3_BUCKET = bucket
    call_command("bootstrap_model", verbosity=0)
    assert s3_store.server.keys(bucket) == [
        f"digits/{version.artifact_key}",
        f"digits/{version.stats_key}",
    ]
    assert ModelVersion.objects.count() == 1


@pytest.mark.django_db
def test_bootstrap_with_s3_down_exits_2_with_one_line(settings, monkeypatch):
    from harness.processes import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.DIGITS_S3_BUCKET = "down"
    storage._store_for.cache_clear()
    with pytest.raises(CommandError) as info:
        call_command("bootstrap_model", verbosity=0)
    assert info.value.returncode == 2
    assert "s3://down" in str(info.value) and "\n" not in str(info.value)
    assert not ModelVersion.objects.exists()  # nothing registered without its objects
    storage._store_for.cache_clear()
