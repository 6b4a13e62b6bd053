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
each whole cycle runs in one numba call (`kernels.cpu.gcro_cycle_csr`, with
the fused modified Gram–Schmidt of the GMRES kernels: one read of [C; V]
per Arnoldi step; for banded matrices from 10⁴ rows on, B = A·M read from
diagonal storage, as in `GMRES`, reported in ``extras["storage"]``).
Otherwise every step forms B v in Python and hands the
orthogonalisation and rotations to the same numba kernel.  The small dense
work (harmonic Ritz eigenproblem as a reordered Schur form, QR, triangular
solves) calls LAPACK directly on the host, with BLAS limited to one thread
for the whole solve.  Per cycle the n-sized work outside the Arnoldi steps
is three BLAS-3 products: Vₛ₊₁ᴴU (the blocks CᴴU and UᴴU of the
eigenproblem are carried from cycle to cycle as small matrices), the new U
and the new C.  Measured on the 50×50 Darcy benchmark, that update (≈ 40×40
Schur decomposition plus those products) still costs about twice the 20
Arnoldi steps of a cycle.

On a GPU (CuPy arrays: A as a ``cupyx.scipy.sparse`` matrix or a device
array, b on the device) every n-sized array stays on the device: each
Arnoldi step orthogonalises against the block [C, V] by classical
Gram–Schmidt twice (two matrix–vector products per pass, where the host
uses MGS), and the recycle update, C = A M U and its Cholesky QR are
matrix products there.  The Hessenberg column, the Givens rotations and the
k × k or m × m dense work go to the host.  The tests run this path with
numpy as the array namespace.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla

from .._result import Status
from ..backend import get_backend
from .._solver import Outcome, Problem, Solver
from ..kernels import cpu
from ..krylov._threads import single_blas_thread
from ._common import check_dim, check_space

__all__ = ["GCRODR", "GMRESDR", "gcrodr"]

