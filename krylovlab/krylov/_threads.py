"""Keep BLAS to one thread for the duration of a solve.

numpy and scipy each load their own OpenBLAS with a pool of spinning threads;
Python-level Krylov loops that alternate calls into the two pools were
measured 300x slower than with BLAS at one thread on our 2-core machines
(shared/background/perf-baseline.md).  Solvers whose iteration runs in Python
(MINRES's generic path, the scipy-delegated methods) wrap the loop in
`single_blas_thread()`.  numba's own threads are not affected.

The process's `ThreadpoolController` is made once, on first use: making one
scans the loaded libraries (about 1 ms, up to a few ms on a busy machine),
while limiting through it takes some 20 µs.  Libraries loaded after that
first use are not seen; every BLAS krylovlab calls is loaded by importing
numpy and scipy.
"""

from __future__ import annotations

import contextlib

__all__ = ["controller", "single_blas_thread"]

_controller = None


def controller():
    """The process's `threadpoolctl.ThreadpoolController` (made on the first call)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def single_blas_thread():
    """Context manager limiting every loaded BLAS pool to one thread (about 60 µs to enter)."""
    try:
        ctx = controller().limit(limits=1, user_api="blas")
    except Exception:  # threadpoolctl could not inspect the libraries: run unlimited
        ctx = contextlib.nullcontext()
    with ctx:
        yield
