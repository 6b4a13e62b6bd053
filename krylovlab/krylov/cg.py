"""Conjugate gradients for Hermitian positive definite systems.

Hestenes & Stiefel, "Methods of conjugate gradients for solving linear
systems", J. Res. NBS 49 (1952).  Preconditioned form with M ≈ A⁻¹ (SPD).

Monitored norm: the recursively updated residual ‖r_k‖₂, r_k = b − A x_k in
exact arithmetic; `Solver.solve` confirms convergence on the true residual.
Workspace: 4 n-vectors (x, r, p, q) plus z with a preconditioner.

Fast path: CSR A on the host, M None or diagonal (Jacobi), no monitors — the
whole loop runs in one numba call (`kernels.cpu.cg_csr`).  Otherwise the loop
runs in Python over the backend's kernels (also on the GPU).

Breakdown guards: pᴴAp must keep the sign it had at the first step (a change
or a zero means A is indefinite → `Status.INDEFINITE`); rᴴMr likewise
(→ `Status.PC_FAILED`); NaN/Inf → `Status.NANORINF`.
"""

from __future__ import annotations

import math

import numpy as np

from .._result import Status
from .._solver import Outcome, Problem, Solver
from ..kernels import cpu

__all__ = ["CG"]

_STATUS = {int(s): s for s in Status}
#: banded CSR matrices are read from diagonal storage from this many rows on (see `kernels.cpu._dia`)
_DIA_MIN_ROWS = cpu.DIA_MIN_ROWS


class CG(Solver):
    """Conjugate gradients (see module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import CG
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((64, 64))
    >>> solver = CG(A, rtol=1e-8)
    >>> res = solver.solve(np.ones(A.shape[0]))
    >>> res.converged, res.iterations < 250
    (True, True)
    """

    method = "cg"
    norm = "residual 2-norm ||r_k|| (recursive; confirmed on the true residual)"
    supports_device = True

    def _iterate(self, pb: Problem) -> Outcome:
        return self._iterate_jitted(pb) if pb.jit_ready else self._iterate_python(pb)

    # ------------------------------------------------------------------ numba fast path
    def _iterate_jitted(self, pb: Problem) -> Outcome:
        j = pb.jit_inputs()
        # banded matrices (stencils): the products in diagonal storage, 8 instead of 12 bytes per entry,
        # and for a constant-coefficient stencil one value per diagonal plus a byte per entry where the
        # stencil meets the boundary (2-D Poisson 1000², memory bound: 144 MB of traffic per iteration
        # in CSR, 120 MB by diagonals, 82 MB by constant diagonals)
        offs, vals = cpu.dia_for_solver(j.indptr, j.indices, j.data, _DIA_MIN_ROWS)
        it, code, rn, nmv = cpu.cg_csr(j.indptr, j.indices, j.data, j.inv_diag, pb.b, pb.x, pb.tol,
                                       pb.maxiter, j.hist, j.x0_nonzero, j.parallel, offs, vals)
        history = pb.history_of(j, it)
        nprec = 0 if pb.M is None else it + 1
        return Outcome(pb.x, _STATUS[int(code)], int(it), float(rn), nmatvec=int(nmv), nprec=nprec,
                       history=history, extras={"path": "jitted", "storage": cpu.dia_storage_name(offs, vals)})

    # -------------------------------------------------------------- generic path
    def _iterate_python(self, pb: Problem) -> Outcome:
        xp = pb.xp
        x, b = pb.x, pb.b
        nmv = nprec = 0
        if pb.x0_given and bool(xp.any(x)):
            r = pb.residual(x)  # r ← b − A x0
            nmv += 1
        else:
            r = b.copy()
        rn = pb.norm(r)
        history = [rn] if pb.record_history else None
        if rn <= pb.tol:
            return Outcome(x, Status.RTOL, 0, rn, nmv, nprec, history)
        z = pb.precond(r)  # z ← M r
        nprec += 1 if pb.M is not None else 0
        rho = pb.dot(r, z)
        if not math.isfinite(abs(rho)):
            return Outcome(x, Status.PC_FAILED, 0, rn, nmv, nprec, history)
        rho_sign = 1.0 if rho.real > 0 else -1.0
        p = z.copy()
        q = xp.empty_like(r)
        curv_sign = 0.0
        status, it = Status.MAXITER, pb.maxiter
        for k in range(1, pb.maxiter + 1):
            pb.matvec(p, q)  # q ← A p
            nmv += 1
            pap = pb.dot(p, q)
            c = float(pap.real)
            if not math.isfinite(c):
                status, it = Status.NANORINF, k
                break
            curv_sign = curv_sign or (1.0 if c > 0 else -1.0)
            if c == 0.0 or c * curv_sign < 0:
                status, it = Status.INDEFINITE, k - 1
                break
            alpha = rho / pap
            rn = math.sqrt(float(pb.k.cg_update(alpha, p, q, x, r)))  # x ← x + αp; r ← r − αq
            if history is not None:
                history.append(rn)
            if not math.isfinite(rn):
                status, it = Status.NANORINF, k
                break
            if rn <= pb.tol:
                status, it = Status.RTOL, k
                pb.notify(k, rn, lambda: x)
                break
            if pb.notify(k, rn, lambda: x):
                status, it = Status.USER_STOP, k
                break
            pb.precond(r, z)
            nprec += 1 if pb.M is not None else 0
            rho_new = pb.dot(r, z)
            if not (float(rho_new.real) * rho_sign > 0):
                status, it = Status.PC_FAILED, k
                break
            pb.k.axpby(1.0, z, rho_new / rho, p)  # p ← z + β p
            rho = rho_new
        return Outcome(x, status, it, rn, nmv, nprec, history)
