"""Worker processes for drawing and preprocessing digits, tied to the process that needs them.

joblib's loky workers outlive a parent that dies without shutting its pool down (SIGKILL, or
SIGTERM's default action): a worker in the middle of a chunk computes it to the end as an
orphan of PID 1, which for training's chunks can be many minutes of CPU. Every task run here
first asks the Linux kernel to kill its worker when the parent dies (``prctl(PR_SET_PDEATHSIG,
SIGKILL)``; it survives neither fork nor exec, so it is set in the worker itself, and is
idempotent), and exits at once if the parent has already gone. loky offers nothing for this:
its workers notice a dead parent only when they next wait for a task.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable, Iterable

#: ``PR_SET_PDEATHSIG`` from <linux/prctl.h>.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Have this process killed when ``parent_pid`` (its parent) dies; exit now if it has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)


def _task(parent_pid: int, func: Callable, args: tuple, kwargs: dict):
    die_with_parent(parent_pid)
    return func(*args, **kwargs)


def parallel_map(func: Callable, calls: Iterable[tuple[tuple, dict]], *, n_jobs: int) -> list:
    """``[func(*args, **kwargs) for args, kwargs in calls]`` in ``n_jobs`` joblib workers that
    die with this process.

    Parameters
    ----------
    func : callable
        A module-level function (pickled by reference to the workers).
    calls : iterable of (tuple, dict)
        Positional and keyword arguments of each call.
    n_jobs : int
        Worker processes (> 1).

    Returns
    -------
    list
        The results, in the order of ``calls``.
    """
    from joblib import Parallel, delayed

    parent = os.getpid()
    return Parallel(n_jobs=n_jobs)(
        delayed(_task)(parent, func, args, kwargs) for args, kwargs in calls
    )
