"""Drop-in replacements for ``scipy.sparse.linalg`` solvers.

Same names, signatures, defaults, ``(x, info)`` returns and callback
semantics as the installed scipy (checked by ``tests/test_scipy_parity.py``
with `inspect.signature`).  Each is a thin wrapper over a krylovlab `Solver`.

``info``: 0 converged, > 0 the iteration count reached without convergence,
< 0 breakdown (scipy's convention).
"""

from __future__ import annotations

from ._solver import CallbackMonitor

__all__ = ["cg"]


def _monitors(callback, arg="x"):
    return [CallbackMonitor(callback, arg)] if callback is not None else []


def _run(cls, A, b, x0, *, rtol, atol, maxiter, M, callback, **kw):
    n = getattr(b, "shape", (None,))[0]
    from ._operator import as_operator

    op = as_operator(A, name="A", n=n)
    solver = cls(op, rtol=rtol, atol=atol, maxiter=maxiter, M=M, monitors=_monitors(callback), **kw)
    res = solver.solve(b, x0)
    x = res.x
    if hasattr(b, "ndim") and b.ndim == 2:
        x = x.reshape(b.shape)
    return x, res.info


def cg(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None):
    """Conjugate gradients, a drop-in for `scipy.sparse.linalg.cg`.

    Parameters and returns are scipy's; see `krylovlab.CG` for the method.

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((32, 32)); b = np.ones(A.shape[0])
    >>> x, info = krylovlab.cg(A, b, rtol=1e-8)
    >>> info, bool(np.linalg.norm(b - A @ x) <= 1e-8 * np.linalg.norm(b))
    (0, True)
    """
    from .krylov.cg import CG

    return _run(CG, A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback)
