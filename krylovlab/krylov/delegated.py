"""CGS, BiCG, QMR, TFQMR, LGMRES and GCROT(m,k), delegated to scipy.

These methods are **not native**: each class runs the installed
``scipy.sparse.linalg`` function of the same name, inside krylovlab's
validation, tolerance and result layer.

Algorithms (as implemented by scipy)
    CGS     Sonneveld, SIAM J. Sci. Stat. Comput. 10 (1989).
    BiCG    Fletcher, Lecture Notes in Math. 506 (1976); needs Aᴴ and Mᴴ.
    QMR     Freund & Nachtigal, Numer. Math. 60 (1991); left/right
            preconditioners M1, M2; needs Aᴴ.
    TFQMR   Freund, SIAM J. Sci. Comput. 14 (1993).
    LGMRES  Baker, Jessup & Manteuffel, SIAM J. Matrix Anal. Appl. 26 (2005).
    GCROT(m,k)  de Sturler, SIAM J. Numer. Anal. 36 (1999); Hicken & Zingg,
            SIAM J. Sci. Comput. 32 (2010).

What krylovlab adds around the scipy call
    * inputs validated once by `as_operator` / `check_vector` (shapes,
      dtypes, NaN/Inf) and the tolerance rule ``‖b − A x‖₂ ≤ max(atol,
      rtol·‖b‖₂)`` passed to scipy as an absolute ``atol``;
    * A and M wrapped in counting `LinearOperator`s (``nmatvec`` counts
      products with A and Aᴴ, ``nprec`` applications of M, M1, M2 and their
      adjoints), with krylovlab's numba SpMV for CSR matrices;
    * scipy's ``info`` mapped onto `Status` (0 → RTOL/ATOL, > 0 → MAXITER,
      < 0 → BREAKDOWN, non-finite iterate → NANORINF) and kept in
      ``extras["scipy_info"]``;
    * **the true residual is recomputed** whenever scipy claims convergence:
      scipy's CGS/BiCG/QMR test a recursively updated residual and TFQMR an
      upper-bound estimate, which can drift from ‖b − A x‖; if the true
      residual misses the tolerance the method is restarted from its own x,
      and otherwise stops with `Status.STAGNATION` (see `Solver.solve`);
    * monitors (``monitor(info) -> bool``) adapted onto scipy's
      ``callback(xk)``: they receive the true residual norm, computed for
      them with one extra product per call (reported as
      ``extras["monitor_matvecs"]``; no extra work when there are no
      monitors); returning True stops the scipy loop (`Status.USER_STOP`);
    * BLAS limited to one thread for the duration of the call (numpy and
      scipy each run an OpenBLAS pool; alternating them oversubscribes).

Monitored norm
    scipy's own residual test (recursive residual for CGS, BiCG, QMR; an
    upper bound for TFQMR; the true residual for LGMRES and GCROT(m,k) at
    each outer step), then the true residual ‖b − A x‖₂ at the end.

Iterations
    What scipy's ``maxiter`` counts: Krylov steps for CGS, BiCG, QMR and
    TFQMR; outer cycles for LGMRES (``inner_m`` inner steps each) and
    GCROT(m,k) (``m`` inner steps each).  scipy calls the LGMRES/GCROT
    callback at the *start* of each outer cycle; krylovlab monitors are
    called after each completed cycle instead.  The raw ``callback`` option
    is passed to scipy unchanged (the `krylovlab.compat` functions use it).

Workspace
    scipy's (CGS 7, BiCG 9, QMR 13, TFQMR 9 n-vectors; LGMRES about
    inner_m + 2·outer_k + 4; GCROT(m,k) about m + 2k + 4), allocated by scipy
    on every solve.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._operator import Preconditioner, as_operator, as_preconditioner
from .._result import Status
from .._solver import Outcome, Problem, Solver, converged_status
from ._threads import single_blas_thread

__all__ = ["CGS", "BiCG", "QMR", "TFQMR", "LGMRES", "GCROTMK"]


class _UserStop(Exception):
    """Raised inside scipy's callback when a monitor asks to stop."""

    def __init__(self, x, iteration):
        super().__init__("stopped by a monitor")
        self.x = x
        self.iteration = iteration


