"""BiCGSTAB for general (nonsymmetric, complex) systems.

van der Vorst, "Bi-CGSTAB: a fast and smoothly converging variant of Bi-CG for
the solution of nonsymmetric linear systems", SIAM J. Sci. Stat. Comput. 13
(1992).  Right preconditioning (p̂ = M p, ŝ = M s), as in scipy, so the
recurrence carries the unpreconditioned residual.  Shadow residual r̃ = r₀.

Monitored norm: the recursively updated residual ‖r_k‖₂ (= ‖b − A x_k‖₂ in
exact arithmetic); `Solver.solve` confirms convergence on the true residual.
One iteration = two products with A (and two with M).
Workspace: 7 n-vectors (x, r, r̃, p, v, t, plus p̂/ŝ with a general M).

Fast path: CSR A on the host, M None or Jacobi, no monitors — the whole loop
runs in one numba call (`kernels.cpu.bicgstab_csr`), with Jacobi folded into
the matrix as A·D⁻¹.  Otherwise a Python loop over the backend's kernels.

Guards: ρ = r̃ᴴr vanishing (relative to ‖r̃‖‖r‖), r̃ᴴv = 0, and ω = 0
(tᴴs vanishing relative to ‖t‖‖s‖) stop with `Status.BREAKDOWN`
(``extras["breakdown"]`` says which); NaN/Inf → `Status.NANORINF`.
"""

from __future__ import annotations

import math

import numpy as np

from .._result import Status
from .._solver import Outcome, Problem, Solver, converged_status
from ..kernels import cpu

__all__ = ["BiCGSTAB"]

_STATUS = {int(s): s for s in Status}
_KIND = {0: None, 1: "rho", 2: "omega", 3: "rv"}