_STATUS = {int(s): s for s in Status}
#: banded CSR matrices: the Arnoldi products read B = A·M from diagonal storage from this many rows on
_DIA_MIN_ROWS = cpu.DIA_MIN_ROWS
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
    ritz : {"harmonic", "standard"}
        Which approximate eigenvectors of A M on span([U, Vₛ]) become the new
        U: harmonic Ritz vectors (default, Parks et al.) or standard Ritz
        vectors (Galerkin), in both cases those of the k smallest |θ|.
        Standard Ritz needs no extra n-sized work (UᴴU is carried as a small
        matrix); on the SPD Darcy benchmark it saved 2–7% of the matvecs.
        For nonsymmetric or indefinite problems keep the harmonic default,
        which cannot produce spurious small values.
    update_every : int
        Refresh the recycle space after every ``update_every``-th cycle
        (default 1, Parks et al.: after every cycle).  It is always refreshed
        after the last cycle of a solve and while it is empty; in between, a
        cycle keeps U and C as they are (a GCRO cycle with a fixed
        augmentation space, still exact).  The refresh (an
        m × m Schur decomposition and three n × m × k products) costs about
        twice the Arnoldi steps of a cycle, so refreshing less often trades
        a few more matvecs for less work per cycle: on the SPD Darcy
        benchmark ``update_every=3`` needed 2–5% more matvecs and about 30%
        less CPU time than refreshing every cycle without a preconditioner,
        13–22% more matvecs and 10–25% less CPU time with Jacobi.

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
    supports_device = True  # device arrays take the array-namespace path (see the module docstring)
    _carry_over = True

    def __init__(self, A=None, *, krylov_dim=40, recycle_dim=20, rtol=1e-5, atol=0.0, maxiter=None, M=None,
                 monitors=(), history=False, warm_start="projection", same_operator=None, ritz="harmonic",
                 update_every=1):
        self.krylov_dim = check_dim(krylov_dim, "krylov_dim", 1)
        self.recycle_dim = check_dim(recycle_dim, "recycle_dim", 0)
        if self.recycle_dim >= self.krylov_dim:
            raise ValueError(f"recycle_dim ({self.recycle_dim}) must be smaller than krylov_dim ({self.krylov_dim})")
        if warm_start not in ("projection", "previous"):
            raise ValueError(f"warm_start must be 'projection' or 'previous', got {warm_start!r}")
        if same_operator not in (None, True, False):
            raise TypeError(f"same_operator must be None, True or False, got {same_operator!r}")
        if ritz not in ("harmonic", "standard"):
            raise ValueError(f"ritz must be 'harmonic' or 'standard', got {ritz!r}")
        self.ritz = ritz
        self.update_every = check_dim(update_every, "update_every", 1)
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

    def set_recycle_space(self, U) -> None:
        """Use the columns of U (n × j, j ≤ ``recycle_dim``) as the recycle space from the next solve on.

        For a deflation space known in advance (eigenvectors of a nearby
        operator, a coarse-grid basis, a space saved from another run), as
        PETSc's ``KSPHPDDMSetDeflationMat``.  C = A M U is formed and
        orthonormalised by the next solve (j matvecs); columns that are
        numerically dependent after that are dropped.  Later solves replace
        the space by harmonic (or standard) Ritz vectors as usual.
        """
        xp = get_backend(U).xp  # the space stays where it is: device solves use it there
        U = check_space(U, xp, self.recycle_dim, None if self.A is None else self.A.n)
        self._reset_state()
        self._U = xp.ascontiguousarray(U.T)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_ws"] = None
        state["M"] = None  # rebuilt from _M_source (a wrapped lambda does not pickle)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("ritz", "harmonic")
        self.__dict__.setdefault("update_every", 1)
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
        # BLAS at one thread: the small dense work (QR, eigenproblems, least squares) gains nothing from
        # threads, and numpy's and scipy's two spinning pools on two cores slow it by orders of magnitude
        with single_blas_thread():
            result = super().solve(b, x0)
        if result.converged:
            self._last_x = result.x.copy()
        else:
            self._U, self._C, self._ritz, self._C_valid = backup
        return result

    # ------------------------------------------------------------------- workspace
    def _workspace(self, n, dtype, xp=np):
        m = self.krylov_dim
        ws = self._ws
        if ws is None or ws["n"] != n or ws["dtype"] != dtype or ws["xp"] is not xp:
            rdt = np.empty(0, dtype=dtype).real.dtype
            ws = dict(n=n, dtype=dtype, xp=xp,
                      W=xp.empty((m + 1, n), dtype=dtype),
                      Ht=np.zeros((m, m + 1), dtype=dtype),
                      R=np.zeros((m + 1, m), dtype=dtype),
                      g=np.zeros(m + 1, dtype=dtype),
                      cs=np.zeros(m, dtype=rdt), sn=np.zeros(m, dtype=dtype),
                      w=xp.empty(n, dtype=dtype), t=xp.empty(n, dtype=dtype),
                      h2=np.zeros(m + 1, dtype=dtype))  # second-pass coefficients of the MGS step
            self._ws = ws
        return ws

    # ----------------------------------------------------------------- iteration
    def _iterate(self, pb: Problem) -> Outcome:
        op, M = pb.op, pb.M
        n, dtype = op.n, pb.dtype
        m, k = self.krylov_dim, self.recycle_dim
        # device arrays: the n-sized work in the array namespace (block CGS2, matrix products), the
        # small dense work on the host
        generic = _use_generic(op)
        be = pb.backend if generic else None  # None: the host kernels
        xp = pb.xp if generic else np
        ws = self._workspace(n, dtype, xp)
        W, Ht, R, g, cs, sn, w, tmp, h2 = (ws[key] for key in ("W", "Ht", "R", "g", "cs", "sn", "w", "t", "h2"))
        host_csr = op.kind == "csr" and not generic and (M is None or M.inv_diag is not None)
        jitted = host_csr and not pb.live
        if host_csr:
            a = op.csr
            data = a.data if a.data.dtype == dtype else a.data.astype(dtype)
            d = np.empty(0, dtype=dtype) if M is None or M.inv_diag is None else \
                np.ascontiguousarray(M.inv_diag, dtype=dtype)
        if jitted:
            # stencils: B = A·diag(d) in diagonal storage for the Arnoldi products (as in GMRES)
            data_pc = data if d.shape[0] == 0 else data * d[a.indices]
            dia_off, dia_val = cpu.dia_for_solver(a.indptr, a.indices, data_pc, _DIA_MIN_ROWS)
        has_M = M is not None
        nmv = nprec = 0

        def apply_B(v, out):
            """out ← A M v."""
            nonlocal nmv, nprec
            if host_csr:
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
        extras = {"recycle_dim": 0, "krylov_dim": m,
                  "path": "jitted" if jitted else ("array namespace" if generic else "python"),
                  "recomputed_C": False, "cycles": 0, "updates": 0}
        if jitted:
            extras["storage"] = cpu.dia_storage_name(dia_off, dia_val)
        hist = np.zeros(pb.maxiter + 1 if pb.record_history else 0)
        if hist.size:
            hist[0] = rn
        if not math.isfinite(rn):
            return Outcome(x, Status.NANORINF, 0, rn, nmv, nprec, hist[:1] if hist.size else None, extras)

        # ---- bring the recycle space to this operator and project the residual
        if self._U is not None and isinstance(self._U, np.ndarray) == generic:
            # learned on the other side of the host/device divide: move it here (C = A M U stays valid)
            move = xp.asarray if generic else get_backend(self._U).to_host
            self._U = move(self._U)
            self._C = None if self._C is None else move(self._C)
        kc = 0
        U = None
        CU = (None, None)  # (Cᴴ U, Uᴴ U) — see _deflate
        usable = self._U is not None and not (np.iscomplexobj(self._U) and np.dtype(dtype).kind != "c")
        if k > 0 and usable and rn > pb.tol:
            U = self._U.astype(dtype, copy=True)
            if self._C_valid:
                C = self._C.astype(dtype, copy=False)
            else:
                U, C = self._recompute_C(U, apply_B, n, dtype, be)
                extras["recomputed_C"] = True
            kc = U.shape[0]
            if kc:
                W[:kc] = C
                if generic:
                    h = _orth_block(be, W[:kc], r)  # r ← (I − CCᴴ) r, h ← Cᴴ r (twice)
                    rn = pb.norm(r)
                    _rows_combine(be, U, h, tmp, 0.0)  # t ← U Cᴴ r
                else:
                    h = np.zeros(kc, dtype=dtype)
                    rn = cpu.orth_cgs2(W, kc, r, h)  # r ← (I − CCᴴ) r, h ← Cᴴ r
                    cpu.combine(U, h, kc, tmp, 0.0)  # t ← U Cᴴ r
                x += apply_M(tmp)  # x ← x + M U Cᴴ r
                self._U, self._C, self._C_valid = U, W[:kc].copy(), True
                # Cᴴ U and Uᴴ U, kept up to date from small matrices by _deflate
                CU = (pb.backend.to_host(_gemm_h(W[:kc], U)), pb.backend.to_host(_gemm_h(U, U)))
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
                                                  g, cs, sn, hist, its + 1, w, dia_off, dia_val)
                nmv += s
                nprec += s * has_M
                code = _STATUS[int(code)]
            else:
                if generic:
                    def step(j, kc=kc):
                        return _generic_step(pb, W, kc, j, w, Ht[j], R, g, cs, sn)
                else:
                    def step(j, kc=kc):
                        return cpu.arnoldi_finish_step(W, kc, j, w, Ht[j], R, g, cs, sn, h2)
                s, code, est = self._cycle_python(pb, W, kc, smax, Ht, hist, its, w, apply_B, x, U, apply_M, R, g,
                                                  step)
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
            combine = (lambda rows, c, cnt, out, beta: _rows_combine(be, rows[:cnt], c[:cnt], out, beta)) if generic \
                else cpu.combine
            combine(W[kc:], y2.astype(dtype, copy=False), s, tmp, 0.0)  # t ← Vₛ y2
            if kc:
                y1 = -(Bm @ y2)
                combine(U, y1.astype(dtype, copy=False), kc, tmp, 1.0)  # t ← t + U y1
            dx = apply_M(tmp)
            if not math.isfinite(float(abs(dx.sum()))):
                status, rn = Status.NANORINF, math.inf
                break
            x += dx  # x ← x + M (U y1 + Vₛ y2)
            # r ← Vₛ₊₁ (β e₁ − H̄ y2)   (the C components vanish by the choice of y1)
            nbuf[: s + 1] = -(Hbar @ y2)
            nbuf[0] += rn
            combine(W[kc:], nbuf, s + 1, r, 0.0)
            rn_old = rn
            rn = pb.norm(r)
            # ---- new recycle space from harmonic Ritz vectors: after every `update_every`-th cycle,
            # while there is none, and after the last cycle of the solve
            last = code is not Status.MAXITER or its >= pb.maxiter
            if k > 0 and (last or kc == 0 or extras["cycles"] % self.update_every == 0):
                U, kc, CU = self._deflate(W, U, kc, s, Ht, dtype, k, CU, be)
                extras["recycle_dim"] = kc
                extras["updates"] += 1
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
        if extras["updates"] and self._C is not None and self._C.shape[0]:
            # The Arnoldi basis is orthogonalised by MGS, whose loss of orthogonality (≈ ε·κ) the new C
            # inherits; one Cholesky-QR step on the stored pair restores CᴴC = I to rounding for the
            # next solve (C = A M U is kept: U gets the same row transformation).
            if generic:
                pair = _cholqr_rows_xp(be, self._C, self._U)
                if pair is not None:
                    self._C, self._U = pair
            else:
                C, Un = self._C.copy(), self._U.copy()
                if _cholqr_rows(C, Un):
                    self._C, self._U = C, Un
        if status in (Status.RTOL,) and pb.solver.atol > 0 and pb.tol == pb.solver.atol:
            status = Status.ATOL
        history = hist[: its + 1] if hist.size else None
        return Outcome(x, status, its, float(rn), nmv, nprec, history, extras)

    # ------------------------------------------------------------ python cycle
    def _cycle_python(self, pb, W, kc, smax, Ht, hist, its, w, apply_B, x, U, apply_M, R, g, step):
        """Same as `kernels.cpu.gcro_cycle_csr`, one Python-level step at a time, with monitors.

        ``step(j)`` finishes Arnoldi step j once ``w = B v_j`` is formed (orthogonalisation, new basis
        vector, Givens rotations) and returns ``(residual estimate, happy breakdown)``.
        """
        res = abs(g[0])
        for j in range(smax):
            apply_B(W[kc + j], w)  # w ← A M v_j
            res, happy = step(j)
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
            xp = pb.xp
            y2 = sla.solve_triangular(R[:s, :s], g[:s], check_finite=False).astype(pb.dtype, copy=False)
            t = xp.asarray(y2) @ W[kc:kc + s]
            if kc:
                t = t - xp.asarray(Ht[:s, :kc].T @ y2) @ U
            return x + (pb.precond(t) if pb.M is not None else t)

        return xfun

    # ------------------------------------------------------------- recycle updates
    def _recompute_C(self, U, apply_B, n, dtype, be=None):
        """C = B U with orthonormal rows; U ← U R⁻¹ accordingly (drops numerically dependent columns).

        Cholesky QR twice (two k × k Gram matrices and triangular solves, BLAS-3) when B U is
        well conditioned, as it is when the operator changed moderately; Householder QR with a
        rank test otherwise.  ``be``: the `Backend` of device arrays (None: host kernels).
        """
        kc = U.shape[0]
        xp = np if be is None else be.xp
        Ct = xp.empty((kc, n), dtype=dtype)
        for i in range(kc):
            apply_B(U[i], Ct[i])  # C̃_i ← A M u_i
        if be is not None:
            if not bool(xp.all(xp.isfinite(Ct))):
                return U[:0], Ct[:0]
            pair = _cholqr_rows_xp(be, Ct, U)
            pair = None if pair is None else _cholqr_rows_xp(be, *pair)
            if pair is not None:
                return pair[1], pair[0]
            Q, Rr = xp.linalg.qr(Ct.T)
            Rr = be.to_host(Rr)
            dg = np.abs(np.diag(Rr))
            keep = dg > 1e-10 * max(dg.max(initial=0.0), 1e-300)
            if not keep.all():
                rows = xp.asarray(np.flatnonzero(keep))
                Q, Rr = xp.linalg.qr(Ct[rows].T)
                Rr = be.to_host(Rr)
                U = U[rows]
            # rows(U_new) = R⁻ᵀ rows(U), with R⁻ᵀ formed on the host (k × k)
            Rinv_t = sla.solve_triangular(Rr, np.eye(Rr.shape[0], dtype=dtype), trans="T",
                                          check_finite=False)
            return xp.asarray(Rinv_t) @ U, xp.ascontiguousarray(Q.T)
        if not np.all(np.isfinite(Ct)):
            return U[:0], Ct[:0]
        C, Un = Ct.copy(), U.copy()
        if _cholqr_rows(C, Un) and _cholqr_rows(C, Un):
            return Un, C
        Q, Rr = np.linalg.qr(Ct.T)
        dg = np.abs(np.diag(Rr))
        keep = dg > 1e-10 * max(dg.max(initial=0.0), 1e-300)
        if not keep.all():
            Q, Rr = np.linalg.qr(Ct[keep].T)
            U = U[keep]
        # U ← U R⁻¹ in row form: rows(U_new) = R⁻ᵀ rows(U)
        Unew = sla.solve_triangular(Rr, U, trans="T", check_finite=False)
        return np.ascontiguousarray(Unew, dtype=dtype), np.ascontiguousarray(Q.T, dtype=dtype)

    def _deflate(self, W, U, kc, s, Ht, dtype, k, grams, be=None):
        """Harmonic Ritz update of (U, C) from B [U D, Vₛ] = [C, Vₛ₊₁] Ḡ; C is written into W[:k'].

        ``grams`` = (Cᴴ U, Uᴴ U) for the current pair; returns (U, k', grams) for the
        new one (the grams from small matrices only; the diagonal of Uᴴ U gives the column
        scaling D, so no n-sized norm pass is needed).  With ``ritz="standard"`` the Ritz
        vectors of B on span(Ŵ) replace the harmonic ones: (Ŵᴴ B Ŵ) z = θ (ŴᴴŴ) z, where
        Ŵᴴ B Ŵ = (V̂ᴴŴ)ᴴ Ḡ and ŴᴴŴ comes from Uᴴ U and Vₛᴴ U.  The n-sized work is three BLAS-3 products: Vₛ₊₁ᴴ U, the new
        U and the new C.  The small dense work calls LAPACK directly (the numpy/scipy wrappers
        cost as much as the factorisations at these sizes).  ``be``: the `Backend` of device arrays
        (then the three n-sized products run there; None: host BLAS).
        """
        mm = kc + s
        if mm == 0:
            return U, kc, grams
        cplx = np.dtype(dtype).kind == "c"
        CU, UU = grams
        Gbar = np.zeros((mm + 1, mm), dtype=dtype, order="F")
        VhW = np.zeros((mm + 1, mm), dtype=dtype, order="F")
        if kc:
            # D: unit columns for U D (any positive D is exact, B U D = C D; it only balances Ḡ)
            dn = np.sqrt(np.abs(np.diag(UU).real))
            dn = np.where(dn > 0, 1.0 / np.where(dn > 0, dn, 1.0), 1.0)
            Gbar[:kc, :kc] = np.diag(dn)
            # [C, Vₛ₊₁]ᴴ U: the C block is known (CU), the V block is one BLAS-3 call
            VhW[:kc, :kc] = CU * dn
            VU = _gemm_h(W[kc:mm + 1], U)
            VhW[kc:, :kc] = (VU if be is None else be.to_host(VU)) * dn
        Gbar[:, kc:] = Ht[:s, :mm + 1].T
        VhW[kc:kc + s, kc:] = np.eye(s)
        # Ḡᴴ Ḡ z = θ Ḡᴴ (V̂ᴴŴ) z  ⇔  Ḡ⁺ (V̂ᴴŴ) z = μ z with μ = 1/θ; Ḡ⁺ through a QR of Ḡ
        # (never forming ḠᴴḠ, whose condition number is squared)
        if not (np.all(np.isfinite(Gbar)) and np.all(np.isfinite(VhW))):
            return U, kc, grams
        lp = _lapack(dtype)
        # ŴᴴŴ for Ŵ = [U D, Vₛ] (from Uᴴ U and Vₛᴴ U): the Gram matrix of the new U below
        Bw = np.eye(mm, dtype=dtype)
        if kc:
            Bw[:kc, :kc] = UU * np.outer(dn, dn)
            Bw[kc:, :kc] = VhW[kc:kc + s, :kc]
            Bw[:kc, kc:] = VhW[kc:kc + s, :kc].conj().T
        if self.ritz == "harmonic":
            Rg, Tq = _qr_r(lp, Gbar)
            if Rg is None:
                return U, kc, grams
            # Qᴴ VhW (first mm rows), then R⁻¹ · that
            QhV, _, info = lp["ormqr"]("L", "C" if cplx else "T", Tq[0], Tq[1], VhW, 32 * max(1, mm))
            if info != 0:
                return U, kc, grams
            Bm_, info = lp["trtrs"](Rg, QhV[:mm])
            if info != 0 or not np.all(np.isfinite(Bm_)):
                return U, kc, grams
            P, theta = _schur_select(lp, Bm_, min(k, mm), cplx)
        else:
            # standard Ritz: (ŴᴴŴ) z = μ (ŴᴴBŴ) z with μ = 1/θ (QZ: a zero Ritz value gives μ = ∞, dropped)
            Ar = VhW.conj().T @ Gbar
            # Ar⁻¹ Bw by LU, then the same eigensolver as the harmonic case (QZ only if Ar is singular)
            lu, piv, info = lp["getrf"](Ar)
            if info == 0:
                Bm_, info = lp["getrs"](lu, piv, Bw)
            if info == 0 and np.all(np.isfinite(Bm_)):
                P, theta = _schur_select(lp, Bm_, min(k, mm), cplx)
            else:
                try:
                    mu, Z = sla.eig(Bw, Ar, check_finite=False)
                except (np.linalg.LinAlgError, ValueError):
                    return U, kc, grams
                ok = np.isfinite(mu) & np.all(np.isfinite(Z), axis=0)
                order = [i for i in np.argsort(-np.abs(np.where(ok, mu, 0))) if ok[i]]
                P, theta = _select(Z, mu, order, min(k, mm), cplx)
                if P.shape[1]:
                    P = _qr_q(lp, P)
        if P is None or P.shape[1] == 0:
            return U, kc, grams
        GP = Gbar @ P
        Rq, Tq2 = _qr_r(lp, GP)
        if Rq is None:
            return U, kc, grams
        dg = np.abs(np.diag(Rq))
        if not np.all(np.isfinite(Rq)) or dg.min() <= 1e-13 * max(dg.max(), 1e-300):
            return U, kc, grams
        Q = _q_from(lp, Tq2)
        # Y = P R⁻¹ (mm × k'), so that B Ŵ Y = V̂ Ḡ P R⁻¹ = V̂ Q:  Y = (R⁻ᵀ Pᵀ)ᵀ
        Yt, info = lp["trtrs"](Rq, P.T, trans=1)
        if info != 0:
            return U, kc, grams
        Y = Yt.T
        if not (np.all(np.isfinite(Y)) and np.all(np.isfinite(Q))):
            return U, kc, grams
        # rows of the new U: Yᵀ [U D; Vₛ];  rows of the new C: Qᵀ [C; Vₛ₊₁]
        if be is not None:
            xp = be.xp
            Unew = xp.asarray(np.ascontiguousarray(Y[kc:].T)) @ W[kc:kc + s]
            if kc:
                Unew += xp.asarray(np.ascontiguousarray((dn[:, None] * Y[:kc]).T)) @ U
            Cnew = xp.asarray(np.ascontiguousarray(Q.T)) @ W[:mm + 1]
        else:
            Unew = Y[kc:].T @ W[kc:kc + s]
            if kc:
                # Unew += (D Y₁)ᵀ U as one gemm accumulating in place (on the transposed, Fortran-ordered views)
                Unew = lp["gemm"](1.0, U.T, dn[:, None] * Y[:kc], beta=1.0, c=Unew.T, overwrite_c=1).T
            Cnew = Q.T @ W[:mm + 1]  # (finite: W, U, Y and Q are)
        knew = Cnew.shape[0]
        W[:knew] = Cnew
        self._U = (np if be is None else be.xp).ascontiguousarray(Unew)
        self._C = Cnew
        self._C_valid = True
        self._ritz = theta
        # Cᴴ U for the new pair: Qᴴ (V̂ᴴ Ŵ) Y with Ŵ = [U D, Vₛ]
        CUnew = Q.conj().T @ (VhW @ Y)
        UUnew = Y.conj().T @ (Bw @ Y)  # Uᴴ U = Yᴴ (ŴᴴŴ) Y
        return self._U, knew, (CUnew, UUnew)