class _Counter:
    def __init__(self):
        self.matvec = 0
        self.prec = 0
        self.monitor_matvec = 0


def _adjoint_of(pre: Preconditioner):
    """z = Mᴴ r for a validated preconditioner, or None when M has no known adjoint."""
    if pre.inv_diag is not None:
        d = np.conj(pre.inv_diag)
        return lambda r: d * r.reshape(-1)
    src = pre.source
    if isinstance(src, spla.LinearOperator):
        return src.rmatvec
    if sp.issparse(src):
        mh = src.conj().T.tocsr()
        return lambda r: mh @ r.reshape(-1)
    if isinstance(src, np.ndarray):
        mh = np.ascontiguousarray(src.conj().T)
        return lambda r: mh @ r.reshape(-1)
    return None


def _counted_prec(pre: Preconditioner | None, n: int, dtype, counter: _Counter, what: str):
    """A LinearOperator applying M (and Mᴴ when known), counting applications."""
    if pre is None:
        return None
    adj = _adjoint_of(pre)

    def mv(r):
        counter.prec += 1
        return pre.apply(r.reshape(-1))

    def rmv(r):
        if adj is None:
            raise TypeError(f"{what} has no adjoint (transpose) product, which this method needs; "
                            "pass it as a matrix or a LinearOperator with rmatvec")
        counter.prec += 1
        return adj(r)

    return spla.LinearOperator((n, n), matvec=mv, rmatvec=rmv, dtype=dtype)


