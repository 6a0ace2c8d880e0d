"""The artifact store: model pickles, training statistics, drift reports, the log's capture.

A local folder by default (``DIGITS_ARTIFACTS_DIR``); an S3 bucket through boto3 when
``DIGITS_S3_BUCKET`` is set. boto3 reads its own ``AWS_ENDPOINT_URL``, credentials and
region variables, so the same code talks to AWS, MinIO or a local S3 server. This is the
only module that imports boto3. Keys are always built by the service, never by a client.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

# "=" allows Hive-style partition folders (model=.../date=...), which DuckDB and pandas read.
_KEY_RE = re.compile(r"^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$")


#: Bytes copied at a time by the local store's file transfers.
COPY_CHUNK = 1 << 20
#: A reachability probe's timeouts: it answers within about their sum, whatever the store does.
PROBE_CONNECT_SECONDS = 1
PROBE_READ_SECONDS = 1


class StoreError(RuntimeError):
    """The store could not be reached, or the object is missing.

    The message names the store and the object, for operators and logs; ``reason`` says what
    went wrong without naming either (what an anonymous ``GET /health/`` may show).
    """

    def __init__(self, message: str, reason: str = "error"):
        super().__init__(message)
        self.reason = reason


class ObjectMissingError(StoreError):
    """No object under that key."""

    def __init__(self, message: str, reason: str = "object missing"):
        super().__init__(message, reason)


# --- What a failed S3 call means -----------------------------------------------------------------
#: S3 error codes of an object or bucket that is not there.
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_NO_BUCKET_CODES = {"NoSuchBucket"}
_DENIED_CODES = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


@dataclass(frozen=True)
class S3Failure:
    """A failed S3 call, classified: ``kind`` is one of "missing", "no_bucket", "denied",
    "timeout", "connection", "error"; ``reason`` the kind in words."""

    kind: str
    reason: str
    code: str = ""


def s3_failure(exc: BaseException) -> S3Failure:
    """Classify any exception boto3 raises.

    A ``ClientError`` is the server's answer and carries its error code; every other kind
    (``ReadTimeoutError``, ``ConnectTimeoutError``, ``EndpointConnectionError``,
    ``ConnectionClosedError``, ...) never reached an answer and carries no response at all
    (``response`` is absent or None), so the code is read only from a real dictionary.
    """
    from botocore import exceptions as boto

    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    code = str(error.get("Code") or "") if isinstance(error, dict) else ""
    if isinstance(exc, boto.ClientError):
        if code in _MISSING_CODES:
            return S3Failure("missing", "object missing", code)
        if code in _NO_BUCKET_CODES:
            return S3Failure("no_bucket", "bucket does not exist", code)
        if code in _DENIED_CODES:
            return S3Failure("denied", "access denied", code)
        return S3Failure("error", f"error {code or 'without a code'}", code)
    if isinstance(exc, (boto.ReadTimeoutError, boto.ConnectTimeoutError)):
        return S3Failure("timeout", "no answer in time")
    if isinstance(exc, (boto.ConnectionError, boto.HTTPClientError)):
        # EndpointConnectionError (refused), ConnectionClosedError (dropped mid-answer), ...
        return S3Failure("connection", "connection failed")
    if isinstance(exc, boto.NoCredentialsError):
        return S3Failure("denied", "no credentials")
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:  # boto3's S3UploadFailedError wraps the answer
        return s3_failure(cause)
    return S3Failure("error", type(exc).__name__)


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key) or any(part in {".", ".."} for part in key.split("/")):
        raise ValueError(f"invalid artifact key {key!r}")
    return key


def _os_reason(exc: OSError) -> str:
    """An OSError in words, without the path ("no space left on device")."""
    return (exc.strerror or type(exc).__name__).lower()


class LocalStore:
    """Objects as files under a root folder; writes are atomic (temp file, then rename)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def describe(self) -> str:
        return f"local folder {self.root}"

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def _failed(self, exc: OSError, doing: str, key: str) -> StoreError:
        where = "to" if doing == "write" else "from"
        return StoreError(
            f"cannot {doing} {key} {where} {self.describe()}: {exc.strerror}", _os_reason(exc)
        )

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise self._failed(exc, "write", key) from exc

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ObjectMissingError(f"{key} not found in {self.describe()}") from exc
        except OSError as exc:
            raise self._failed(exc, "read", key) from exc

    def put_file(self, key: str, source: str | Path) -> None:
        """Copy a local file in as the object (atomic, like put_bytes)."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, COPY_CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise self._failed(exc, "write", key) from exc

    def get_file(self, key: str, target: str | Path) -> None:
        """Copy the object to a local file."""
        path = self._path(key)
        try:
            with open(path, "rb") as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, COPY_CHUNK)
        except FileNotFoundError as exc:
            raise ObjectMissingError(f"{key} not found in {self.describe()}") from exc
        except OSError as exc:
            raise self._failed(exc, "read", key) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove an object; a missing one is not an error."""
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise self._failed(exc, "delete", key) from exc

    def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{self.describe()} is not usable: {exc.strerror}", _os_reason(exc)
            ) from exc
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"{self.describe()} is not writable", "not writable")