def _use_generic(op) -> bool:
    """Whether a solve takes the array-namespace path: operators whose data live on a GPU (CuPy)."""
    return bool(op.device)


def _orth_block(be, B, w):
    """w ← (I − Bᵀ B̄) w against the orthonormal rows B by classical Gram–Schmidt twice (two
    matrix–vector products per pass, the natural kernel on a GPU); returns B̄ w (both passes) on the host."""
    h = B.conj() @ w
    w -= B.T @ h
    h2 = B.conj() @ w
    w -= B.T @ h2
    return be.to_host(h + h2)


def _rows_combine(be, rows, coef, out, beta):
    """out ← β·out + rowsᵀ coef, β ∈ {0, 1}, for host coefficients."""
    v = rows.T @ be.xp.asarray(coef)
    if beta == 0:
        out[...] = v
    else:
        out += v


def _generic_step(pb, W, kc, j, w, hcol, R, g, cs, sn):
    """Arnoldi step j after ``w = B v_j`` for any array namespace: block CGS2 against W[:kc+j+1] (the
    Hessenberg column to the host), the new unit vector into W[kc+j+1], then the Givens rotations
    of the host kernel.  Returns ``(residual estimate, happy breakdown)`` as
    `kernels.cpu.arnoldi_finish_step` does."""
    t = kc + j + 1
    hcol[:t] = _orth_block(pb.backend, W[:t], w)
    hn = pb.norm(w)
    if not math.isfinite(hn):
        hcol[t] = hn
        return math.inf, False
    happy = hn <= 1e-14 * abs(hcol[kc + j]) or hn == 0.0
    if not happy:
        W[t] = w * (1.0 / hn)
    return cpu.arnoldi_rotate(hcol, kc, j, hn, R, g, cs, sn), happy


