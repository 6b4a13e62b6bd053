"""Restarted GMRES(m) for general (nonsymmetric, complex) systems.

Saad & Schultz, "GMRES: a generalized minimal residual algorithm for solving
nonsymmetric linear systems", SIAM J. Sci. Stat. Comput. 7 (1986).

Each cycle builds an orthonormal Krylov basis V of A·M by the Arnoldi process
(on the host: modified Gram–Schmidt, scipy's choice, with each subtraction fused
with the next inner product so every basis vector is read once per step; on the
device: CGS2 as block products), reduces the Hessenberg matrix with Givens rotations, and
minimises the residual over x₀ + M·span(V).  The preconditioner is applied on
the **right** (A M u = b, x = M u), so the quantity minimised is the true
residual ‖b − A x‖₂ itself.

Monitored norm: the Arnoldi estimate |gₖ₊₁| of ‖b − A xₖ‖₂ after every inner
iteration; at the end of every cycle the true residual is recomputed, and only
it decides convergence (scipy's inner-tolerance control makes the estimate
stricter when the two disagree).
Workspace: m + 1 basis vectors plus x (m + 2 n-vectors), and an
(m + 1) × m Hessenberg matrix.

``maxiter`` counts inner iterations (matvecs of the Arnoldi process), never
restart cycles; `krylovlab.gmres` translates scipy's cycle count.

Fast path: CSR A on the host, M None or Jacobi, no monitors — all cycles run
in one numba call (`kernels.cpu.gmres_csr`).  Otherwise a Python loop runs over
the numba Gram–Schmidt kernels (host) or CuPy array operations (device).

Guards: happy breakdown (hₖ₊₁,ₖ ≤ ε‖A vₖ‖) ends the cycle; when the true
residual then misses the tolerance A is singular → `Status.BREAKDOWN`.
NaN/Inf → `Status.NANORINF`.  Three cycles in a row without any decrease of
the true residual → `Status.STAGNATION`.
"""

from __future__ import annotations

import math

import numpy as np

from .._result import Status
from .._solver import Outcome, Problem, Solver, converged_status
from ..kernels import cpu

__all__ = ["GMRES"]

_STATUS = {int(s): s for s in Status}

#: extra entries per basis row.  With n a power of two the rows are a power-of-two number of bytes
#: apart, and when the basis lands on transparent huge pages (numpy asks for them on large arrays)
#: every row's i-th entry maps to the same cache sets: the Gram–Schmidt sweeps then thrash L2/L3.
#: Measured here at 128² (n = 16 384): 0.34-0.62 s per solve instead of 0.10 s.  The kernels read
#: only the first n entries of a row.
_BASIS_PAD = 8
#: convert banded CSR matrices to diagonal storage from this many rows (the conversion costs about one
#: product; at 300² the diagonal product takes 130 µs against 270 µs for the threaded CSR one)
_DIA_MIN_ROWS = cpu.DIA_MIN_ROWS


