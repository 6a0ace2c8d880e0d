"""Settings for the pytest suite: the real settings, with a throwaway var folder and key."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-not-secret")
os.environ.setdefault("DIGITS_VAR_DIR", tempfile.mkdtemp(prefix="digits-test-"))
os.environ.pop("DATABASE_URL", None)  # pytest-django makes its own test database
os.environ.pop("DIGITS_S3_BUCKET", None)  # tests that want S3 start their own server

from .settings import *  # noqa: F403