def _cholqr_rows_xp(be, C, U):
    """`_cholqr_rows` for device arrays: the k × k Gram matrix and its Cholesky factor on the host,
    the row transformation on the device.  Returns the new (C, U), or None (nothing changed) when the
    Gram matrix is not safely positive definite."""
    G = be.to_host(_gemm_h(C, C))
    try:
        L = np.linalg.cholesky(G)  # G = L Lᴴ
    except np.linalg.LinAlgError:
        return None
    dg = np.abs(np.diag(L))
    if not np.all(np.isfinite(dg)) or dg.min() <= 1e-7 * dg.max():
        return None
    # rows T C with T̄ = L⁻¹ are orthonormal: T̄ G Tᵀ = L⁻¹ L Lᴴ L⁻ᴴ = I
    T = be.xp.asarray(np.conj(sla.solve_triangular(L, np.eye(L.shape[0], dtype=G.dtype), lower=True,
                                                check_finite=False)))
    return T @ C, T @ U


def _cholqr_rows(C, U) -> bool:
    """One Cholesky-QR step on the rows of C, in place: C ← R⁻ᵀ C with Rᴴ R = C̄ Cᵀ (so the columns
    Cᵀ R⁻¹ are orthonormal), and U ← R⁻ᵀ U alike.  Returns False, changing nothing, when the Gram
    matrix is not safely positive definite (then Householder QR is the caller's fallback)."""
    lp = _lapack(C.dtype)
    R, info = lp["potrf"](_gemm_h(C, C), lower=0)
    dg = np.abs(np.diag(R))
    if info != 0 or not np.all(np.isfinite(dg)) or dg.min() <= 1e-7 * dg.max():
        return False
    # in place: the transposed row blocks are Fortran-ordered n × k matrices for trsm
    lp["trsm"](1.0, R, C.T, side=1, lower=0, overwrite_b=1)
    lp["trsm"](1.0, R, U.T, side=1, lower=0, overwrite_b=1)
    return True


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


