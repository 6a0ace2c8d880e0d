"""A real S3-protocol server on loopback for tests and benchmarks: ``moto_server`` in a
subprocess.

boto3 talks to it over HTTP through ``AWS_ENDPOINT_URL``, exactly as it would talk to AWS
or MinIO; nothing in boto3 is patched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import requests

from .paths import BIN_DIR
from .processes import ProcessGroup, free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Ignore any real AWS configuration on the machine.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def moto_server_path() -> str | None:
    candidate = BIN_DIR / "moto_server"
    return str(candidate) if candidate.exists() else shutil.which("moto_server")


class MotoServer:
    """``moto_server -H 127.0.0.1 -p <free port>``, started and stopped by a test fixture."""

    def __init__(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkstemp(prefix="moto-", suffix=".log")[1])
        self.group = ProcessGroup(
            [moto_server_path(), "-H", "127.0.0.1", "-p", str(self.port)],
            log_path=self.log_path,
            name="moto_server",
        )

    def start(self, timeout: float = 30) -> MotoServer:
        self.group.start(ready=self._ready, timeout=timeout, poll=0.1)
        return self

    def _ready(self) -> bool:
        try:
            requests.get(self.endpoint + "/moto-api/", timeout=1)
        except requests.RequestException:
            return False
        return True

    def stop(self) -> None:
        """Stop the server (its buckets are gone: moto keeps them in memory)."""
        self.group.stop(timeout=10)

    def env(self, bucket: str, prefix: str = "digits") -> dict[str, str]:
        """Environment for the service (and boto3) to use ``bucket`` on this server."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "DIGITS_S3_BUCKET": bucket,
            "DIGITS_S3_PREFIX": prefix,
        }

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"digits-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key in the bucket under ``prefix``."""
        paginator = self.client().get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        )
