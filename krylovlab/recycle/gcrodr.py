"""GCRO-DR: GCRO with deflated restarting, and GMRES-DR.

Algorithm.  Parks, de Sturler, Mackey, Johnson & Maiti, "Recycling Krylov
subspaces for sequences of linear systems", SIAM J. Sci. Comput. 28(5),
1651–1674 (2006).  A k-dimensional recycle space U with C = B·U orthonormal
(B = A·M, right preconditioning) is kept.  Each cycle runs m − k Arnoldi
steps with the projected operator (I − CCᴴ)B, giving B·[U, Vₛ] = [C, Vₛ₊₁]·Ḡ
with Ḡ = [[D, Cᴴ B Vₛ], [0, H̄]]; the residual is minimised over
span([U, Vₛ]) (a GMRES least-squares problem on H̄ followed by a triangular
back-substitution for the U part).  At the end of each cycle the k harmonic
Ritz vectors of B with respect to span([U, Vₛ]) with the smallest |θ|
become the new U, and C = [C, Vₛ₊₁]·Q from a QR of Ḡ·P.  Before the first
cycle on a new system the residual is projected: x ← x + M U Cᴴ r,
r ← (I − CCᴴ) r — the "projection warm start".

The recycle space is kept across `solve` calls.  When the operator (or the
preconditioner) changes, C = B_new·U is recomputed and orthonormalised
(k extra matvecs, reported in ``nmatvec``); when it is the same object, or
the caller says so (``same_operator=True``), that is skipped.  Without a
recycle space the first cycle is a plain GMRES(m) cycle; with
``recycle_dim=0`` the method *is* restarted GMRES(m).  `GMRESDR` is the
same iteration with the recycle space cleared before every solve (GMRES
with deflated restarting inside one solve, Morgan 2002, in its GCRO-DR form).

Monitored norm: the least-squares residual norm of the minimiser (Givens
rotations), which equals ‖b − A x‖₂ in exact arithmetic because the
preconditioner is applied on the right; `Solver.solve` confirms convergence
on the true residual.  ``iterations`` counts Arnoldi steps (one matvec and
one preconditioner application each), so ``maxiter`` bounds them.

Workspace: m + 1 n-vectors for [C, V] (C and V share one array), k for U,
k + m + 1 more transiently while the recycle space is updated, and 3
vectors (x, r, w).  About 2m + 2k + 4 n-vectors in all.

Fast path: CSR A on the host, M None or diagonal (`Jacobi`), no monitors —
each whole cycle runs in one numba call (`kernels.cpu.gcro_cycle_csr`).
Otherwise every step forms B v in Python and hands the orthogonalisation
and rotations to the same numba kernel.  The small dense work (harmonic
Ritz eigenproblem, QR, triangular solves) is done with numpy/scipy on the
host, with BLAS limited to one thread for the whole solve.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla

from .._result import Status
from .._solver import Outcome, Problem, Solver
from ..kernels import cpu
from ._common import blas_single_thread, check_dim

__all__ = ["GCRODR", "GMRESDR", "gcrodr"]

_STATUS = {int(s): s for s in Status}
#: cycles in a row with (relative) residual reduction below _STALL_FACTOR ⇒ STAGNATION
_STALL_CYCLES = 3
_STALL_FACTOR = 1e-6


class GCRODR(Solver):
    """GCRO-DR(m, k): restarted GMRES that recycles a deflation space across solves.

    Parameters
    ----------
    A : matrix-like, optional
        The operator; change it later with `update_operator` or ``solve(b, A=...)``.
    krylov_dim : int
        m, the maximal dimension of the search space in a cycle (default 40).
        Each cycle after the first runs m − k Arnoldi steps.
    recycle_dim : int
        k, the number of harmonic Ritz vectors kept (default 20); must be
        smaller than ``krylov_dim``.  0 gives restarted GMRES(m).
    rtol, atol, maxiter, M, monitors, history
        As for every `Solver`.  ``maxiter`` counts Arnoldi steps (default 10·n).
        ``M`` is applied on the right, so the monitored norm is the true one.
    warm_start : {"projection", "previous"}
        With ``x0=None``: start from zero and project onto the recycle space
        ("projection", the default), or from the previous solution (then
        projected as well).
    same_operator : bool or None
        Default for `update_operator`: None decides by identity (the same
        object ⇒ unchanged), True never recomputes C = A U, False always does.

    Attributes
    ----------
    U, C : ndarray (n × k) or None
        The recycle space (columns) and C = A M U, with CᴴC = I.
    ritz_values : ndarray or None
        Harmonic Ritz values θ of A M belonging to the columns of U.

    Notes
    -----
    Learned state is updated only by solves that converge; a failed solve
    (singular or inconsistent system, NaN, iteration limit) leaves the
    recycle space as it was before the solve.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import GCRODR
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((24, 24))
    >>> solver = GCRODR(A, krylov_dim=30, recycle_dim=10, rtol=1e-8)
    >>> first = solver.solve(np.ones(A.shape[0]))
    >>> second = solver.solve(np.arange(A.shape[0], dtype=float))
    >>> first.converged, second.converged, solver.U.shape[1]
    (True, True, 10)
    """

    method = "gcrodr"
    norm = "least-squares residual norm ||b - Ax|| (Givens, right preconditioning; confirmed on the true residual)"
    _carry_over = True

    def __init__(self, A=None, *, krylov_dim=40, recycle_dim=20, rtol=1e-5, atol=0.0, maxiter=None, M=None,
                 monitors=(), history=False, warm_start="projection", same_operator=None):
        self.krylov_dim = check_dim(krylov_dim, "krylov_dim", 1)
        self.recycle_dim = check_dim(recycle_dim, "recycle_dim", 0)
        if self.recycle_dim >= self.krylov_dim:
            raise ValueError(f"recycle_dim ({self.recycle_dim}) must be smaller than krylov_dim ({self.krylov_dim})")
        if warm_start not in ("projection", "previous"):
            raise ValueError(f"warm_start must be 'projection' or 'previous', got {warm_start!r}")
        if same_operator not in (None, True, False):
            raise TypeError(f"same_operator must be None, True or False, got {same_operator!r}")
        self.warm_start = warm_start
        self.same_operator = same_operator
        self._reset_state()
        self._ws = None
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=M, monitors=monitors, history=history)

    # ------------------------------------------------------------------ learned state
    def _reset_state(self):
        self._U = None  # rows: k × n, with B U = C
        self._C = None  # rows: k × n, orthonormal
        self._ritz = None
        self._C_valid = False
        self._last_x = None

    def reset(self) -> None:
        """Forget the recycle space and the previous solution."""
        self._reset_state()

    @property
    def U(self):
        """Recycle space, one basis vector per column (n × k), or None."""
        return None if self._U is None else self._U.T

    @property
    def C(self):
        """C = A M U with orthonormal columns (n × k), or None."""
        return None if self._C is None else self._C.T

    @property
    def ritz_values(self):
        """Harmonic Ritz values of A M for the columns of U, or None."""
        return None if self._ritz is None else self._ritz.copy()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_ws"] = None
        state["M"] = None  # rebuilt from _M_source (a wrapped lambda does not pickle)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.A is not None:
            from .._operator import as_preconditioner

            self.M = as_preconditioner(self._M_source, self.A.n, name="M")

    # ------------------------------------------------------------- operator changes
    def update_operator(self, A, M=None, *, same_operator=None) -> None:
        """Set a new operator (and optionally preconditioner).

        ``same_operator`` (default: the constructor's setting, else identity
        of ``A`` and ``M``) tells whether C = A M U is still valid; when it
        is not, the next solve recomputes it (k matvecs).
        """
        old_src = None if self.A is None else self.A.source
        old_M = self._M_source
        flag = self.same_operator if same_operator is None else same_operator
        super().update_operator(A, M)
        same_M = self._M_source is old_M
        if flag is None:
            same = old_src is not None and self.A.source is old_src and same_M
        else:
            same = bool(flag)
        if not same:
            self._C_valid = False

    def _operator_changed(self, old, new) -> None:
        if self._U is not None and new.n != self._U.shape[1]:
            self._reset_state()  # another size: nothing to recycle

    # ---------------------------------------------------------------------- solve
    def solve(self, b, x0=None, *, A=None) -> "SolveResult":  # noqa: F821
        """Solve A x = b, recycling what earlier solves learned.

        Parameters
        ----------
        b : array
        x0 : array, optional
        A : matrix-like, optional
            A new operator for this and later solves (same as calling
            `update_operator` first).
        """
        if A is not None:
            self.update_operator(A)
        if not self._carry_over:
            self._reset_state()
        if x0 is None and self.warm_start == "previous" and self._last_x is not None \
                and self.A is not None and self._last_x.shape[0] == self.A.n:
            x0 = self._last_x
        backup = (self._U, self._C, self._ritz, self._C_valid)
        with blas_single_thread():
            result = super().solve(b, x0)
        if result.converged:
            self._last_x = np.array(result.x, copy=True)
        else:
            self._U, self._C, self._ritz, self._C_valid = backup
        return result

    # ------------------------------------------------------------------- workspace
    def _workspace(self, n, dtype):
        m = self.krylov_dim
        ws = self._ws
        if ws is None or ws["n"] != n or ws["dtype"] != dtype:
            rdt = np.empty(0, dtype=dtype).real.dtype
            ws = dict(n=n, dtype=dtype,
                      W=np.empty((m + 1, n), dtype=dtype),
                      Ht=np.zeros((m, m + 1), dtype=dtype),
                      R=np.zeros((m + 1, m), dtype=dtype),
                      g=np.zeros(m + 1, dtype=dtype),
                      cs=np.zeros(m, dtype=rdt), sn=np.zeros(m, dtype=dtype),
                      w=np.empty(n, dtype=dtype), t=np.empty(n, dtype=dtype))
            self._ws = ws
        return ws

    # ----------------------------------------------------------------- iteration
    def _iterate(self, pb: Problem) -> Outcome:
        op, M = pb.op, pb.M
        if op.device:
            raise TypeError("GCRODR runs on the host only")
        n, dtype = op.n, pb.dtype
        m, k = self.krylov_dim, self.recycle_dim
        ws = self._workspace(n, dtype)
        W, Ht, R, g, cs, sn, w, tmp = (ws[key] for key in ("W", "Ht", "R", "g", "cs", "sn", "w", "t"))
        jitted = op.kind == "csr" and not pb.live and (M is None or M.inv_diag is not None)
        if op.kind == "csr":
            a = op.csr
            data = a.data if a.data.dtype == dtype else a.data.astype(dtype)
            d = np.empty(0, dtype=dtype) if M is None or M.inv_diag is None else \
                np.ascontiguousarray(M.inv_diag, dtype=dtype)
        has_M = M is not None
        nmv = nprec = 0

        def apply_B(v, out):
            """out ← A M v."""
            nonlocal nmv, nprec
            if op.kind == "csr" and (M is None or M.inv_diag is not None):
                cpu.apply_op_rows(a.indptr, a.indices, data, d, v[None, :], 1, out[None, :])
            else:
                z = pb.precond(v) if has_M else v
                pb.matvec(z, out)
            nmv += 1
            nprec += has_M

        def apply_M(v):
            nonlocal nprec
            if not has_M:
                return v
            nprec += 1
            return pb.precond(v)

        x, b = pb.x, pb.b
        r = pb.residual(x) if pb.x0_given else b.copy()
        nmv += pb.x0_given
        rn = pb.norm(r)
        extras = {"recycle_dim": 0, "krylov_dim": m, "path": "jitted" if jitted else "python",
                  "recomputed_C": False, "cycles": 0}
        hist = np.zeros(pb.maxiter + 1 if pb.record_history else 0)
        if hist.size:
            hist[0] = rn
        if not math.isfinite(rn):
            return Outcome(x, Status.NANORINF, 0, rn, nmv, nprec, hist[:1] if hist.size else None, extras)

        # ---- bring the recycle space to this operator and project the residual
        kc = 0
        U = None
        usable = self._U is not None and not (np.iscomplexobj(self._U) and np.dtype(dtype).kind != "c")
        if k > 0 and usable and rn > pb.tol:
            U = self._U.astype(dtype, copy=True)
            if self._C_valid:
                C = self._C.astype(dtype, copy=False)
            else:
                U, C = self._recompute_C(U, apply_B, n, dtype)
                extras["recomputed_C"] = True
            kc = U.shape[0]
            if kc:
                W[:kc] = C
                h = np.zeros(kc, dtype=dtype)
                rn = cpu.orth_cgs2(W, kc, r, h)  # r ← (I − CCᴴ) r, h ← Cᴴ r
                cpu.combine(U, h, kc, tmp, 0.0)  # t ← U Cᴴ r
                x += apply_M(tmp)  # x ← x + M U Cᴴ r
                self._U, self._C, self._C_valid = U, W[:kc].copy(), True
                if hist.size:
                    hist[0] = rn
            else:
                U = None
        extras["recycle_dim"] = kc

        its = 0
        status = Status.MAXITER
        stall = 0
        nbuf = np.zeros(m + 1, dtype=dtype)
        while True:
            if rn <= pb.tol:
                status = Status.RTOL
                break
            if its >= pb.maxiter:
                status = Status.MAXITER
                break
            smax = min(m - kc, pb.maxiter - its)
            W[kc] = r / rn
            Ht[:] = 0
            g[:] = 0
            g[0] = rn
            if jitted:
                s, code, est = cpu.gcro_cycle_csr(a.indptr, a.indices, data, d, W, kc, smax, pb.tol, Ht, R,
                                                  g, cs, sn, hist, its + 1, w)
                nmv += s
                nprec += s * has_M
                code = _STATUS[int(code)]
            else:
                s, code, est = self._cycle_python(pb, W, kc, smax, Ht, R, g, cs, sn, hist, its, w, apply_B,
                                                  x, U, apply_M)
            extras["cycles"] += 1
            its += s
            if code is Status.NANORINF or s == 0:
                status = Status.NANORINF if code is Status.NANORINF else Status.BREAKDOWN
                rn = est
                break
            # ---- minimiser: y2 from the rotated triangle, y1 = −D⁻¹·(Cᴴ B Vₛ) y2 (here D = I, B U = C)
            y2 = sla.solve_triangular(R[:s, :s], g[:s], check_finite=False)
            Hbar = Ht[:s, kc:kc + s + 1].T  # (s+1) × s
            Bm = Ht[:s, :kc].T  # kc × s
            cpu.combine(W[kc:], y2.astype(dtype, copy=False), s, tmp, 0.0)  # t ← Vₛ y2
            if kc:
                y1 = -(Bm @ y2)
                cpu.combine(U, y1.astype(dtype, copy=False), kc, tmp, 1.0)  # t ← t + U y1
            dx = apply_M(tmp)
            if not np.all(np.isfinite(dx)):
                status, rn = Status.NANORINF, math.inf
                break
            x += dx  # x ← x + M (U y1 + Vₛ y2)
            # r ← Vₛ₊₁ (β e₁ − H̄ y2)   (the C components vanish by the choice of y1)
            nbuf[: s + 1] = -(Hbar @ y2)
            nbuf[0] += rn
            cpu.combine(W[kc:], nbuf, s + 1, r, 0.0)
            rn_old = rn
            rn = pb.norm(r)
            # ---- new recycle space from harmonic Ritz vectors
            if k > 0:
                U, kc = self._deflate(W, U, kc, s, Ht, dtype, k, R)
                extras["recycle_dim"] = kc
            if code is Status.RTOL:
                status = Status.RTOL
                break
            if code is Status.HAPPY_BREAKDOWN:
                # invariant space: exact if consistent; otherwise no solution exists in it
                status = Status.RTOL if est <= pb.tol else Status.STAGNATION
                break
            if code is Status.BREAKDOWN or code is Status.USER_STOP:
                status = code
                break
            stall = stall + 1 if rn >= (1.0 - _STALL_FACTOR) * rn_old else 0
            if stall >= _STALL_CYCLES:
                status = Status.STAGNATION
                break
        if status in (Status.RTOL,) and pb.solver.atol > 0 and pb.tol == pb.solver.atol:
            status = Status.ATOL
        history = hist[: its + 1] if hist.size else None
        return Outcome(x, status, its, float(rn), nmv, nprec, history, extras)

    # ------------------------------------------------------------ python cycle
    def _cycle_python(self, pb, W, kc, smax, Ht, R, g, cs, sn, hist, its, w, apply_B, x, U, apply_M):
        """Same as `kernels.cpu.gcro_cycle_csr`, one Python-level step at a time, with monitors."""
        res = abs(g[0])
        for j in range(smax):
            apply_B(W[kc + j], w)  # w ← A M v_j
            res, happy = cpu.arnoldi_finish_step(W, kc, j, w, Ht[j], R, g, cs, sn)
            if res < 0:
                return j, Status.BREAKDOWN, abs(g[j])
            if its + 1 + j < hist.shape[0]:
                hist[its + 1 + j] = res
            if not math.isfinite(res):
                return j + 1, Status.NANORINF, res
            if res <= pb.tol:
                pb.notify(its + j + 1, res, self._lazy_x(pb, W, kc, j + 1, Ht, R, g, x, U, apply_M))
                return j + 1, Status.RTOL, res
            if happy:
                return j + 1, Status.HAPPY_BREAKDOWN, res
            if pb.notify(its + j + 1, res, self._lazy_x(pb, W, kc, j + 1, Ht, R, g, x, U, apply_M)):
                # a monitor stopped: report it after the caller applies this cycle's update
                return j + 1, Status.USER_STOP, res
        return smax, Status.MAXITER, res

    @staticmethod
    def _lazy_x(pb, W, kc, s, Ht, R, g, x, U, apply_M):
        def xfun():
            y2 = sla.solve_triangular(R[:s, :s], g[:s], check_finite=False)
            t = (y2 @ W[kc:kc + s]).astype(pb.dtype, copy=False)
            if kc:
                t = t - (Ht[:s, :kc].T @ y2) @ U
            return x + (pb.precond(t) if pb.M is not None else t)

        return xfun

    # ------------------------------------------------------------- recycle updates
    def _recompute_C(self, U, apply_B, n, dtype):
        """C = B U, orthonormalised by QR; U ← U R⁻¹ (drops numerically dependent columns)."""
        kc = U.shape[0]
        Ct = np.empty((kc, n), dtype=dtype)
        for i in range(kc):
            apply_B(U[i], Ct[i])  # C̃_i ← A M u_i
        if not np.all(np.isfinite(Ct)):
            return U[:0], Ct[:0]
        Q, Rr = np.linalg.qr(Ct.T)
        dg = np.abs(np.diag(Rr))
        keep = dg > 1e-10 * max(dg.max(initial=0.0), 1e-300)
        if not keep.all():
            Q, Rr = np.linalg.qr(Ct[keep].T)
            U = U[keep]
        # U ← U R⁻¹ in row form: rows(U_new) = R⁻ᵀ rows(U)
        Unew = sla.solve_triangular(Rr, U, trans="T", check_finite=False)
        return np.ascontiguousarray(Unew, dtype=dtype), np.ascontiguousarray(Q.T, dtype=dtype)

    def _deflate(self, W, U, kc, s, Ht, dtype, k, R):
        """Harmonic Ritz update of (U, C) from B [U D, Vₛ] = [C, Vₛ₊₁] Ḡ; C is written into W[:k']."""
        mm = kc + s
        if mm == 0:
            return U, kc
        Gbar = np.zeros((mm + 1, mm), dtype=dtype)
        VhW = np.zeros((mm + 1, mm), dtype=dtype)
        if kc:
            dn = np.linalg.norm(U, axis=1)
            dn = np.where(dn > 0, 1.0 / dn, 1.0)
            Gbar[:kc, :kc] = np.diag(dn)
            G = W[:mm + 1].conj() @ U.T  # G ← [C, Vₛ₊₁]ᴴ U  (one BLAS-3 call; threads limited)
            VhW[:, :kc] = G * dn
        Gbar[:, kc:] = Ht[:s, :mm + 1].T
        VhW[kc:kc + s, kc:] = np.eye(s)
        # Ḡᴴ Ḡ z = θ Ḡᴴ (V̂ᴴ Ŵ) z  ⇔  Ḡ⁺ (V̂ᴴŴ) z = μ z with μ = 1/θ; Ḡ⁺ through a QR of Ḡ
        # (never forming ḠᴴḠ, whose condition number is squared)
        if not (np.all(np.isfinite(Gbar)) and np.all(np.isfinite(VhW))):
            return U, kc
        try:
            Qg, Rg = np.linalg.qr(Gbar)
            Bm_ = sla.solve_triangular(Rg, Qg.conj().T @ VhW, check_finite=False)
            if not np.all(np.isfinite(Bm_)):
                return U, kc
            mu, Z = np.linalg.eig(Bm_)
        except (np.linalg.LinAlgError, ValueError):
            return U, kc
        ok = np.isfinite(mu) & np.all(np.isfinite(Z), axis=0)
        order = [i for i in np.argsort(-np.abs(np.where(ok, mu, 0))) if ok[i]]
        kk = min(k, mm)
        P, theta = _select(Z, mu, order, kk, np.iscomplexobj(np.empty(0, dtype=dtype)))
        if P.shape[1] == 0:
            return U, kc
        P, _ = np.linalg.qr(P)
        Q, Rq = np.linalg.qr(Gbar @ P)
        dg = np.abs(np.diag(Rq))
        if not np.all(np.isfinite(Rq)) or dg.min() <= 1e-13 * max(dg.max(), 1e-300):
            return U, kc
        Y = sla.solve_triangular(Rq, P.T, trans="T", check_finite=False).T  # P R⁻¹ (mm × k')
        # rows of the new U: Yᵀ [U D; Vₛ];  rows of the new C: Qᵀ [C; Vₛ₊₁]
        Unew = Y[kc:].T.astype(dtype, copy=False) @ W[kc:kc + s]
        if kc:
            Unew += (Y[:kc].T * dn).astype(dtype, copy=False) @ U
        Cnew = Q.T.astype(dtype, copy=False) @ W[:mm + 1]
        if not (np.all(np.isfinite(Unew)) and np.all(np.isfinite(Cnew))):
            return U, kc
        knew = Cnew.shape[0]
        W[:knew] = Cnew
        self._U = np.ascontiguousarray(Unew)
        self._C = Cnew
        self._C_valid = True
        self._ritz = theta
        return self._U, knew


def _select(Z, mu, order, kk, complex_ok):
    """The eigenvectors for the kk largest |μ| (smallest |θ|), with a real basis for real problems."""
    cols, thetas = [], []
    i = 0
    while i < len(order) and len(cols) < kk:
        j = order[i]
        z = Z[:, j]
        th = 1.0 / mu[j] if mu[j] != 0 else np.inf
        if complex_ok or abs(mu[j].imag) <= 1e-12 * abs(mu[j]):
            cols.append(z if complex_ok else z.real)
            thetas.append(th)
            i += 1
        else:
            # a complex-conjugate pair: its real and imaginary parts span the same real space
            if len(cols) + 2 > kk:
                break
            cols += [z.real, z.imag]
            thetas += [th, np.conj(th)]
            # skip the partner
            i += 1
            if i < len(order) and np.isclose(mu[order[i]], np.conj(mu[j])):
                i += 1
    if not cols:
        return np.zeros((Z.shape[0], 0)), np.zeros(0)
    P = np.stack(cols, axis=1)
    return P, np.asarray(thetas)


class GMRESDR(GCRODR):
    """GMRES with deflated restarting (GMRES-DR(m, k)) within each solve; nothing carried over.

    Same iteration as `GCRODR` (harmonic Ritz deflation after every cycle),
    but the deflation space is discarded before each solve, so every solve
    is independent.  A strong baseline for recycling.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import GMRESDR
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((24, 24))
    >>> res = GMRESDR(A, krylov_dim=20, recycle_dim=8, rtol=1e-8).solve(np.ones(A.shape[0]))
    >>> res.converged
    True
    """

    method = "gmresdr"
    _carry_over = False


def gcrodr(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, krylov_dim=40, recycle_dim=20,
           recycle=None, callback=None):
    """Solve A x = b by GCRO-DR; pass ``recycle`` to carry the recycle space over a sequence.

    Parameters
    ----------
    A, b, x0, rtol, atol, maxiter, M
        As in scipy (``maxiter`` counts Arnoldi steps).
    krylov_dim, recycle_dim : int
        m and k (see `GCRODR`).
    recycle : GCRODR, optional
        A solver object holding the recycle space; it is updated in place.
        Without it a fresh one is used and discarded.
    callback : callable, optional
        ``callback(xk)`` after every Arnoldi step (slower: forms x each time).

    Returns
    -------
    x : ndarray
    info : int
        0 on convergence, > 0 iterations done without convergence, < 0 breakdown.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import GCRODR, gcrodr
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((20, 20))
    >>> space = GCRODR(krylov_dim=30, recycle_dim=10, rtol=1e-8)
    >>> for t in range(3):
    ...     x, info = gcrodr(A * (1 + 0.1 * t), np.ones(400), recycle=space)
    >>> info, space.U.shape
    (0, (400, 10))
    """
    from .._solver import CallbackMonitor

    monitors = [CallbackMonitor(callback)] if callback is not None else []
    if recycle is None:
        solver = GCRODR(krylov_dim=krylov_dim, recycle_dim=recycle_dim)
    else:
        if not isinstance(recycle, GCRODR):
            raise TypeError(f"recycle must be a GCRODR solver, got {type(recycle).__name__}")
        solver = recycle
    solver.rtol, solver.atol = rtol, atol
    from .._operator import check_tolerances

    solver.rtol, solver.atol = check_tolerances(rtol, atol)
    solver.maxiter = maxiter
    solver.monitors = monitors
    if M is not None:
        solver._M_source = M
    solver.update_operator(A)
    return tuple(solver.solve(b, x0))
