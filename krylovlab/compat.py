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
    return res.x, res.info  # 1-D, as scipy returns it even for b of shape (n, 1)


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


# --- minres and the scipy-delegated methods (krylov/minres.py, krylov/delegated.py) ---
def _run_delegated(cls, A, b, x0, *, callback, **kw):
    """Like `_run`, but scipy's raw callback goes to scipy unchanged (exact call pattern)."""
    from ._operator import as_operator

    from ._result import Status

    op = as_operator(A, name="A", n=getattr(b, "shape", (None,))[0])
    res = cls(op, callback=callback, **kw).solve(b, x0)
    scipy_info = res.extras.get("scipy_info")
    if res.status == Status.BREAKDOWN and isinstance(scipy_info, int) and scipy_info < 0:
        return res.x, scipy_info  # scipy's own breakdown code (-10 rho, -11 beta, ... in qmr)
    return res.x, res.info


def _check_hermitian(op, what, rng=0):
    """scipy's ``check=True``: probe uᴴ(Av) = (Au)ᴴv with random vectors."""
    import numpy as np

    gen = np.random.default_rng(rng)
    u = gen.standard_normal(op.n).astype(op.dtype)
    v = gen.standard_normal(op.n).astype(op.dtype)
    lhs, rhs = np.vdot(u, op.matvec(v)), np.vdot(op.matvec(u), v)
    scale = np.linalg.norm(u) * np.linalg.norm(op.matvec(v)) + np.finfo(float).tiny
    if abs(lhs - rhs) > np.finfo(op.dtype).eps ** (1 / 3) * scale:
        raise ValueError(f"minres: {what} is not symmetric/Hermitian (check=True)")


def minres(A, b, x0=None, *, rtol=1e-5, shift=0.0, maxiter=None, M=None, callback=None, show=False,
           check=False):
    """MINRES for Hermitian (possibly indefinite) systems, a drop-in for `scipy.sparse.linalg.minres`.

    Native krylovlab implementation (`krylovlab.MINRES`).  Differences from
    scipy, all on the safe side: convergence means ``‖b − (A − shift·I) x‖ ≤
    rtol·‖b‖`` on the true residual (scipy stops on the estimate
    ‖r‖ ≤ rtol·‖A‖·‖x‖, which is looser); an inconsistent singular system
    gives ``info > 0`` where scipy returns 0 with a least-squares solution; a
    preconditioner that is not positive definite gives ``info < 0`` where
    scipy raises.  ``show=True`` prints a one-line summary; ``check=True``
    probes A and M for symmetry and raises ValueError like scipy.

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import indefinite_symmetric
    >>> A = indefinite_symmetric((20, 20)); b = np.ones(A.shape[0])
    >>> x, info = krylovlab.minres(A, b, rtol=1e-8)
    >>> info, bool(np.linalg.norm(b - A @ x) <= 1e-8 * np.linalg.norm(b))
    (0, True)
    """
    from ._operator import as_operator, as_preconditioner
    from .krylov.minres import MINRES

    op = as_operator(A, name="A", n=getattr(b, "shape", (None,))[0])
    if check:
        _check_hermitian(op, "A")
        pre = as_preconditioner(M, op.n, name="M")
        if pre is not None:
            from scipy.sparse.linalg import LinearOperator

            _check_hermitian(as_operator(LinearOperator(op.shape, matvec=pre.apply, dtype=op.dtype), name="M"),
                             "M")
    res = MINRES(op, shift=shift, rtol=rtol, atol=0.0, maxiter=maxiter, M=M,
                 monitors=_monitors(callback)).solve(b, x0)
    if show:
        print(f"krylovlab.minres: {res.status.name} after {res.iterations} iterations, "
              f"||b - Ax|| = {res.rnorm:.3e} ({res.message})")
    return res.x, res.info


def cgs(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None):
    """CGS, a drop-in for `scipy.sparse.linalg.cgs` (delegates to it; see `krylovlab.CGS`).

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((16, 16)); b = np.ones(A.shape[0])
    >>> x, info = krylovlab.cgs(A, b, rtol=1e-8)
    >>> info
    0
    """
    from .krylov.delegated import CGS

    return _run_delegated(CGS, A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback)


