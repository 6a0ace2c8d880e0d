"""Create the artifact bucket (``DIGITS_S3_BUCKET``) if it does not exist: the compose
``minio-init`` service. Safe to run again.

boto3 reads ``AWS_ENDPOINT_URL``, the credentials and the region from the environment, like
the service does. The object store may still be starting: retries for about a minute.
"""

from __future__ import annotations

import os
import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError


def ensure_bucket(name: str, *, attempts: int = 30, delay: float = 2.0) -> str:
    """``"exists"`` or ``"created"``; raises the last error after ``attempts`` tries."""
    client = boto3.client("s3")
    for attempt in range(1, attempts + 1):
        try:
            try:
                client.head_bucket(Bucket=name)
                return "exists"
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
                    raise
            region = client.meta.region_name
            if region and region != "us-east-1":
                client.create_bucket(
                    Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
                )
            else:
                client.create_bucket(Bucket=name)
            return "created"
        except (BotoCoreError, ClientError) as exc:
            if attempt == attempts:
                raise
            print(f"init-bucket: {name}: {exc}; retrying", file=sys.stderr, flush=True)
            time.sleep(delay)
    raise AssertionError("unreachable")


def main() -> int:
    name = os.environ.get("DIGITS_S3_BUCKET", "").strip()
    if not name:
        print("init-bucket: DIGITS_S3_BUCKET is not set; nothing to do", file=sys.stderr)
        return 0
    attempts = int(os.environ.get("DIGITS_STARTUP_RETRIES") or 30)
    try:
        outcome = ensure_bucket(name, attempts=attempts)
    except (BotoCoreError, ClientError) as exc:
        print(f"init-bucket: could not create bucket {name}: {exc}", file=sys.stderr)
        return 2
    print(f"init-bucket: bucket {name} {outcome}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