class GMRES(Solver):
    """Restarted GMRES with right preconditioning (see module docstring).

    Parameters
    ----------
    A : matrix-like, optional
        The operator (dense, sparse, LinearOperator ...).
    restart : int
        Krylov dimension m of each cycle (scipy's default, 20); capped at n.
    rtol, atol, maxiter, M, monitors, history
        As for `krylovlab.Solver`; ``maxiter`` counts inner iterations
        (default 10·n).

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import GMRES
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((40, 40))
    >>> b = np.ones(A.shape[0])
    >>> res = GMRES(A, restart=30, rtol=1e-8).solve(b)
    >>> res.converged, bool(np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b))
    (True, True)
    """

    method = "gmres"
    norm = "Arnoldi estimate of ||b - Ax|| (right preconditioning; true residual checked every restart)"
    supports_device = True

    def __init__(self, A=None, *, restart=20, rtol=1e-5, atol=0.0, maxiter=None, M=None, monitors=(),
                 history=False):
        if isinstance(restart, bool) or not isinstance(restart, (int, np.integer)) or restart < 1:
            raise ValueError(f"restart must be a positive integer, got {restart!r}")
        self.restart = int(restart)
        #: restart-cycle limit used by the scipy drop-in (None: no limit)
        self._max_cycles: int | None = None
        #: called as ``fn(x)`` after every restart cycle (used by scipy's callback_type='x')
        self._cycle_callback = None
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=M, monitors=monitors, history=history)

    def _iterate(self, pb: Problem) -> Outcome:
        if pb.jit_ready and self._cycle_callback is None:
            return self._iterate_jitted(pb)
        return self._iterate_python(pb)

    def _status(self, code: int, pb: Problem) -> Status:
        st = _STATUS[int(code)]
        return converged_status(0.0, pb) if st == Status.RTOL else st

    # ------------------------------------------------------------------ numba fast path
    def _iterate_jitted(self, pb: Problem) -> Outcome:
        j = pb.jit_inputs()
        # right preconditioning by D⁻¹ folded into the matrix (A·D⁻¹): it costs nothing per step
        data_pc = j.data if pb.M is None else j.data * j.inv_diag[j.indices]
        n = pb.b.shape[0]
        m = min(self.restart, n)
        cycles_left = 0 if self._max_cycles is None else max(self._max_cycles, 1)
        # the Arnoldi basis, one vector per row; rows padded by 8 entries (see _BASIS_PAD)
        V = np.empty((m + 1, n + _BASIS_PAD), dtype=pb.dtype)
        # banded matrices (stencils): the Arnoldi products in diagonal storage, no column indices (for a
        # constant-coefficient stencil one value per diagonal and a mask where it meets the boundary)
        offs, vals = cpu.dia_for_solver(j.indptr, j.indices, data_pc, _DIA_MIN_ROWS)
        it, code, rn, nmv, cycles = cpu.gmres_csr(j.indptr, j.indices, j.data, data_pc, j.inv_diag, pb.b, pb.x,
                                                  pb.tol, pb.maxiter, m, cycles_left, j.hist, j.x0_nonzero,
                                                  j.parallel, j.eps, True, V, cpu.mgs_blocks_for(n, j.parallel),
                                                  offs, vals)
        history = pb.history_of(j, it)
        nprec = 0 if pb.M is None else int(it + cycles)
        return Outcome(pb.x, self._status(code, pb), int(it), float(rn), nmatvec=int(nmv), nprec=nprec,
                       history=history, extras={"path": "jitted", "restart": m, "cycles": int(cycles),
                               "storage": cpu.dia_storage_name(offs, vals)},
                       rnorm_is_true=True)

    # -------------------------------------------------------------- generic path
    def _iterate_python(self, pb: Problem) -> Outcome:
        if pb.backend.is_gpu:
            return self._loop(pb)
        from threadpoolctl import threadpool_limits

        # a user M may call BLAS; keep one pool at one thread for the whole solve
        with threadpool_limits(limits=1, user_api="blas"):
            return self._loop(pb)

    def _loop(self, pb: Problem) -> Outcome:
        xp = pb.xp
        gpu = pb.backend.is_gpu
        n = pb.b.shape[0]
        m = min(self.restart, n)
        dtype = pb.dtype
        eps = float(np.finfo(dtype).eps)
        x, b = pb.x, pb.b
        parallel = cpu.use_parallel(n)
        mgs_blocks = cpu.mgs_blocks_for(n, parallel)
        if not gpu:
            combine = cpu.gs_combine.parallel if parallel else cpu.gs_combine.serial
        V = xp.empty((m + 1, n), dtype=dtype)
        H = np.zeros((m + 1, m), dtype=dtype)
        cs = np.zeros(m)
        sn = np.zeros(m, dtype=dtype)
        g = np.zeros(m + 1, dtype=dtype)
        h1 = np.zeros(m + 1, dtype=dtype)
        h2 = np.zeros(m + 1, dtype=dtype)
        y = np.zeros(m, dtype=dtype)
        empty = np.empty(0, dtype=dtype)
        nmv = nprec = 0
        uses_m = pb.M is not None

        if pb.x0_given and bool(xp.any(x)):
            pb.residual(x, V[0])  # r ← b − A x0
            nmv += 1
        else:
            V[0] = b
        rnorm = pb.norm(V[0])
        history = [rnorm] if pb.record_history else None
        if not math.isfinite(rnorm):
            return Outcome(x, Status.NANORINF, 0, rnorm, nmv, nprec, history, rnorm_is_true=True)
        if rnorm <= pb.tol:
            return Outcome(x, converged_status(rnorm, pb), 0, rnorm, nmv, nprec, history, rnorm_is_true=True)

        def correction(k):
            """x-correction M·V_k·y for the current cycle (host path: into a fresh vector)."""
            cpu.hessenberg_solve(H, g, k, y)
            if gpu:
                z = V[:k].T @ xp.asarray(y[:k])
            else:
                z = np.zeros(n, dtype=dtype)
                combine(V, k, y, empty, z)  # z ← V_k y
            if uses_m:
                return pb.precond(z)
            return z

        it = cycles = 0
        ptol, ptol_factor = pb.tol, 1.0
        best, stalled = rnorm, 0
        status = None
        w_pc = xp.empty(n, dtype=dtype) if uses_m else None
        while status is None:
            V[0] *= 1.0 / rnorm  # v₀ ← r / ‖r‖
            g[:] = 0
            g[0] = rnorm
            est, k, breakdown, stop = rnorm, 0, False, False
            for j in range(m):
                w = V[j + 1]
                if uses_m:
                    pb.precond(V[j], w_pc)  # w ← A M v_j
                    nprec += 1
                    pb.matvec(w_pc, w)
                else:
                    pb.matvec(V[j], w)  # w ← A v_j
                nmv += 1
                # GPU: CGS2 as block products (few large kernels); host: fused MGS (as jitted)
                if gpu:
                    Vj = V[: j + 1]
                    h0sq = float(xp.vdot(w, w).real)
                    c1 = Vj.conj() @ w
                    w -= Vj.T @ c1
                    c2 = Vj.conj() @ w
                    w -= Vj.T @ c2
                    hsq = float(xp.vdot(w, w).real)
                    h1[: j + 1] = c1.get()
                    h2[: j + 1] = c2.get()
                else:
                    h0sq, hsq = cpu.mgs_twice_if_tiny(V, j + 1, w, h1, h2, mgs_blocks, j % 2 == 1)
                hnext = math.sqrt(hsq)
                it += 1
                k = j + 1
                if not (math.isfinite(hnext) and math.isfinite(h0sq)):
                    if history is not None:
                        history.append(float("nan"))
                    return Outcome(x, Status.NANORINF, it, float("nan"), nmv, nprec, history,
                                   extras={"path": "python", "restart": m, "cycles": cycles})
                H[: j + 1, j] = h1[: j + 1] + h2[: j + 1]
                if hnext <= eps * math.sqrt(h0sq):  # happy breakdown
                    H[j + 1, j] = 0
                    breakdown = True
                else:
                    H[j + 1, j] = hnext
                    w *= 1.0 / hnext  # v_{j+1} ← w / h_{j+1,j}
                for q in range(j):  # earlier rotations on column j
                    u, v = H[q, j], H[q + 1, j]
                    H[q, j] = cs[q] * u + sn[q] * v
                    H[q + 1, j] = -np.conj(sn[q]) * u + cs[q] * v
                c, s, rho = cpu.givens(H[j, j], H[j + 1, j])
                cs[j], sn[j] = c, s
                H[j, j], H[j + 1, j] = rho, 0
                gj = g[j]
                g[j], g[j + 1] = c * gj, -np.conj(s) * gj
                est = float(abs(g[j + 1]))
                if history is not None:
                    history.append(est)
                kk = k
                if pb.notify(it, est, lambda: x + correction(kk)):
                    stop = True
                if stop or est <= ptol or breakdown or it >= pb.maxiter:
                    break
            # x ← x + M V_k y
            x += correction(k)
            nprec += 1 if uses_m else 0
            cycles += 1
            pb.residual(x, V[0])  # r ← b − A x
            nmv += 1
            rnorm = pb.norm(V[0])
            if self._cycle_callback is not None:
                self._cycle_callback(x)
            if not math.isfinite(rnorm):
                status = Status.NANORINF
            elif rnorm <= pb.tol:
                status = Status.HAPPY_BREAKDOWN if breakdown else converged_status(rnorm, pb)
            elif stop:
                status = Status.USER_STOP
            elif breakdown:
                status = Status.BREAKDOWN
            elif it >= pb.maxiter or (self._max_cycles is not None and cycles >= self._max_cycles):
                status = Status.MAXITER
            else:
                if rnorm < best * (1.0 - 8.0 * eps):
                    best, stalled = rnorm, 0
                else:
                    stalled += 1
                    if stalled >= 3:
                        status = Status.STAGNATION
                if est <= ptol:
                    ptol_factor = max(eps, 0.25 * ptol_factor)
                else:
                    ptol_factor = min(1.0, 1.5 * ptol_factor)
                ptol = est * min(ptol_factor, pb.tol / rnorm)
        return Outcome(x, status, it, rnorm, nmv, nprec, history,
                       extras={"path": "python", "restart": m, "cycles": cycles}, rnorm_is_true=True)