class _Delegated(Solver):
    """Common machinery of the scipy-delegated methods (see the module docstring)."""

    norm = "scipy's residual test, confirmed on the true residual ||b - Ax||"
    #: the scipy function's name in scipy.sparse.linalg
    _scipy_name: ClassVar[str] = ""
    #: scipy calls the callback before each outer cycle (LGMRES, GCROT) instead of after each step
    _callback_before_step: ClassVar[bool] = False

    def __init__(self, A=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, monitors=(), history=False,
                 callback=None):
        if callback is not None and not callable(callback):
            raise TypeError(f"callback {callback!r} is not callable")
        self.callback = callback
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=M, monitors=monitors, history=history)

    # -- hooks for the subclasses ----------------------------------------------------
    def _scipy_kwargs(self, pb: Problem, counter: _Counter) -> dict[str, Any]:
        M = _counted_prec(pb.M, pb.op.n, pb.dtype, counter, "M")
        return {} if M is None else {"M": M}

    # -- the delegated solve -----------------------------------------------------------
    def _iterate(self, pb: Problem) -> Outcome:
        op = pb.op
        counter = _Counter()
        dtype = pb.dtype

        def mv(v):
            counter.matvec += 1
            return op.matvec(np.ascontiguousarray(v.reshape(-1), dtype=dtype))

        adjoint = {}

        def rmv(v):
            counter.matvec += 1
            v = np.ascontiguousarray(v.reshape(-1), dtype=dtype)
            if op.kind != "csr" or op.device:
                return op.rmatvec(v)
            if "csr" not in adjoint:  # Aᴴ as CSR once per solve, then krylovlab's SpMV
                ah = op.csr.conj().T.tocsr() if op.dtype.kind == "c" else op.csr.T.tocsr()
                ah.sort_indices()
                adjoint["csr"] = as_operator(ah, name="A^H", check_finite=False)
            return adjoint["csr"].matvec(v)

        A = spla.LinearOperator(op.shape, matvec=mv, rmatvec=rmv, dtype=dtype)
        track = bool(pb.monitors) or pb.record_history
        x_in = pb.x
        # initial residual: an x0 that already meets the tolerance returns at once (scipy's TFQMR
        # would take a step first), and maxiter = 0 never reaches scipy (its loops report info 0)
        nmv0 = 0
        if pb.x0_given:
            rn0 = pb.norm(pb.residual(x_in))  # r₀ ← b − A x0
            nmv0 = 1
        else:
            rn0 = pb.bnorm
        history = [rn0] if pb.record_history else None
        if rn0 <= pb.tol or pb.maxiter == 0:
            status = converged_status(rn0, pb) if rn0 <= pb.tol else Status.MAXITER
            return Outcome(x_in, status, 0, rn0, nmv0, 0, history, {"delegated_to": self._scipy_name},
                           rnorm_is_true=True)
        counter.matvec += nmv0

        state = {"calls": 0, "notified": 0}
        before = self._callback_before_step
        user_cb = self.callback

        def notify(k, xk):
            rn = float("nan")
            if track:
                rn = pb.norm(pb.residual(xk))  # one extra product, for the monitors only
                counter.monitor_matvec += 1
                if history is not None:
                    history.append(rn)
            state["notified"] = k
            if pb.monitors and pb.notify(k, rn, lambda: xk):
                raise _UserStop(np.array(xk, copy=True), k)

        def callback(xk):
            state["calls"] += 1
            if user_cb is not None:
                user_cb(xk)
            k = state["calls"] - 1 if before else state["calls"]
            if track and k > 0:
                notify(k, xk)

        fn = getattr(spla, self._scipy_name)
        kwargs = self._scipy_kwargs(pb, counter)
        status = None
        info = None
        try:
            with single_blas_thread(), np.errstate(all="ignore"):
                x, info = fn(A, pb.b, x0=np.array(x_in, copy=True) if pb.x0_given else None, rtol=0.0,
                             atol=pb.tol, maxiter=pb.maxiter, callback=callback, **kwargs)
        except _UserStop as stop:
            x, status, iters = stop.x, Status.USER_STOP, stop.iteration
        except RuntimeError as err:  # lgmres: "Preconditioner returned a zero vector"
            if "reconditioner" not in str(err):
                raise
            x, status, iters = np.array(x_in, copy=True), Status.PC_FAILED, state["calls"]
        if status is None:
            calls = state["calls"]
            if before:
                iters = calls - 1 if info == 0 else (info if info > 0 else calls)
            else:
                iters = calls
            x = np.asarray(x).reshape(-1)
            if not bool(np.isfinite(x).all()):
                status = Status.NANORINF
            elif info == 0:
                status = converged_status(0.0, pb)
            elif info > 0:
                status = Status.MAXITER if iters >= pb.maxiter else Status.STAGNATION
            else:
                status = Status.BREAKDOWN
            if track and status is not Status.NANORINF and state["notified"] < iters and iters > 0:
                try:
                    notify(iters, x)
                except _UserStop:
                    pass  # the solve has already ended
        extras = {"scipy_info": info, "delegated_to": f"scipy.sparse.linalg.{self._scipy_name}",
                  "monitor_matvecs": counter.monitor_matvec}
        if status in (Status.RTOL, Status.ATOL) and info == 0:
            # scipy claims convergence on its own residual: Solver.solve confirms it on b − A x
            return Outcome(x, status, iters, float("nan"), counter.matvec, counter.prec, history, extras)
        if status is Status.NANORINF:
            rn = float("nan")
        else:
            rn = pb.norm(pb.residual(x))
            counter.matvec += 1
        if status is Status.USER_STOP and rn <= pb.tol:
            extras["tolerance_met"] = True
        return Outcome(x, status, iters, rn, counter.matvec, counter.prec, history, extras, rnorm_is_true=True)


# ------------------------------------------------------------------------------ the methods
class CGS(_Delegated):
    """Conjugate gradient squared, delegated to `scipy.sparse.linalg.cgs`.

    Not native: krylovlab runs scipy's function; see
    `krylovlab.krylov.delegated` for what it adds (validation, status
    mapping, true-residual confirmation, counting, monitors).

    Parameters
    ----------
    A, rtol, atol, maxiter, M, monitors, history
        See `krylovlab.Solver`; ``maxiter`` defaults to 10·n (scipy's).
    callback : callable, optional
        scipy's ``callback(xk)``, passed to scipy unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import CGS
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((16, 16)); b = np.ones(A.shape[0])
    >>> res = CGS(A, rtol=1e-8).solve(b)
    >>> res.converged, bool(np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b))
    (True, True)
    """

    method = "cgs"
    _scipy_name = "cgs"


