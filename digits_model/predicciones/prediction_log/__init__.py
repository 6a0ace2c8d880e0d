"""The prediction log: every answered prediction, its hourly summaries, its capture to the
artifact store, and its retention.

``layout`` is the only module that knows the rows' physical layout (columns, features as
bytes, UTC hours, the two SQL dialects); the others build on it, in this order:
``writing`` (a row, durable when written), ``summaries`` (hourly summaries), ``intervals``
and ``windows`` (reading spans and drift windows), ``capture_files`` and ``capture`` (the
capture), ``retention``, ``export`` (reading rows back) and ``maintenance`` (the three steps
of ``maintain``, its lock, the recapture and the reindex). Services and selectors call it.
"""