class S3Store:
    """Objects in an S3 bucket under a prefix."""

    def __init__(self, bucket: str, prefix: str = ""):
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    @functools.cached_property
    def _client(self):
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"}
        )
        return boto3.client("s3", config=config)

    @functools.cached_property
    def _probe_client(self):
        """A client for reachability probes: one attempt, short timeouts, so a health check
        answers within seconds even when the endpoint drops packets."""
        import boto3
        from botocore.config import Config

        # total_max_attempts: one try in all ("max_attempts" counts retries after the first).
        config = Config(
            connect_timeout=PROBE_CONNECT_SECONDS,
            read_timeout=PROBE_READ_SECONDS,
            retries={"total_max_attempts": 1},
        )
        return boto3.client("s3", config=config)

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _errors(self):
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        # S3UploadFailedError: a managed (multipart) upload that failed part-way.
        return (BotoCoreError, ClientError, S3UploadFailedError)

    def _failed(self, exc: BaseException, doing: str, key: str | None = None) -> StoreError:
        """The StoreError (ObjectMissingError for a missing object) for a failed call."""
        failure = s3_failure(exc)
        what = f"{doing} {key} {'to' if doing == 'write' else 'from'} " if key else f"{doing} "
        if failure.kind == "missing" and key is not None:
            return ObjectMissingError(f"{key} not found in {self.describe()}")
        if failure.kind == "no_bucket":
            return StoreError(
                f"bucket {self.bucket!r} does not exist (DIGITS_S3_BUCKET); create it first",
                failure.reason,
            )
        detail = f"{failure.reason}: {exc}" if failure.kind in {"timeout", "connection"} else exc
        return StoreError(f"cannot {what}{self.describe()}: {detail}", failure.reason)

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except self._errors() as exc:
            raise self._failed(exc, "write", key) from exc

    def get_bytes(self, key: str) -> bytes:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            return response["Body"].read()
        except self._errors() as exc:
            raise self._failed(exc, "read", key) from exc

    def put_file(self, key: str, source: str | Path) -> None:
        """Upload a local file as the object (multipart above boto3's threshold)."""
        try:
            self._client.upload_file(str(source), self.bucket, self._key(key))
        except self._errors() as exc:
            raise self._failed(exc, "write", key) from exc

    def get_file(self, key: str, target: str | Path) -> None:
        """Download the object to a local file."""
        try:
            self._client.download_file(self.bucket, self._key(key), str(target))
        except self._errors() as exc:
            raise self._failed(exc, "read", key) from exc

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except self._errors() as exc:
            if s3_failure(exc).kind == "missing":
                return False
            raise self._failed(exc, "reach") from exc

    def delete(self, key: str) -> None:
        """Remove an object; a missing one is not an error (S3 semantics)."""
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except self._errors() as exc:
            raise self._failed(exc, "delete", key) from exc

    def ping(self) -> None:
        try:
            self._probe_client.head_bucket(Bucket=self.bucket)
        except self._errors() as exc:
            if s3_failure(exc).kind == "missing":  # HEAD on a bucket answers a bare 404
                raise StoreError(
                    f"bucket {self.bucket!r} does not exist (DIGITS_S3_BUCKET); create it first",
                    "bucket does not exist",
                ) from exc
            raise self._failed(exc, "reach") from exc


def put_json(store, key: str, document) -> None:
    store.put_bytes(key, json.dumps(document, indent=1, sort_keys=True).encode())


def get_json(store, key: str):
    return json.loads(store.get_bytes(key))


@functools.cache
def _store_for(bucket: str, prefix: str, root: str):
    return S3Store(bucket, prefix) if bucket else LocalStore(root)


def get_store():
    """The configured store (one instance per process and configuration)."""
    return _store_for(
        settings.DIGITS_S3_BUCKET, settings.DIGITS_S3_PREFIX, str(settings.DIGITS_ARTIFACTS_DIR)
    )


def model_artifact_key(model_name: str, version: int) -> str:
    return f"models/{model_name}/v{version}/model.pickle"


def model_stats_key(model_name: str, version: int) -> str:
    return f"models/{model_name}/v{version}/training_stats.json"


def drift_report_key(model_name: str, version: int, stamp: str) -> str:
    return f"drift/{model_name}/v{version}/{stamp}.json"


# --- The prediction log's lifecycle: hourly summaries and the capture (docs/lifecycle.md) -------
def _partition(model_name: str, version: int, hour) -> str:
    return f"model={model_name}/version={version}/date={hour:%Y-%m-%d}/hour={hour:%H}"


def summary_key(model_name: str, version: int, hour) -> str:
    return f"summaries/{_partition(model_name, version, hour)}/summary.json"


def capture_part_key(model_name: str, version: int, hour, part: int) -> str:
    return f"capture/predictions/{_partition(model_name, version, hour)}/part-{part:04d}.jsonl.gz"


def capture_manifest_key(model_name: str, version: int, hour) -> str:
    return f"capture/predictions/{_partition(model_name, version, hour)}/manifest.json"


def label_part_key(hour) -> str:
    return f"capture/labels/date={hour:%Y-%m-%d}/hour={hour:%H}/part-0000.jsonl.gz"


def label_manifest_key(hour) -> str:
    return f"capture/labels/date={hour:%Y-%m-%d}/hour={hour:%H}/manifest.json"
