"""Settings for the pytest suite: the real settings, with a throwaway var folder and key."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-not-secret")
os.environ.setdefault("DIGITS_VAR_DIR", tempfile.mkdtemp(prefix="digits-test-"))
os.environ.pop("DATABASE_URL", None)  # pytest-django makes its own test database
os.environ.pop("DIGITS_S3_BUCKET", None)  # tests that want S3 start their own server

from .settings import *  # noqa: F403

# In-process tests run inside one transaction each (pytest-django), which a writer thread's
# own connection would wait on: each request commits its own row. The servers the end-to-end
# tests start use the group commit.
DIGITS_LOG_BATCH_ROWS = 1
