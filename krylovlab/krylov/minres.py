"""MINRES: minimum residual iteration for Hermitian, possibly indefinite systems.

Algorithm
    Paige & Saunders, "Solution of sparse indefinite systems of linear
    equations", SIAM J. Numer. Anal. 12(4):617-629 (1975).  A (preconditioned)
    Lanczos process builds a tridiagonal T_k; a running QR factorisation of
    T_k by Givens rotations gives the iterate x_k that minimises the residual
    over x0 + K_k, updated with a three-term recurrence for the search
    directions w_k.  No vectors beyond the last few are stored.

    ``shift`` solves (A − shift·I) x = b, as scipy's ``minres`` does; the
    preconditioner M ≈ A⁻¹ must be Hermitian positive definite.

Monitored norm
    The residual 2-norm ‖b − A x_k‖₂, obtained from a recurrence:
    without M it is the QR quantity φ̄_k (= ‖r_k‖₂ in exact arithmetic, no
    extra work); with M, MINRES minimises ‖r‖ in the M-norm instead, so the
    residual vector itself is carried along,
    ``r_k = s_k² r_{k−1} − φ̄_{k+1} c_k q_{k+1}`` (q the Lanczos vectors of the
    unpreconditioned space), one fused pass per iteration.  Convergence is
    ``‖r_k‖₂ ≤ max(atol, rtol·‖b‖₂)``, then confirmed on the true residual by
    `Solver.solve`.  This is stricter than scipy's own stopping test
    (‖r‖ ≤ rtol·‖A‖·‖x‖ with estimated ‖A‖), so it never stops earlier than
    scipy would with the same rtol.

Workspace
    8 n-vectors (x, v, three rotating Lanczos buffers, three directions w),
    plus 2 with a preconditioner (z = M q and the carried residual).

Guards
    rᴴ M r ≤ 0 or non-finite → `Status.PC_FAILED` (M is not positive
    definite; scipy raises ValueError here); NaN/Inf → `Status.NANORINF`; an
    invariant Krylov space (β_{k+1} = 0) → `Status.HAPPY_BREAKDOWN`; a
    least-squares solution of an inconsistent (singular) system, detected as
    ‖A r‖ ≤ 10·eps·‖A‖·‖r‖, → `Status.STAGNATION` (scipy reports info 0 with
    its istop = 2 here; krylovlab does not call that convergence).

Fast path
    CSR A on the host, M None or diagonal (Jacobi), no monitors: the whole
    iteration runs in one numba call (`_minres_csr`), serial below
    `kernels.cpu.PARALLEL_THRESHOLD` unknowns and threaded above.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._operator import Operator, as_operator, as_preconditioner
from .._result import Status
from .._solver import Outcome, Problem, Solver, converged_status
from ..kernels import cpu
from ..kernels.cpu._blas import jacobi_parallel, jacobi_serial, spmv_parallel, spmv_serial
from ._threads import single_blas_thread

__all__ = ["MINRES"]

_STATUS = {int(s): s for s in Status}
# keep in sync with krylovlab._result.Status
_RTOL, _HAPPY, _MAXITER, _NANORINF, _PC_FAILED, _STAGNATION = 2, 5, -3, -9, -11, -12


class MINRES(Solver):
    """Minimum residual method for Hermitian (possibly indefinite) systems.

    See the module docstring for the algorithm, the monitored norm and the
    guards.

    Parameters
    ----------
    A : matrix-like, optional
        Hermitian operator (dense, sparse, `LinearOperator`).  Not checked for
        symmetry (scipy's ``check=True`` costs two products); a non-Hermitian
        A is caught by the final true-residual check, never reported as
        converged.
    shift : float
        Solve ``(A − shift·I) x = b``.
    rtol, atol : float
        Stop when ``‖b − A x‖₂ ≤ max(atol, rtol·‖b‖₂)``.
    maxiter : int, optional
        Iteration limit; default ``5·n`` (scipy's).
    M : preconditioner, optional
        Hermitian positive definite approximation of A⁻¹.
    monitors, history
        See `krylovlab.Solver`.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from krylovlab import MINRES
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((40,)) - 1.0 * sp.identity(40)     # symmetric indefinite
    >>> b = np.ones(40)
    >>> res = MINRES(A, rtol=1e-10).solve(b)
    >>> res.converged, bool(np.linalg.norm(b - A @ res.x) <= 1e-10 * np.linalg.norm(b))
    (True, True)
    """

    method = "minres"
    norm = "residual 2-norm ||b - Ax_k|| (MINRES recurrence; confirmed on the true residual)"
    supports_device = True
    maxiter_factor = 5

    def __init__(self, A=None, *, shift=0.0, rtol=1e-5, atol=0.0, maxiter=None, M=None, monitors=(),
                 history=False):
        if isinstance(shift, (bool, str)) or not isinstance(shift, (int, float, np.integer, np.floating)):
            raise TypeError(f"shift must be a real number, got {shift!r}")
        if not math.isfinite(float(shift)):
            raise ValueError(f"shift must be finite, got {shift!r}")
        self.shift = float(shift)
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=M, monitors=monitors, history=history)

    def update_operator(self, A, M=None) -> None:
        """Set a new operator; with a nonzero ``shift`` the stored operator is A − shift·I."""
        old = self.A
        op = as_operator(A, name="A")
        if self.shift != 0.0:
            op = _shifted(op, self.shift)
        self.A = op
        if M is not None:
            self._M_source = M
        self.M = as_preconditioner(self._M_source, self.A.n, name="M")
        self._operator_changed(old, self.A)

    # ----------------------------------------------------------------------- dispatch
    def _iterate(self, pb: Problem) -> Outcome:
        if pb.jit_ready:
            return self._iterate_jitted(pb)
        if pb.backend.is_gpu:
            return self._iterate_python(pb)
        with single_blas_thread():
            return self._iterate_python(pb)

    # ------------------------------------------------------------------ numba fast path
    def _iterate_jitted(self, pb: Problem) -> Outcome:
        j = pb.jit_inputs()
        it, code, rn, nmv = _minres_csr(j.indptr, j.indices, j.data, j.inv_diag, pb.b, pb.x, pb.tol, pb.maxiter,
                                        j.hist, j.x0_nonzero, j.parallel, j.eps)
        status = _STATUS[int(code)]
        if status == Status.RTOL:
            status = converged_status(rn, pb)
        history = pb.history_of(j, it)
        nprec = 0 if pb.M is None or (it == 0 and status.value > 0) else int(it) + 1
        return Outcome(pb.x, status, int(it), float(rn), nmatvec=int(nmv), nprec=nprec, history=history,
                       extras={"path": "jitted"})

    # -------------------------------------------------------------- generic path
    def _iterate_python(self, pb: Problem) -> Outcome:
        xp = pb.xp
        x, b = pb.x, pb.b
        precond = pb.M is not None
        eps = float(np.finfo(pb.dtype).eps)
        nmv = nprec = 0
        if pb.x0_given and bool(xp.any(x)):
            r2 = pb.residual(x)  # r ← b − A x0
            nmv += 1
        else:
            r2 = b.copy()
        rn = pb.norm(r2)
        history = [rn] if pb.record_history else None
        if rn <= pb.tol:
            return Outcome(x, converged_status(rn, pb), 0, rn, nmv, nprec, history, rnorm_is_true=True)
        if precond:
            y = pb.precond(r2)  # z ← M r
            nprec += 1
            beta_sq = float(pb.dot(r2, y).real)  # β₁² = rᴴ M r
            if not math.isfinite(beta_sq) or beta_sq <= 0.0:
                return Outcome(x, Status.PC_FAILED, 0, rn, nmv, nprec, history)
            res = r2.copy()  # explicit residual, only needed with M
        else:
            y = r2
            beta_sq = rn * rn
            res = None
        beta1 = math.sqrt(beta_sq)
        beta, oldb = beta1, 0.0
        dbar = epsln = 0.0
        phibar = beta1
        cs, sn = -1.0, 0.0
        tnorm2 = 0.0
        r1 = xp.zeros_like(r2)
        w = xp.zeros_like(x)
        w1 = xp.zeros_like(x)
        w2 = xp.zeros_like(x)
        status, it = Status.MAXITER, pb.maxiter
        for k in range(1, pb.maxiter + 1):
            v = y * (1.0 / beta)  # v ← z / β  (next Lanczos vector, M-orthonormal)
            p = pb.matvec(v)  # p ← A v
            nmv += 1
            if k >= 2:
                p -= (beta / oldb) * r1  # p ← p − (β_k/β_{k−1}) q_{k−1}
            alfa = float(pb.dot(v, p).real)  # α ← vᴴ p
            p -= (alfa / beta) * r2  # p ← p − (α/β_k) q_k
            r1, r2 = r2, p
            if precond:
                y = pb.precond(r2)  # z ← M p
                nprec += 1
                bsq = float(pb.dot(r2, y).real)
            else:
                y = r2
                bsq = pb.norm(r2) ** 2
            if not math.isfinite(bsq) or not math.isfinite(alfa):
                status, it = Status.NANORINF, k
                break
            if bsq < 0.0:
                status, it = Status.PC_FAILED, k
                break
            oldb, beta = beta, math.sqrt(bsq)
            tnorm2 += alfa * alfa + oldb * oldb + beta * beta
            # apply the previous rotation, then build the new one
            oldeps = epsln
            delta = cs * dbar + sn * alfa
            gbar = sn * dbar - cs * alfa
            epsln = sn * beta
            dbar = -cs * beta
            root = math.hypot(gbar, dbar)  # ‖A r_{k−1}‖ / ‖r_{k−1}‖ (unpreconditioned case)
            gamma = max(math.hypot(gbar, beta), eps)
            cs, sn = gbar / gamma, beta / gamma
            phi = cs * phibar
            phibar = sn * phibar
            # w ← (v − ε w_{k−2} − δ w_{k−1}) / γ;  x ← x + φ w
            w1, w2, w = w2, w, w1
            w[...] = v
            w -= oldeps * w1
            w -= delta * w2
            w *= 1.0 / gamma
            pb.k.axpby(phi, w, 1.0, x)
            if precond:
                # r ← s² r − φ̄ c q_{k+1}
                res *= sn * sn
                if beta > 0.0:
                    res -= (phibar * cs / beta) * r2
                rn = pb.norm(res)
            else:
                rn = abs(phibar)
            if history is not None:
                history.append(rn)
            if not math.isfinite(rn):
                status, it = Status.NANORINF, k
                break
            anorm = math.sqrt(tnorm2)
            if rn <= pb.tol:
                status, it = converged_status(rn, pb), k
                pb.notify(k, rn, lambda: x)
                break
            if beta <= 10 * eps * beta1:
                status, it = Status.HAPPY_BREAKDOWN, k
                pb.notify(k, rn, lambda: x)
                break
            if anorm > 0 and root <= 10 * eps * anorm:
                status, it = Status.STAGNATION, k
                pb.notify(k, rn, lambda: x)
                break
            if pb.notify(k, rn, lambda: x):
                status, it = Status.USER_STOP, k
                break
        return Outcome(x, status, it, rn, nmv, nprec, history)


def _shifted(op: Operator, shift: float) -> Operator:
    """The operator A − shift·I, keeping CSR and dense forms explicit."""
    if op.kind == "csr" and not op.device:
        a = (op.csr - shift * sp.identity(op.n, dtype=op.dtype, format="csr")).tocsr()
        a.sum_duplicates()
        a.sort_indices()
        return as_operator(a, name="A")
    if op.kind == "dense" and not op.device:
        return as_operator(op.dense - shift * np.eye(op.n, dtype=op.dtype), name="A")
    base = op.aslinearoperator() if not op.device else None
    if base is None:
        raise TypeError("MINRES: shift is not supported for device operators; pass A - shift*I instead")
    lin = spla.LinearOperator(op.shape, matvec=lambda x: base.matvec(x).reshape(-1) - shift * x.reshape(-1),
                              rmatvec=lambda x: base.rmatvec(x).reshape(-1) - shift * x.reshape(-1),
                              dtype=op.dtype)
    return as_operator(lin, name="A")


# ------------------------------------------------------------------------------ numba loop
_jit = dict(cache=True, nogil=True)


@nb.njit(**_jit)
def _lanczos_a_serial(p, r1, c1, v):
    """p ← p − c₁ r₁; return Re(vᴴ p), accumulated in double (real for Hermitian A)."""
    s = 0.0
    for i in range(p.shape[0]):
        pi = p[i] - c1 * r1[i]
        p[i] = pi
        s += (np.conj(v[i]) * pi).real
    return s


@nb.njit(parallel=True, **_jit)
def _lanczos_a_parallel(p, r1, c1, v):
    s = 0.0
    for i in nb.prange(p.shape[0]):
        pi = p[i] - c1 * r1[i]
        p[i] = pi
        s += (np.conj(v[i]) * pi).real
    return s


@nb.njit(**_jit)
def _lanczos_b_serial(p, r2, c2):
    """p ← p − c₂ r₂; return ‖p‖²."""
    s = 0.0
    for i in range(p.shape[0]):
        pi = p[i] - c2 * r2[i]
        p[i] = pi
        s += pi.real * pi.real + pi.imag * pi.imag
    return s


@nb.njit(parallel=True, **_jit)
def _lanczos_b_parallel(p, r2, c2):
    s = 0.0
    for i in nb.prange(p.shape[0]):
        pi = p[i] - c2 * r2[i]
        p[i] = pi
        s += pi.real * pi.real + pi.imag * pi.imag
    return s


@nb.njit(**_jit)
def _scale_serial(y, c, v):
    """v ← c y."""
    for i in range(y.shape[0]):
        v[i] = c * y[i]


@nb.njit(parallel=True, **_jit)
def _scale_parallel(y, c, v):
    for i in nb.prange(y.shape[0]):
        v[i] = c * y[i]


@nb.njit(**_jit)
def _direction_serial(v, w, w1, w2, e, d, g, phi, x):
    """w ← (v − e w₁ − d w₂)/g;  x ← x + φ w."""
    for i in range(x.shape[0]):
        wi = (v[i] - e * w1[i] - d * w2[i]) * g
        w[i] = wi
        x[i] += phi * wi


@nb.njit(parallel=True, **_jit)
def _direction_parallel(v, w, w1, w2, e, d, g, phi, x):
    for i in nb.prange(x.shape[0]):
        wi = (v[i] - e * w1[i] - d * w2[i]) * g
        w[i] = wi
        x[i] += phi * wi


@nb.njit(**_jit)
def _residual_serial(res, a, c, q):
    """res ← a·res − c·q; return ‖res‖²."""
    s = 0.0
    for i in range(res.shape[0]):
        ri = a * res[i] - c * q[i]
        res[i] = ri
        s += ri.real * ri.real + ri.imag * ri.imag
    return s


@nb.njit(parallel=True, **_jit)
def _residual_parallel(res, a, c, q):
    s = 0.0
    for i in nb.prange(res.shape[0]):
        ri = a * res[i] - c * q[i]
        res[i] = ri
        s += ri.real * ri.real + ri.imag * ri.imag
    return s


@nb.njit(**_jit)
def _minres_csr(indptr, indices, data, inv_diag, b, x, tol, maxiter, hist, x0_nonzero, parallel, eps):
    """MINRES on CSR A with no or diagonal preconditioning; x updated in place.

    ``inv_diag`` of length 0 means no preconditioner.  Returns
    ``(iterations, status, ‖r‖, nmatvec)`` where ‖r‖ is the recurrence
    residual 2-norm (see the module docstring).
    """
    n = b.shape[0]
    precond = inv_diag.shape[0] > 0
    record = hist.shape[0] > 0
    # three rotating Lanczos buffers: q_{k-1}, q_k and the new product p
    r1 = np.zeros_like(b)
    r2 = np.empty_like(b)
    p = np.empty_like(b)
    v = np.empty_like(b)
    w = np.zeros_like(b)
    w1 = np.zeros_like(b)
    w2 = np.zeros_like(b)
    z = np.empty_like(b) if precond else r2
    res = np.empty_like(b) if precond else r2
    nmv = 0
    # r ← b − A x0
    if x0_nonzero:
        if parallel:
            spmv_parallel(indptr, indices, data, x, p)
        else:
            spmv_serial(indptr, indices, data, x, p)
        nmv += 1
        for i in range(n):
            r2[i] = b[i] - p[i]
    else:
        r2[:] = b
    rr = 0.0
    for i in range(n):
        rr += r2[i].real * r2[i].real + r2[i].imag * r2[i].imag
    rn = np.sqrt(rr)
    if record:
        hist[0] = rn
    if rn <= tol:
        return 0, _RTOL, rn, nmv
    if precond:
        # z ← M r;  β₁² ← rᴴ z
        bsq = (jacobi_parallel(inv_diag, r2, z) if parallel else jacobi_serial(inv_diag, r2, z)).real
        if not np.isfinite(bsq) or bsq <= 0.0:
            return 0, _PC_FAILED, rn, nmv
        res[:] = r2
    else:
        bsq = rr
    beta1 = np.sqrt(bsq)
    beta = beta1
    oldb = 0.0
    dbar = 0.0
    epsln = 0.0
    phibar = beta1
    cs = -1.0
    sn = 0.0
    tnorm2 = 0.0
    for it in range(1, maxiter + 1):
        y = z if precond else r2
        if parallel:
            _scale_parallel(y, 1.0 / beta, v)  # v ← z / β
            spmv_parallel(indptr, indices, data, v, p)  # p ← A v
        else:
            _scale_serial(y, 1.0 / beta, v)
            spmv_serial(indptr, indices, data, v, p)
        nmv += 1
        c1 = beta / oldb if it >= 2 else 0.0
        # p ← p − (β_k/β_{k−1}) q_{k−1};  α ← vᴴ p
        if parallel:
            alfa = _lanczos_a_parallel(p, r1, c1, v)
        else:
            alfa = _lanczos_a_serial(p, r1, c1, v)
        # p ← p − (α/β_k) q_k;  ‖p‖²
        if parallel:
            pp = _lanczos_b_parallel(p, r2, alfa / beta)
        else:
            pp = _lanczos_b_serial(p, r2, alfa / beta)
        # rotate: q_{k−1} ← q_k, q_k ← p, the retired buffer takes the next product
        tmp = r1
        r1 = r2
        r2 = p
        p = tmp
        if precond:
            bsq = (jacobi_parallel(inv_diag, r2, z) if parallel else jacobi_serial(inv_diag, r2, z)).real
        else:
            bsq = pp
        if not np.isfinite(bsq) or not np.isfinite(alfa):
            return it, _NANORINF, rn, nmv
        if bsq < 0.0:
            return it, _PC_FAILED, rn, nmv
        oldb = beta
        beta = np.sqrt(bsq)
        tnorm2 += alfa * alfa + oldb * oldb + beta * beta
        # previous rotation applied to the new column, then the new rotation
        oldeps = epsln
        delta = cs * dbar + sn * alfa
        gbar = sn * dbar - cs * alfa
        epsln = sn * beta
        dbar = -cs * beta
        root = np.hypot(gbar, dbar)
        gamma = max(np.hypot(gbar, beta), eps)
        cs = gbar / gamma
        sn = beta / gamma
        phi = cs * phibar
        phibar = sn * phibar
        # w ← (v − ε w_{k−2} − δ w_{k−1}) / γ;  x ← x + φ w   (w takes the oldest buffer)
        tmp = w1
        w1 = w2
        w2 = w
        w = tmp
        if parallel:
            _direction_parallel(v, w, w1, w2, oldeps, delta, 1.0 / gamma, phi, x)
        else:
            _direction_serial(v, w, w1, w2, oldeps, delta, 1.0 / gamma, phi, x)
        if precond:
            # r ← s² r − (φ̄ c / β) p_{k+1}
            cq = phibar * cs / beta if beta > 0.0 else 0.0
            if parallel:
                rn = np.sqrt(_residual_parallel(res, sn * sn, cq, r2))
            else:
                rn = np.sqrt(_residual_serial(res, sn * sn, cq, r2))
        else:
            rn = abs(phibar)
        if record:
            hist[it] = rn
        if not np.isfinite(rn):
            return it, _NANORINF, rn, nmv
        if rn <= tol:
            return it, _RTOL, rn, nmv
        if beta <= 10.0 * eps * beta1:
            return it, _HAPPY, rn, nmv
        anorm = np.sqrt(tnorm2)
        if anorm > 0.0 and root <= 10.0 * eps * anorm:
            return it, _STAGNATION, rn, nmv
    return maxiter, _MAXITER, rn, nmv
