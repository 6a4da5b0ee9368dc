"""How many CPU threads torch may use, so that trainings sharing a machine do not spin against
each other (two trainings with torch's default threads each on 2 cores took 5.6x as long as one
alone; with the cores shared out, 1.3x).

The cores are those this process may run on (its CPU affinity). A user's ``OMP_NUM_THREADS``
is a choice and is kept as the total; otherwise the total is every available core. Torch keeps
its thread count per thread (a new thread starts with the count set last), so a training thread
takes up a new share itself, between steps (:func:`keep_share`).
"""

from __future__ import annotations

import os

import torch


def available_cores() -> int:
    """Cores this process may run on (``OMP_NUM_THREADS`` when the user set it)."""
    chosen = os.environ.get("OMP_NUM_THREADS", "")
    if chosen.isdigit() and int(chosen) > 0:
        return int(chosen)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_share: dict[str, int] = {}  # "threads": each training's share of the cores, set by share_cores


def share_cores(jobs: int) -> int:
    """Set torch's intra-op threads (for this thread, the threads it starts, and the training
    threads at their next :func:`keep_share`) to each one's share of the cores when ``jobs``
    trainings (or ranks of one) run at once on the machine; returns that share (at least 1)."""
    threads = max(1, available_cores() // max(jobs, 1))
    _share["threads"] = threads
    torch.set_num_threads(threads)
    return threads


def keep_share() -> int:
    """In a training thread: take up the share :func:`share_cores` set last; returns the threads
    this thread now uses."""
    threads = _share.get("threads")
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