def _gemm_h(X, Y):
    """Xᴴ-by-rows product: G[i, j] = ⟨X_i, Y_j⟩ for row blocks X, Y (one BLAS-3 call; no conj copy for real data)."""
    return (X.conj() if np.iscomplexobj(X) else X) @ Y.T


_LAPACK = {}


def _lapack(dtype):
    """The LAPACK routines of the small dense work for one dtype (and BLAS trsm, gemm)."""
    dtype = np.dtype(dtype)
    lp = _LAPACK.get(dtype)
    if lp is None:
        cplx = dtype.kind == "c"
        names = ("geqrf", "unmqr" if cplx else "ormqr", "ungqr" if cplx else "orgqr", "trtrs", "gees", "trsen",
                 "getrf", "getrs", "potrf")
        fns = sla.lapack.get_lapack_funcs(names, dtype=dtype)
        lp = dict(zip(("geqrf", "ormqr", "orgqr", "trtrs", "gees", "trsen", "getrf", "getrs", "potrf"), fns))
        lp["trsm"], lp["gemm"] = sla.blas.get_blas_funcs(("trsm", "gemm"), dtype=dtype)
        _LAPACK[dtype] = lp
    return lp


def _qr_r(lp, A):
    """Householder QR of a tall A: returns (R, (qr, tau)) or (None, None)."""
    qr, tau, _, info = lp["geqrf"](A)
    if info != 0:
        return None, None
    c = A.shape[1]
    return np.triu(qr[:c, :c]), (qr, tau)


