"""Process-wide compute settings chosen once, at start-up."""

from __future__ import annotations

import os

import torch


def configure_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads and return the number used.

    A decoder step is a chain of matrix-vector products bound by memory bandwidth, which one
    core nearly saturates; on a 2-core machine a second torch thread was measured to slow the step
    down (barriers between two busy cores), and the audio callback and the GUI need a core too. So
    by default: one thread on machines with up to 2 cores, half the cores beyond that.
    """
    if threads is None:
        env = os.environ.get("SURTITLE_THREADS")
        cores = os.cpu_count() or 1
        threads = int(env) if env else (1 if cores <= 2 else max(1, cores // 2))
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()
