"""Shared helpers of the recycled Krylov solvers: BLAS thread limiting and
state handling (pickling, backups of learned state)."""

from __future__ import annotations

import contextlib

_CONTROLLER = None


def blas_single_thread():
    """Context manager limiting BLAS to one thread for the duration of a solve.

    numpy and scipy each load their own OpenBLAS; with two spinning thread
    pools on two cores, alternating their calls is orders of magnitude
    slower (see the performance baseline).  The small dense work of the
    recycled methods (QR, eigenproblems, least squares) gains nothing from
    threads anyway.
    """
    global _CONTROLLER
    try:
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        return _CONTROLLER.limit(limits=1, user_api="blas")
    except Exception:  # threadpoolctl missing or unable to inspect: run unlimited
        return contextlib.nullcontext()


def check_dim(value, name: str, minimum: int) -> int:
    """A non-negative integer parameter (bools rejected)."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value