def _q_from(lp, T):
    """The explicit thin Q of `_qr_r`'s factorisation."""
    qr, tau = T
    q, _, _ = lp["orgqr"](qr[:, :tau.shape[0]], tau)
    return q


def _qr_q(lp, A):
    """Orthonormal basis (thin Q) of the columns of A."""
    _, T = _qr_r(lp, A)
    return _q_from(lp, T)


def _schur_select(lp, B, kk, cplx):
    """Orthonormal basis of B's invariant subspace for its kk largest |μ|, and θ = 1/μ; (None, None) on failure.

    A Schur decomposition reordered so that the selected eigenvalues lead
    (gees + trsen): the leading Schur vectors span the same space as the
    selected eigenvectors, without computing eigenvectors and without a QR
    of them.  For real B a complex-conjugate pair is taken whole or not at
    all (its space is real and two-dimensional), so fewer than kk columns may
    come back.
    """
    try:
        if cplx:
            T, _, mu, Z, _, info = lp["gees"](_no_sort, B)
        else:
            T, _, wr, wi, Z, _, info = lp["gees"](_no_sort, B)
            mu = wr + 1j * wi
    except ValueError:
        return None, None
    if info != 0 or not (np.all(np.isfinite(mu)) and np.all(np.isfinite(Z))):
        return None, None
    # the kk largest |μ|; a real matrix's conjugate pair sits in adjacent entries (positive imaginary
    # part first) with equal |μ|, so the stable sort keeps it together; a pair cut by the kk-th place
    # is dropped whole
    sel = np.zeros(mu.shape[0], dtype=np.int32)
    sel[np.argsort(-np.abs(mu), kind="stable")[:kk]] = 1
    if not cplx:
        idx = np.arange(mu.shape[0])
        partner = np.where(mu.imag > 0, idx + 1, np.where(mu.imag < 0, idx - 1, idx))
        sel[(sel == 1) & (sel[np.clip(partner, 0, mu.shape[0] - 1)] == 0)] = 0
    taken = int(sel.sum())
    if taken == 0:
        return None, None
    if cplx:
        _, Zs, w, m, _, _, info = lp["trsen"](sel, T, Z, job="N")
    else:
        _, Zs, wr, wi, m, _, _, info = lp["trsen"](sel, T, Z, job="N")
        w = wr + 1j * wi
    if info != 0 or m != taken:
        return None, None
    with np.errstate(divide="ignore"):
        theta = 1.0 / w[:m]
    return Zs[:, :m], theta


def _no_sort(*_):
    return 0


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
