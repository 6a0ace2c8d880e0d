"""Which labelled feedback a retrain may train on: at most a few labels from any one source.

Anyone who can reach ``/feedback/`` can label: 800 uploads of an "X" labelled 7 from one
client would otherwise be 800 training rows, each repeated like a base digit. Capping what
one untrusted source contributes leaves the many people who each label a few uploads
untouched and bounds what a single client, or a single API key, can teach a candidate.
Trusted sources (the operator's labellers) are not capped.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

#: The source name given to labels recorded without one (before sources were recorded): they
#: count as one untrusted source.
UNKNOWN = "unknown"


def cap_per_source(
    sources: Sequence[str | None], cap: int, *, exempt: Collection[str] = ()
) -> np.ndarray:
    """Keep, of each source, its last ``cap`` rows; every row of an exempt source.

    Parameters
    ----------
    sources : sequence of str or None, length n_samples
        Who gave each row's label, rows in the order they were logged (oldest first); None
        is an unknown source (all unknown rows are one source).
    cap : int, >= 0
        Most rows kept per source that is not exempt (0: none).
    exempt : collection of str
        Sources kept whole (the trusted ones).

    Returns
    -------
    keep : ndarray of shape (n_samples,), bool
    """
    if cap < 0:
        raise ValueError(f"cap must be >= 0, got {cap}")
    keep = np.zeros(len(sources), dtype=bool)
    seen: dict[str, int] = {}
    for i in range(len(sources) - 1, -1, -1):  # newest first: each source keeps its latest
        source = sources[i] or UNKNOWN
        if source in exempt:
            keep[i] = True
            continue
        count = seen.get(source, 0)
        if count < cap:
            keep[i] = True
            seen[source] = count + 1
    return keep