def bicg(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None):
    """BiCG, a drop-in for `scipy.sparse.linalg.bicg` (delegates to it; see `krylovlab.BiCG`).

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((16, 16)); b = np.ones(A.shape[0])
    >>> krylovlab.bicg(A, b, rtol=1e-8)[1]
    0
    """
    from .krylov.delegated import BiCG

    return _run_delegated(BiCG, A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback)


def qmr(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M1=None, M2=None, callback=None):
    """QMR, a drop-in for `scipy.sparse.linalg.qmr` (delegates to it; see `krylovlab.QMR`).

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((16, 16)); b = np.ones(A.shape[0])
    >>> krylovlab.qmr(A, b, rtol=1e-8)[1]
    0
    """
    from .krylov.delegated import QMR

    return _run_delegated(QMR, A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M1=M1, M2=M2,
                          callback=callback)


def tfqmr(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None, show=False):
    """TFQMR, a drop-in for `scipy.sparse.linalg.tfqmr` (delegates to it; see `krylovlab.TFQMR`).

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((16, 16)); b = np.ones(A.shape[0])
    >>> krylovlab.tfqmr(A, b, rtol=1e-8)[1]
    0
    """
    from .krylov.delegated import TFQMR

    return _run_delegated(TFQMR, A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback,
                          show=show)


def lgmres(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=1000, M=None, callback=None, inner_m=30, outer_k=3,
           outer_v=None, store_outer_Av=True, prepend_outer_v=False):
    """LGMRES, a drop-in for `scipy.sparse.linalg.lgmres` (delegates to it; see `krylovlab.LGMRES`).

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((16, 16)); b = np.ones(A.shape[0])
    >>> krylovlab.lgmres(A, b, rtol=1e-8)[1]
    0
    """
    from .krylov.delegated import LGMRES

    return _run_delegated(LGMRES, A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback,
                          inner_m=inner_m, outer_k=outer_k, outer_v=outer_v, store_outer_Av=store_outer_Av,
                          prepend_outer_v=prepend_outer_v)


def gcrotmk(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=1000, M=None, callback=None, m=20, k=None, CU=None,
            discard_C=False, truncate="oldest"):
    """GCROT(m,k), a drop-in for `scipy.sparse.linalg.gcrotmk` (delegates to it; see `krylovlab.GCROTMK`).

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((16, 16)); b = np.ones(A.shape[0])
    >>> krylovlab.gcrotmk(A, b, rtol=1e-8)[1]
    0
    """
    from .krylov.delegated import GCROTMK

    return _run_delegated(GCROTMK, A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback,
                          m=m, k=k, CU=CU, discard_C=discard_C, truncate=truncate)


__all__ += ["minres", "cgs", "bicg", "qmr", "tfqmr", "lgmres", "gcrotmk"]
# --- end minres and the scipy-delegated methods ---


# --- gmres and bicgstab (krylov/gmres.py, krylov/bicgstab.py) ---
def _rhs_norm(b) -> float:
    import numpy as np

    try:
        return float(np.linalg.norm(np.asarray(b).reshape(-1)))
    except (TypeError, ValueError):
        return float("nan")  # the solver's own validation reports what is wrong with b


class _RelativeNormCallback:
    """scipy's 'pr_norm'/'legacy' gmres callback: callback(‖r‖ / ‖b‖) every inner iteration."""

    def __init__(self, callback, bnorm):
        self.callback = callback
        self.bnorm = bnorm

    def __call__(self, info):
        self.callback(info.rnorm / self.bnorm)
        return None


