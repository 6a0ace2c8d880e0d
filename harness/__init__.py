"""What the test suite, ``make bench``, ``make eval`` and the experiments share: where things are
(``paths``), the service started on loopback (``servers``, ``processes``), a real S3 server
(``s3``), slow clients, and the uploads they send (``rendering``, ``hostile``).

Importing any of it puts ``digits_model/`` on ``sys.path`` (see ``paths``).
"""

from . import paths  # noqa: F401