class BiCGSTAB(Solver):
    """Stabilised bi-conjugate gradients (see module docstring).

    Parameters
    ----------
    A : matrix-like, optional
    rtol, atol, maxiter, M, monitors, history
        As for `krylovlab.Solver`; ``maxiter`` counts BiCGSTAB iterations
        (two matvecs each; default 10·n).

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import BiCGSTAB
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((40, 40))
    >>> b = np.ones(A.shape[0])
    >>> res = BiCGSTAB(A, rtol=1e-8).solve(b)
    >>> res.converged, bool(np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b))
    (True, True)
    """

    method = "bicgstab"
    norm = "residual 2-norm ||r_k|| (recursive; confirmed on the true residual)"
    supports_device = True

    def _iterate(self, pb: Problem) -> Outcome:
        return self._iterate_jitted(pb) if pb.jit_ready else self._iterate_python(pb)

    def _outcome(self, pb, x, code, it, rn, nmv, nprec, history, kind, path):
        st = _STATUS[int(code)] if not isinstance(code, Status) else code
        if st == Status.RTOL:
            st = converged_status(rn, pb)
        extras = {"path": path}
        if _KIND.get(kind):
            extras["breakdown"] = _KIND[kind]
        return Outcome(x, st, int(it), float(rn), nmatvec=int(nmv), nprec=int(nprec), history=history,
                       extras=extras)

    # ------------------------------------------------------------------ numba fast path
    def _iterate_jitted(self, pb: Problem) -> Outcome:
        j = pb.jit_inputs()
        # right preconditioning by D⁻¹ folded into the matrix: A·D⁻¹
        data_pc = j.data if pb.M is None else j.data * j.inv_diag[j.indices]
        it, code, rn, nmv, kind = cpu.bicgstab_csr(j.indptr, j.indices, j.data, data_pc, j.inv_diag, pb.b, pb.x,
                                                   pb.tol, pb.maxiter, j.hist, j.x0_nonzero, j.parallel, j.eps)
        history = pb.history_of(j, it)
        nprec = 0 if pb.M is None else nmv - int(j.x0_nonzero)
        return self._outcome(pb, pb.x, code, it, rn, nmv, nprec, history, kind, "jitted")

    # -------------------------------------------------------------- generic path
    def _iterate_python(self, pb: Problem) -> Outcome:
        if pb.backend.is_gpu:
            return self._loop(pb)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return self._loop(pb)

    def _loop(self, pb: Problem) -> Outcome:
        xp, k = pb.xp, pb.k
        x, b = pb.x, pb.b
        eps = float(np.finfo(pb.dtype).eps)
        tiny = eps * eps
        uses_m = pb.M is not None
        nmv = nprec = 0
        if pb.x0_given and bool(xp.any(x)):
            r = pb.residual(x)  # r ← b − A x0
            nmv += 1
        else:
            r = b.copy()
        rn = pb.norm(r)
        history = [rn] if pb.record_history else None
        path = "python"
        if not math.isfinite(rn):
            return self._outcome(pb, x, Status.NANORINF, 0, rn, nmv, nprec, history, 0, path)
        if rn <= pb.tol:
            return self._outcome(pb, x, Status.RTOL, 0, rn, nmv, nprec, history, 0, path)
        rt = r.copy()
        rtn = rn
        p = r.copy()
        v = xp.zeros_like(r)
        t = xp.empty_like(r)
        ph = xp.empty_like(r)
        sh = xp.empty_like(r)
        rho = k.dot(rt, r)
        alpha = omega = rho_prev = None
        for it in range(1, pb.maxiter + 1):
            if it > 1:
                beta = (rho / rho_prev) * (alpha / omega)
                k.axpby(-omega, v, 1.0, p)  # p ← p − ω v
                k.axpby(1.0, r, beta, p)  # p ← r + β p
            if uses_m:
                pb.precond(p, ph)  # p̂ ← M p
                nprec += 1
            else:
                ph = p
            pb.matvec(ph, v)  # v ← A p̂
            nmv += 1
            rv = k.dot(rt, v)
            if not math.isfinite(abs(complex(rv))):
                return self._outcome(pb, x, Status.NANORINF, it - 1, rn, nmv, nprec, history, 0, path)
            if rv == 0:
                return self._outcome(pb, x, Status.BREAKDOWN, it - 1, rn, nmv, nprec, history, 3, path)
            alpha = rho / rv
            k.axpby(-alpha, v, 1.0, r)  # s ← r − α v (in r)
            sn = pb.norm(r)
            if not math.isfinite(sn):
                return self._outcome(pb, x, Status.NANORINF, it, sn, nmv, nprec, history, 0, path)
            if sn <= pb.tol:
                k.axpby(alpha, ph, 1.0, x)  # x ← x + α p̂
                if history is not None:
                    history.append(sn)
                return self._outcome(pb, x, Status.RTOL, it, sn, nmv, nprec, history, 0, path)
            if uses_m:
                pb.precond(r, sh)  # ŝ ← M s
                nprec += 1
            else:
                sh = r
            pb.matvec(sh, t)  # t ← A ŝ
            nmv += 1
            ts = k.dot(t, r)
            tt = float(abs(k.dot(t, t)))
            if not (math.isfinite(tt) and math.isfinite(abs(complex(ts)))):
                return self._outcome(pb, x, Status.NANORINF, it, sn, nmv, nprec, history, 0, path)
            if tt == 0.0 or abs(ts) <= tiny * math.sqrt(tt) * sn:
                k.axpby(alpha, ph, 1.0, x)
                if history is not None:
                    history.append(sn)
                return self._outcome(pb, x, Status.BREAKDOWN, it, sn, nmv, nprec, history, 2, path)
            omega = ts / tt
            k.axpby(alpha, ph, 1.0, x)  # x ← x + α p̂ + ω ŝ
            k.axpby(omega, sh, 1.0, x)
            k.axpby(-omega, t, 1.0, r)  # r ← s − ω t
            rn = pb.norm(r)
            if history is not None:
                history.append(rn)
            if not math.isfinite(rn):
                return self._outcome(pb, x, Status.NANORINF, it, rn, nmv, nprec, history, 0, path)
            if rn <= pb.tol:
                pb.notify(it, rn, lambda: x)
                return self._outcome(pb, x, Status.RTOL, it, rn, nmv, nprec, history, 0, path)
            if pb.notify(it, rn, lambda: x):
                return self._outcome(pb, x, Status.USER_STOP, it, rn, nmv, nprec, history, 0, path)
            rho_prev, rho = rho, k.dot(rt, r)
            if rho == 0 or abs(rho) <= tiny * rtn * rn:
                return self._outcome(pb, x, Status.BREAKDOWN, it, rn, nmv, nprec, history, 1, path)
        return self._outcome(pb, x, Status.MAXITER, pb.maxiter, rn, nmv, nprec, history, 0, path)