class BiCG(_Delegated):
    """Biconjugate gradients, delegated to `scipy.sparse.linalg.bicg`.

    Not native (see `krylovlab.krylov.delegated`).  Needs products with Aᴴ
    and, with a preconditioner, Mᴴ (a matrix, a `LinearOperator` with
    ``rmatvec``, or `Jacobi`).

    Parameters
    ----------
    A, rtol, atol, maxiter, M, monitors, history
        See `krylovlab.Solver`; ``maxiter`` defaults to 10·n.
    callback : callable, optional
        scipy's ``callback(xk)``, passed to scipy unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import BiCG
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((16, 16)); b = np.ones(A.shape[0])
    >>> BiCG(A, rtol=1e-8).solve(b).converged
    True
    """

    method = "bicg"
    _scipy_name = "bicg"


class QMR(_Delegated):
    """Quasi-minimal residual, delegated to `scipy.sparse.linalg.qmr`.

    Not native (see `krylovlab.krylov.delegated`).  Needs products with Aᴴ.

    Parameters
    ----------
    A, rtol, atol, maxiter, monitors, history
        See `krylovlab.Solver`; ``maxiter`` defaults to 10·n.
    M1, M2 : preconditioner, optional
        Left and right preconditioners (scipy's); each needs its adjoint
        product as well.
    M : preconditioner, optional
        Shorthand for ``M1=M`` (``M2`` the identity); not combinable with
        M1/M2.
    callback : callable, optional
        scipy's ``callback(xk)``, passed to scipy unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import QMR
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((16, 16)); b = np.ones(A.shape[0])
    >>> QMR(A, rtol=1e-8).solve(b).converged
    True
    """

    method = "qmr"
    _scipy_name = "qmr"

    def __init__(self, A=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, M1=None, M2=None, monitors=(),
                 history=False, callback=None):
        if M is not None and (M1 is not None or M2 is not None):
            raise ValueError("QMR: give either M (used as M1) or M1/M2, not both")
        self._M1_source, self._M2_source = M1, M2
        self.M1 = self.M2 = None
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=M, monitors=monitors, history=history,
                         callback=callback)

    def update_operator(self, A, M=None) -> None:
        super().update_operator(A, M)
        self.M1 = as_preconditioner(self._M1_source, self.A.n, name="M1")
        self.M2 = as_preconditioner(self._M2_source, self.A.n, name="M2")

    def _scipy_kwargs(self, pb, counter):
        n, dtype = pb.op.n, pb.dtype
        M1 = self.M1 if pb.M is None else pb.M
        out = {}
        if M1 is not None:
            out["M1"] = _counted_prec(M1, n, dtype, counter, "M1")
        if self.M2 is not None:
            out["M2"] = _counted_prec(self.M2, n, dtype, counter, "M2")
        if out:  # scipy needs both once one is given
            ident = spla.LinearOperator((n, n), matvec=lambda r: r.copy(), rmatvec=lambda r: r.copy(),
                                        dtype=dtype)
            out.setdefault("M1", ident)
            out.setdefault("M2", ident)
        return out


class TFQMR(_Delegated):
    """Transpose-free QMR, delegated to `scipy.sparse.linalg.tfqmr`.

    Not native (see `krylovlab.krylov.delegated`).  scipy's stopping test
    uses an upper bound on the residual; krylovlab confirms the true
    residual.

    Parameters
    ----------
    A, rtol, atol, maxiter, M, monitors, history
        See `krylovlab.Solver`; ``maxiter`` defaults to min(10000, 10·n)
        (scipy's).
    callback : callable, optional
        scipy's ``callback(xk)``, passed to scipy unchanged.
    show : bool
        scipy's: print a line when the iteration ends.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import TFQMR
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((16, 16)); b = np.ones(A.shape[0])
    >>> TFQMR(A, rtol=1e-8).solve(b).converged
    True
    """

    method = "tfqmr"
    _scipy_name = "tfqmr"

    def __init__(self, A=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, monitors=(), history=False,
                 callback=None, show=False):
        self.show = bool(show)
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=M, monitors=monitors, history=history,
                         callback=callback)

    def default_maxiter(self, n: int) -> int:
        return max(min(10000, 10 * n), 1)

    def _scipy_kwargs(self, pb, counter):
        return {**super()._scipy_kwargs(pb, counter), "show": self.show}