def gmres(A, b, x0=None, *, rtol=1e-5, atol=0.0, restart=None, maxiter=None, M=None, callback=None,
          callback_type=None):
    """Restarted GMRES, a drop-in for `scipy.sparse.linalg.gmres`.

    Signature, defaults, ``info`` and callback semantics are scipy's:
    ``restart`` defaults to 20 (capped at n); ``maxiter`` counts restart
    cycles (default 10·n) unless ``callback_type='legacy'``, where it counts
    inner iterations; ``callback_type='x'`` calls ``callback(x)`` once per
    cycle, ``'pr_norm'`` and ``'legacy'`` call ``callback(‖r‖/‖b‖)`` once per
    inner iteration.  Giving ``callback`` without ``callback_type`` emits
    scipy's DeprecationWarning and means ``'legacy'``.  ``info`` is 0 on
    convergence and ``maxiter`` otherwise.

    One difference: krylovlab preconditions on the right, so with ``M`` the
    norm passed to a 'pr_norm' callback is the (unpreconditioned) residual
    estimate, where scipy (left preconditioning) reports ‖M r‖/‖M b‖; the
    convergence test ‖b − A x‖ ≤ max(atol, rtol‖b‖) is the same.  See
    `krylovlab.GMRES` for the method.

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((32, 32)); b = np.ones(A.shape[0])
    >>> x, info = krylovlab.gmres(A, b, rtol=1e-8, restart=30)
    >>> info, bool(np.linalg.norm(b - A @ x) <= 1e-8 * np.linalg.norm(b))
    (0, True)
    """
    import warnings

    from ._operator import as_operator
    from .krylov.gmres import GMRES

    if callback is not None and callback_type is None:
        warnings.warn(
            "krylovlab.gmres (like scipy.sparse.linalg.gmres) was called without specifying "
            "`callback_type`. The default value will be changed in a future release. For "
            "compatibility, specify a value for `callback_type` explicitly, e.g., "
            "``gmres(..., callback_type='pr_norm')``, or to retain the old behavior "
            "``gmres(..., callback_type='legacy')``",
            category=DeprecationWarning, stacklevel=2)
    if callback_type is None:
        callback_type = "legacy"
    if callback_type not in ("x", "pr_norm", "legacy"):
        raise ValueError(f"Unknown callback_type: {callback_type!r}")
    if callback is None:
        callback_type = None

    op = as_operator(A, name="A", n=getattr(b, "shape", (None,))[0])
    n = op.n
    restart = 20 if restart is None else restart
    if isinstance(restart, bool) or not isinstance(restart, int) and not hasattr(restart, "__index__"):
        raise ValueError(f"restart must be a positive integer, got {restart!r}")
    restart = max(min(int(restart), n), 1)
    if maxiter is None:
        maxiter = 10 * n
    if isinstance(maxiter, bool) or not hasattr(maxiter, "__index__") or int(maxiter) < 1:
        raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}")
    maxiter = int(maxiter)
    monitors = []
    if callback_type in ("pr_norm", "legacy"):
        monitors.append(_RelativeNormCallback(callback, _rhs_norm(b)))
    inner = maxiter if callback_type == "legacy" else maxiter * restart
    solver = GMRES(op, restart=restart, rtol=rtol, atol=atol, maxiter=inner, M=M, monitors=monitors)
    if callback_type != "legacy":
        solver._max_cycles = maxiter
    if callback_type == "x":
        solver._cycle_callback = callback
    res = solver.solve(b, x0)
    return res.x, (0 if res.converged else maxiter)


def bicgstab(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None):
    """BiCGSTAB, a drop-in for `scipy.sparse.linalg.bicgstab`.

    Signature, defaults and callback semantics are scipy's: ``callback(xk)``
    after every full iteration; ``maxiter`` defaults to 10·n.  ``info`` is 0
    on convergence, ``maxiter`` when iterations run out, and scipy's breakdown
    codes otherwise (−10: ρ = r̃ᴴr vanished, −11: ω or r̃ᴴv vanished).
    See `krylovlab.BiCGSTAB` for the method.

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((32, 32)); b = np.ones(A.shape[0])
    >>> x, info = krylovlab.bicgstab(A, b, rtol=1e-8)
    >>> info, bool(np.linalg.norm(b - A @ x) <= 1e-8 * np.linalg.norm(b))
    (0, True)
    """
    from ._operator import as_operator
    from ._result import Status
    from .krylov.bicgstab import BiCGSTAB

    op = as_operator(A, name="A", n=getattr(b, "shape", (None,))[0])
    res = BiCGSTAB(op, rtol=rtol, atol=atol, maxiter=maxiter, M=M, monitors=_monitors(callback)).solve(b, x0)
    if res.converged:
        info = 0
    elif res.status == Status.BREAKDOWN:
        info = -10 if res.extras.get("breakdown") == "rho" else -11
    elif res.status in (Status.MAXITER, Status.STAGNATION):
        info = 10 * op.n if maxiter is None else int(maxiter)
    else:
        info = res.info
    return res.x, info


__all__ += ["gmres", "bicgstab"]