class LGMRES(_Delegated):
    """LGMRES (GMRES augmented with error approximations), delegated to `scipy.sparse.linalg.lgmres`.

    Not native (see `krylovlab.krylov.delegated`).  ``maxiter`` counts outer
    cycles of ``inner_m`` inner steps.

    Parameters
    ----------
    A, rtol, atol, M, monitors, history
        See `krylovlab.Solver`.
    maxiter : int, optional
        Outer cycles; default 1000 (scipy's).
    inner_m, outer_k, outer_v, store_outer_Av, prepend_outer_v
        scipy's, passed through.  ``outer_v`` (a list of ``(v, Av)`` pairs)
        is updated in place by scipy and can carry vectors between solves.
    callback : callable, optional
        scipy's ``callback(xk)`` (called before each outer cycle), passed
        unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import LGMRES
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((16, 16)); b = np.ones(A.shape[0])
    >>> LGMRES(A, rtol=1e-8).solve(b).converged
    True
    """

    method = "lgmres"
    _scipy_name = "lgmres"
    _callback_before_step = True

    def __init__(self, A=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, monitors=(), history=False,
                 callback=None, inner_m=30, outer_k=3, outer_v=None, store_outer_Av=True,
                 prepend_outer_v=False):
        for name, val in (("inner_m", inner_m), ("outer_k", outer_k)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"LGMRES: {name} must be a positive integer, got {val!r}")
        if outer_v is not None and not isinstance(outer_v, list):
            raise TypeError("LGMRES: outer_v must be a list of (v, Av) tuples")
        self.inner_m, self.outer_k = int(inner_m), int(outer_k)
        self.outer_v = outer_v
        self.store_outer_Av = bool(store_outer_Av)
        self.prepend_outer_v = bool(prepend_outer_v)
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=M, monitors=monitors, history=history,
                         callback=callback)

    def default_maxiter(self, n: int) -> int:
        return 1000

    def _scipy_kwargs(self, pb, counter):
        return {**super()._scipy_kwargs(pb, counter), "inner_m": self.inner_m, "outer_k": self.outer_k,
                "outer_v": self.outer_v, "store_outer_Av": self.store_outer_Av,
                "prepend_outer_v": self.prepend_outer_v}


class GCROTMK(_Delegated):
    """GCROT(m,k), delegated to `scipy.sparse.linalg.gcrotmk`.

    Not native (see `krylovlab.krylov.delegated`).  ``maxiter`` counts outer
    cycles.  For recycling across a sequence of systems see
    `krylovlab.recycle` (GCRO-DR); ``CU`` here is scipy's in-place list.

    Parameters
    ----------
    A, rtol, atol, M, monitors, history
        See `krylovlab.Solver`.
    maxiter : int, optional
        Outer cycles; default 1000 (scipy's).
    m, k, CU, discard_C, truncate
        scipy's, passed through.
    callback : callable, optional
        scipy's ``callback(xk)`` (called before each outer cycle), passed
        unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import GCROTMK
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((16, 16)); b = np.ones(A.shape[0])
    >>> GCROTMK(A, rtol=1e-8).solve(b).converged
    True
    """

    method = "gcrotmk"
    _scipy_name = "gcrotmk"
    _callback_before_step = True

    def __init__(self, A=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, monitors=(), history=False,
                 callback=None, m=20, k=None, CU=None, discard_C=False, truncate="oldest"):
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"GCROTMK: m must be a positive integer, got {m!r}")
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
            raise ValueError(f"GCROTMK: k must be a positive integer or None, got {k!r}")
        if truncate not in ("oldest", "smallest"):
            raise ValueError(f"GCROTMK: truncate must be 'oldest' or 'smallest', got {truncate!r}")
        if CU is not None and not isinstance(CU, list):
            raise TypeError("GCROTMK: CU must be a list of (c, u) tuples")
        self.m, self.k = int(m), None if k is None else int(k)
        self.CU = CU
        self.discard_C = bool(discard_C)
        self.truncate = truncate
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=M, monitors=monitors, history=history,
                         callback=callback)

    def default_maxiter(self, n: int) -> int:
        return 1000

    def _scipy_kwargs(self, pb, counter):
        return {**super()._scipy_kwargs(pb, counter), "m": self.m, "k": self.k, "CU": self.CU,
                "discard_C": self.discard_C, "truncate": self.truncate}
