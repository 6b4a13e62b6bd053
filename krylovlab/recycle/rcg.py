"""RCG: recycled (deflated) conjugate gradients for sequences of SPD systems.

Algorithm.  Deflated CG (Saad, Yeung, Erhel & Guyomarc'h, "A deflated version
of the conjugate gradient algorithm", SIAM J. Sci. Comput. 21(5), 2000) with
the deflation space harvested as in eigCG (Stathopoulos & Orginos, SIAM J.
Sci. Comput. 32(1), 2010) and RCG (Parks et al. 2006; Wang, de Sturler &
Paulino 2007): a space W of k approximate eigenvectors for the smallest
eigenvalues of the pencil (A, M⁻¹) is kept from solve to solve.  Each solve
starts with the Galerkin projection x ← x + W (WᴴAW)⁻¹ Wᴴ r and keeps every
search direction A-conjugate to W: p = z − W (WᴴAW)⁻¹ (AW)ᴴ z + β p.

Harvest.  While it iterates, the solver stores windows of ℓ directions p̃
and A p̃ together with the CG scalars.  Because the CG residuals are
M-orthogonal and the directions A-conjugate to each other and to W, the
Gram matrices of the window (with A and with M⁻¹) follow from those scalars
alone — no extra inner products — and a Rayleigh–Ritz step over
[W_pending, window] refines the pending space once per window.  At the end
of a converged solve the pending space (k vectors and their products with A)
becomes the deflation space of the next solve.

When the operator changes, AW is recomputed (k matvecs); with the same
operator object (or ``same_operator=True``) it is reused.  Either way
W is re-A-orthonormalised (k² inner products) before use.

Monitored norm: the recursively updated residual ‖r_k‖₂ (r_k = b − A x_k
in exact arithmetic); `Solver.solve` confirms convergence on the true
residual.  ``iterations`` counts CG steps (one matvec each).

Workspace: x̃, r, z, p̃, q (5 n-vectors); W and AW (2k); the harvest windows
of the solve, 2·(w(ℓ − 1) + 1) rows for w = ``harvest_windows`` (kept between
solves), or only 2ℓ rows when those would exceed 2²² numbers each (the
pending space is then formed after every window); the new space (2k) —
about 5 + 4k + 2wℓ n-vectors for n ≲ 30 000 with the defaults.

Cost: the pending space is kept as coefficients over the stored windows,
so a harvest costs only small dense work (Rayleigh–Ritz on ≤ 2k + ℓ
vectors); the n-sized combination is done once, at the end of a converged
solve.

Fast path: CSR A on the host, M None or diagonal (`Jacobi`), no monitors —
the iteration runs in numba (`kernels.cpu.defcg_csr`), with the deflation
fused into the SpMV and update sweeps, and returns to Python only once per
harvest window.  Banded matrices (stencils) from 10⁴ rows on are read from
diagonal storage, as in `CG` (``extras["storage"]``): on the n = 10⁴ Darcy
sequence 77 instead of 99 µs per iteration (ad hoc).  Otherwise a Python loop over the same steps is used.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla

from .._result import Status
from .._solver import Outcome, Problem, Solver
from ..kernels import cpu
from ..krylov._threads import single_blas_thread
from ._common import check_dim, check_space

__all__ = ["RCG"]

_STATUS = {int(s): s for s in Status}
#: banded CSR matrices: the products A p̃ read A from diagonal storage from this many rows on
_DIA_MIN_ROWS = cpu.DIA_MIN_ROWS


class RCG(Solver):
    """Recycled (deflated) CG for sequences of Hermitian positive definite systems.

    Parameters
    ----------
    A : matrix-like, optional
        SPD operator; change it with `update_operator` or ``solve(b, A=...)``.
    recycle_dim : int
        k, the number of approximate eigenvectors kept (default 8).
    harvest_dim : int
        ℓ, the length of a harvest window (default 24); 0 disables learning
        (the deflation space then stays as it is).
    harvest_windows : int
        Harvest at most this many windows per solve (default 3): the
        Rayleigh–Ritz updates and the stored windows cost time, and the
        early windows of a solve carry most of what the next solve needs
        (Darcy sequences, n = 2 500 and 10⁴: 152 and 309 matvecs per system
        with 3 windows against 151 and 303 with 6, in 9.2 and 40.7 against
        13.4 and 48.4 ms per system).
    learn_solves : int or None
        Harvest only during the first ``learn_solves`` converged solves since
        the space was last empty (None, the default: always).  eigCG's usual
        practice: on the n = 10⁴ Darcy sequence the space learned from 10
        systems served the other 30 as well (313 against 309 matvecs per
        system) and saved about 4 ms of harvest per solve (36.0 against
        40.1 ms; plain CG: 33.4 ms).  `reset` starts learning again.
    rtol, atol, maxiter, M, monitors, history
        As for every `Solver`; ``M`` must be SPD.
    warm_start : {"projection", "previous"}
        With ``x0=None``: start from the Galerkin projection onto W
        ("projection", default) or from the previous solution, projected.
    same_operator : bool or None
        Default for `update_operator` (None: decide by identity).

    Attributes
    ----------
    W, AW : ndarray (n × k) or None
        The deflation space and its product with A.
    ritz_values : ndarray or None
        Ritz values of (A, M⁻¹) for the columns of W, ascending.

    Notes
    -----
    Only converged solves update the learned space.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import RCG
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((40, 40))
    >>> solver = RCG(A, rtol=1e-8)
    >>> its = [solver.solve(np.cos(t + np.arange(1600.0))).iterations for t in range(3)]
    >>> its[2] < its[0]
    True
    """

    method = "rcg"
    norm = "residual 2-norm ||r_k|| (recursive; confirmed on the true residual)"

    def __init__(self, A=None, *, recycle_dim=8, harvest_dim=24, harvest_windows=3, learn_solves=None, rtol=1e-5,
                 atol=0.0, maxiter=None, M=None, monitors=(), history=False, warm_start="projection",
                 same_operator=None):
        self.recycle_dim = check_dim(recycle_dim, "recycle_dim", 0)
        self.harvest_dim = check_dim(harvest_dim, "harvest_dim", 0)
        self.harvest_windows = check_dim(harvest_windows, "harvest_windows", 1)
        self.learn_solves = None if learn_solves is None else check_dim(learn_solves, "learn_solves", 0)
        if self.harvest_dim == 1 or self.harvest_dim == 2:
            raise ValueError("harvest_dim must be 0 (no learning) or at least 3")
        if warm_start not in ("projection", "previous"):
            raise ValueError(f"warm_start must be 'projection' or 'previous', got {warm_start!r}")
        if same_operator not in (None, True, False):
            raise TypeError(f"same_operator must be None, True or False, got {same_operator!r}")
        self.warm_start = warm_start
        self.same_operator = same_operator
        self._keep = self.recycle_dim  # ×2 between windows (locally optimal restart)
        self._reset_state()
        self._ws = None
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=M, monitors=monitors, history=history)

    # ------------------------------------------------------------------ learned state
    def _reset_state(self):
        self._learned = 0  # converged solves that harvested since the space was empty
        self._W = None  # rows (k × n)
        self._AW = None
        self._ritz = None
        self._AW_valid = False
        self._last_x = None

    def reset(self) -> None:
        """Forget the deflation space and the previous solution."""
        self._reset_state()

    @property
    def W(self):
        """Deflation space, one vector per column (n × k), or None."""
        return None if self._W is None else self._W.T

    @property
    def AW(self):
        """A·W (n × k), or None."""
        return None if self._AW is None else self._AW.T

    @property
    def ritz_values(self):
        """Ritz values of (A, M⁻¹) for the columns of W, or None."""
        return None if self._ritz is None else self._ritz.copy()

    def set_deflation_space(self, W) -> None:
        """Deflate with the columns of W (n × j, j ≤ ``recycle_dim``) from the next solve on.

        For a space known in advance (eigenvectors of a nearby operator, a
        space saved from another run), as `GCRODR.set_recycle_space`.  The
        next solve forms A W (j matvecs) and A-orthonormalises W, dropping
        directions of non-positive or negligible curvature.  While the
        learning budget (``learn_solves``) lasts, later solves refine the
        space as usual; with ``learn_solves=0`` it is kept as given.
        """
        W = check_space(W, np, self.recycle_dim, None if self.A is None else self.A.n, name="W")
        self._reset_state()
        self._W = np.ascontiguousarray(W.T)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_ws"] = None
        state["M"] = None
        return state

    def __setstate__(self, state):
        state.setdefault("learn_solves", None)  # pickled before the option existed
        state.setdefault("_learned", 0)
        self.__dict__.update(state)
        if self.A is not None:
            from .._operator import as_preconditioner

            self.M = as_preconditioner(self._M_source, self.A.n, name="M")

    def update_operator(self, A, M=None, *, same_operator=None) -> None:
        """Set a new operator (and optionally preconditioner); AW is recomputed unless it is the same."""
        old_src = None if self.A is None else self.A.source
        old_M = self._M_source
        flag = self.same_operator if same_operator is None else same_operator
        super().update_operator(A, M)
        if flag is None:
            same = old_src is not None and self.A.source is old_src and self._M_source is old_M
        else:
            same = bool(flag)
        if not same:
            self._AW_valid = False

    def _operator_changed(self, old, new) -> None:
        if self._W is not None and new.n != self._W.shape[1]:
            self._reset_state()

    def solve(self, b, x0=None, *, A=None):
        """Solve A x = b, deflating with what earlier solves learned (see class docstring)."""
        if A is not None:
            self.update_operator(A)
        if x0 is None and self.warm_start == "previous" and self._last_x is not None \
                and self.A is not None and self._last_x.shape[0] == self.A.n:
            x0 = self._last_x
        backup = (self._W, self._AW, self._ritz, self._AW_valid, self._learned)
        # BLAS at one thread: the small dense work (QR, eigenproblems, least squares) gains nothing from
        # threads, and numpy's and scipy's two spinning pools on two cores slow it by orders of magnitude
        with single_blas_thread():
            result = super().solve(b, x0)
        if result.converged:
            self._last_x = np.array(result.x, copy=True)
        else:
            self._W, self._AW, self._ritz, self._AW_valid, self._learned = backup
        return result

    # ----------------------------------------------------------------- iteration
    def _iterate(self, pb: Problem) -> Outcome:
        op, M = pb.op, pb.M
        if op.device:
            raise TypeError("RCG runs on the host only")
        n, dtype = op.n, pb.dtype
        kmax, L = self.recycle_dim, self.harvest_dim
        diagM = M is not None and M.inv_diag is not None
        jitted = op.kind == "csr" and not pb.live and (M is None or diagM)
        if op.kind == "csr":
            a = op.csr
            data = a.data if a.data.dtype == dtype else a.data.astype(dtype)
        d = np.ascontiguousarray(M.inv_diag, dtype=dtype) if diagM else np.empty(0, dtype=dtype)
        nmv = nprec = 0
        x, b = pb.x, pb.b
        extras = {"recycle_dim": 0, "path": "jitted" if jitted else "python", "recomputed_AW": False,
                  "harvests": 0}
        if jitted:  # stencils: A p̃ from diagonal storage, as in CG
            dia_off, dia_val = cpu.dia_for_solver(a.indptr, a.indices, data, _DIA_MIN_ROWS)
            extras["storage"] = cpu.dia_storage_name(dia_off, dia_val)

        def matvec_rows(X, Y):
            nonlocal nmv
            for i in range(X.shape[0]):
                pb.matvec(X[i], Y[i])
            nmv += X.shape[0]

        # ---- deflation space for this operator, A-orthonormal
        W = AW = None
        usable = self._W is not None and not (np.iscomplexobj(self._W) and np.dtype(dtype).kind != "c")
        if kmax > 0 and usable and self._W.shape[0] > 0:
            W = self._W.astype(dtype, copy=True)
            if self._AW_valid:
                AW = self._AW.astype(dtype, copy=True)
            else:
                AW = np.empty_like(W)
                matvec_rows(W, AW)  # AW ← A W
                extras["recomputed_AW"] = True
            W, AW = _a_orthonormalise(W, AW)
            if W.shape[0] == 0:
                W = AW = None
        k = 0 if W is None else W.shape[0]
        extras["recycle_dim"] = k

        # ---- start: r ← b − A x, Galerkin projection onto W
        r = pb.residual(x) if pb.x0_given else b.copy()
        nmv += pb.x0_given
        if k:
            c = W.conj() @ r  # c ← Wᴴ r
            cpu.combine(W, c, k, x, 1.0)  # x ← x + W c
            cpu.combine(AW, -c, k, r, 1.0)  # r ← r − AW c
        rn = pb.norm(r)
        hist = np.zeros(pb.maxiter + 1 if pb.record_history else 0)
        if hist.size:
            hist[0] = rn
        if not math.isfinite(rn):
            return Outcome(x, Status.NANORINF, 0, rn, nmv, nprec, hist[:1] if hist.size else None, extras)
        if rn <= pb.tol:
            return Outcome(x, Status.RTOL, 0, rn, nmv, nprec, hist[:1] if hist.size else None, extras)
        z = d * r if diagM else (pb.precond(r) if M is not None else r)  # no M: z is r itself
        nprec += M is not None
        rho = np.vdot(r, z)
        if not (rho.real > 0) or not math.isfinite(abs(rho)):
            st = Status.PC_FAILED if M is not None else Status.NANORINF
            return Outcome(x, st, 0, rn, nmv, nprec, hist[:1] if hist.size else None, extras)
        nu = (AW.conj() @ z) if k else np.zeros(0, dtype=dtype)  # ν ← μ₀ = (AW)ᴴ z
        head = (nu.copy(), rho)
        clast = None
        pt = z.copy()
        tv = nu.copy()  # t = (AW)ᴴ p̃

        # ---- harvest state: pending space Wh (starts as W), its M⁻¹-Gram, W-coefficients
        if self._W is None:
            self._learned = 0
        learn = kmax > 0 and L >= 3 and (self.learn_solves is None or self._learned < self.learn_solves)
        if learn:
            # with a general M, Wᴴ M⁻¹ W is unknown: the pending space then starts empty
            start_W = k and (M is None or diagM)
            # carry A·Wh only while the operator stays the same: after a change it is recomputed anyway
            carry = not extras["recomputed_AW"]
            Wh = _Pending(W if start_W else None, AW if start_W else None, carry)
            if start_W:
                DW = W / d if diagM else W  # M⁻¹ W  (M⁻¹ = diag(A) for Jacobi)
                Gm = W.conj() @ DW.T  # Gm ← Wᴴ M⁻¹ W
                Gm = 0.5 * (Gm + Gm.conj().T)
            else:
                Gm = np.zeros((0, 0), dtype=dtype)
            acoef = np.eye(k, dtype=dtype) if start_W else np.zeros((k, 0), dtype=dtype)
            # window storage: all windows of the solve in one (reused) buffer when it fits the budget,
            # window w in rows [w(ℓ−1), w(ℓ−1)+ℓ) (its first row is the last one of window w − 1);
            # otherwise one window buffer, and the pending space is folded after every harvest
            rows = self.harvest_windows * (L - 1) + 1
            Wh.fold_each = rows * n > _PENDING_BUDGET
            Pbuf, APbuf = self._window_buffers(rows if not Wh.fold_each else L, n, dtype)
            Pw, APw = Pbuf[:L], APbuf[:L]
        else:
            Pw = APw = np.empty((0, n), dtype=dtype)
        rpq = np.zeros(max(L, 1))
        rrho = np.zeros(max(L, 1))
        rbeta = np.zeros(max(L, 1), dtype=dtype)
        rmu = np.zeros((max(L, 1), k), dtype=dtype)
        theta = None

        xt, xi = x, np.zeros(k, dtype=dtype)
        AWk = AW if k else np.zeros((0, n), dtype=dtype)
        q = np.empty_like(r)
        scal = np.array([rho, rn], dtype=dtype)
        it, nwin = 0, 0
        while True:
            if jitted:
                it_new, code, nwin = cpu.defcg_csr(a.indptr, a.indices, data, d, AWk, k, xt, xi, r, z, pt, nu, tv, q,
                                                   scal, it, pb.maxiter, pb.tol, hist, Pw, APw, nwin,
                                                   rpq, rbeta, rrho, rmu, dia_off, dia_val)
            else:
                it_new, code, nwin = self._defcg_python(pb, AW, k, xt, xi, r, z, pt, nu, q, scal, it, hist,
                                                        Pw, APw, nwin, rpq, rbeta, rrho, rmu, W)
            nmv += it_new - it
            nprec += (it_new - it) * (M is not None)
            it = it_new
            code = int(code)
            if code == cpu.WINDOW_FULL:
                Gm, acoef, theta, clast = _harvest(Wh, Gm, acoef, Pw, APw, nwin, rpq, rbeta, rrho,
                                                   rmu, self._keep, head, clast)
                head = None
                extras["harvests"] += 1
                # the last direction opens the next window, so that no residual is lost (with the
                # all-windows buffer the next window's first row is this one's last row already)
                if Wh.fold_each:
                    Pw[0], APw[0] = Pw[nwin - 1], APw[nwin - 1]
                else:
                    w0 = extras["harvests"] * (L - 1)
                    Pw, APw = Pbuf[w0:w0 + L], APbuf[w0:w0 + L]
                for arr in (rpq, rbeta, rrho, rmu):
                    arr[0] = arr[nwin - 1]
                nwin = 1
                if extras["harvests"] >= self.harvest_windows:
                    Pw = APw = Pw[:0]
                    nwin = 0
                continue
            status = _STATUS[code]
            break
        rn = float(scal[1].real)
        if k:
            cpu.combine(W, -xi, k, xt, 1.0)  # x ← x̃ − W ξ
        if status is Status.RTOL:
            if pb.solver.atol > 0 and pb.tol == pb.solver.atol:
                status = Status.ATOL
            if learn:
                if nwin >= 3:
                    Gm, acoef, theta, clast = _harvest(Wh, Gm, acoef, Pw, APw, nwin, rpq, rbeta,
                                                       rrho, rmu, self._keep, head, clast)
                    extras["harvests"] += 1
                if Wh.kh > kmax and theta is not None:
                    # locally optimal space → the k smallest Ritz vectors (Wh is A-orthonormal, Ritz-ordered)
                    Wh.truncate(kmax)
                    theta = theta[:kmax]
                Wh, AWh = Wh.form()
                if Wh is not None and Wh.shape[0] and math.isfinite(abs(Wh.sum())):
                    self._W = np.ascontiguousarray(Wh)
                    self._AW = None if AWh is None else np.ascontiguousarray(AWh)
                    self._AW_valid = AWh is not None
                    if theta is not None:
                        self._ritz = np.asarray(theta, dtype=float)
                    self._learned += 1
            elif k:
                self._W, self._AW, self._AW_valid = W, AW, True
        history = hist[: it + 1] if hist.size else None
        return Outcome(xt, status, it, rn, nmv, nprec, history, extras)

    def _window_buffers(self, rows, n, dtype):
        """Harvest-window storage (p̃ and A p̃ rows), kept between solves: fresh pages cost page faults."""
        ws = self._ws
        if ws is None or ws[0].shape[1] != n or ws[0].dtype != dtype or ws[0].shape[0] < rows:
            ws = (np.empty((rows, n), dtype=dtype), np.empty((rows, n), dtype=dtype))
            self._ws = ws
        return ws

    # ------------------------------------------------------------------ python loop
    def _defcg_python(self, pb, AW, k, xt, xi, r, z, pt, nu, q, scal, it0, hist, Pw, APw, nwin,
                      rpq, rbeta, rrho, rmu, W):
        """The same steps as `kernels.cpu.defcg_csr`, with any operator/preconditioner and monitors."""
        rho = scal[0]
        L = Pw.shape[0]
        curv = 0.0
        for it in range(it0 + 1, pb.maxiter + 1):
            slot = nwin
            store = slot < L
            pb.matvec(pt, q)  # q ← A p̃
            if store:
                Pw[slot] = pt
                APw[slot] = q
            if k:
                q -= nu @ AW  # q ← A p̃ − AW ν = A p
            pq = np.vdot(pt, q)
            if store:
                nwin += 1
                rpq[slot] = pq.real
            c = float(pq.real)
            if not math.isfinite(c):
                scal[0] = rho
                return it, int(Status.NANORINF), nwin
            curv = curv or (1.0 if c > 0 else -1.0)
            if c == 0.0 or c * curv < 0:
                scal[0] = rho
                return it - 1, int(Status.INDEFINITE), nwin
            alpha = rho / pq
            xi += alpha * nu
            xt += alpha * pt  # x̃ ← x̃ + α p̃
            r -= alpha * q  # r ← r − α A p
            rn = float(np.linalg.norm(r))
            scal[1] = rn
            if hist.shape[0] > it:
                hist[it] = rn
            if not math.isfinite(rn):
                scal[0] = rho
                return it, int(Status.NANORINF), nwin
            if rn <= pb.tol:
                pb.notify(it, rn, lambda: xt - xi @ W if k else xt)
                return it, int(Status.RTOL), nwin
            if pb.notify(it, rn, lambda: xt - xi @ W if k else xt):
                scal[0] = rho
                return it, int(Status.USER_STOP), nwin
            z[...] = pb.precond(r) if pb.M is not None else r  # z ← M r
            rho_new = np.vdot(r, z)
            if pb.M is not None and not (rho_new.real > 0):
                scal[0] = rho
                return it, int(Status.PC_FAILED), nwin
            s_k = AW.conj() @ z if k else nu
            beta = rho_new / rho
            rho = rho_new
            if store:
                rbeta[slot] = beta
                rrho[slot] = rho_new.real
                if k:
                    rmu[slot] = s_k
            if k:
                nu[...] = s_k + beta * nu  # ν ← μ + β ν
            pt *= beta
            pt += z  # p̃ ← z + β p̃
            if L > 0 and nwin >= L:
                scal[0] = rho
                return it, cpu.WINDOW_FULL, nwin
        scal[0] = rho
        return pb.maxiter, int(Status.MAXITER), nwin


def _a_orthonormalise(W, AW):
    """Rotate and scale W (rows) so that W A Wᴴ = I; drop directions with non-positive or tiny curvature."""
    k = W.shape[0]
    E = np.empty((k, k), dtype=W.dtype)
    cpu.gram(W, k, AW, k, E)  # E ← W A Wᴴ  (entries ⟨W_i, AW_j⟩)
    E = 0.5 * (E + E.conj().T)
    if not np.all(np.isfinite(E)):
        return W[:0], AW[:0]
    lam, V = np.linalg.eigh(E)
    keep = lam > 1e-12 * max(lam.max(initial=0.0), 1e-300)
    T = V[:, keep] / np.sqrt(lam[keep])
    return np.ascontiguousarray(T.T @ W), np.ascontiguousarray(T.T @ AW)


def _harvest(Wh, Gm_wh, acoef, Pw, APw, nw, rpq, rbeta, rrho, rmu, kmax, head=None, clast=None):
    """Rayleigh–Ritz for (A, M⁻¹) over [Wh, z_0 … z_{nw−2}], from the CG scalars of the window.

    With p_i = p̃_i − W ν_i (A-conjugate to each other and to W) and
    z_i = p̃_{i+1} − β_i p̃_i = p_{i+1} − β_i p_i + W μ_i:
    ⟨z_i, A z_j⟩ = μ_iᴴμ_j + (p-part from pᴴAp and β), ⟨Wh, A z_i⟩ = aᴴ μ_i
    (a = W-coefficients of Wh), ⟨z_i, M⁻¹ z_j⟩ = δ_ij rᴴz, ⟨Wh, M⁻¹ z_i⟩ = 0.
    For the first window of a solve, ``head = (μ₀, ρ₀)`` adds the initial
    preconditioned residual z₋₁ = p̃_0 = p_0 + W μ₀ (it carries the
    right-hand side and matters most).  Later windows start with the last
    direction of the previous one (so no z is lost); ``clast`` is the
    component of each Wh vector along that direction, which couples it to
    the first z.  ``Wh`` (a `_Pending`) is updated in place; returns the new
    (Gm, a, θ, clast), with θ None when the step failed (Wh then unchanged).
    """
    kh = Wh.kh
    nz = nw - 1
    if nz < 1:
        return Gm_wh, acoef, None, clast
    dtype = Pw.dtype
    Mu = rmu[:nz].T  # k × nz
    beta = np.asarray(rbeta[:nz], dtype=dtype)
    pq = rpq[:nw]
    rho = rrho[:nz]
    if head is not None:  # virtual p_{−1} = 0 in front of the window
        mu0, rho0 = head
        Mu = np.concatenate([np.asarray(mu0, dtype=dtype).reshape(-1, 1), Mu], axis=1)
        beta = np.concatenate([np.zeros(1, dtype=dtype), beta])
        pq = np.concatenate([[0.0], pq])
        rho = np.concatenate([[float(np.real(rho0))], rho])
        nz, shift = nz + 1, 1
    else:
        shift = 0
    size = kh + nz
    Ga = np.zeros((size, size), dtype=dtype)
    Gm = np.zeros((size, size), dtype=dtype)
    Ga[:kh, :kh] = np.eye(kh)
    Gm[:kh, :kh] = Gm_wh
    if kh and Mu.shape[0]:
        Ga[:kh, kh:] = acoef.conj().T @ Mu
    if kh and clast is not None and head is None:
        Ga[:kh, kh] += -beta[0] * np.conj(clast) * pq[0]  # ⟨Wh, A(−β₀ p₀)⟩
    Ga[kh:, :kh] = Ga[:kh, kh:].conj().T
    Z = Mu.conj().T @ Mu if Mu.shape[0] else np.zeros((nz, nz), dtype=dtype)
    i = np.arange(nz)
    Z[i, i] += pq[1:nz + 1] + np.abs(beta) ** 2 * pq[:nz]
    if nz > 1:
        j = np.arange(nz - 1)
        Z[j, j + 1] += -beta[1:nz] * pq[1:nz]
        Z[j + 1, j] += np.conj(-beta[1:nz] * pq[1:nz])
    Ga[kh:, kh:] = Z
    Gm[kh:, kh:] = np.diag(rho)
    Ga = 0.5 * (Ga + Ga.conj().T)
    Gm = 0.5 * (Gm + Gm.conj().T)
    # eigCG's locally optimal restart: the k smallest Ritz vectors of the whole window and the k
    # smallest of the window without its last vector; Rayleigh–Ritz again on their joint span
    # Gm is block diagonal (Gm_wh, diag ρ): scale to a standard Hermitian problem once
    try:
        lw, Vw = np.linalg.eigh(Gm[:kh, :kh]) if kh else (np.zeros(0), np.zeros((0, 0)))
    except np.linalg.LinAlgError:
        return Gm_wh, acoef, None, clast
    if kh and not lw.min() > 1e-14 * max(lw.max(), 1e-300) or not np.all(rho > 0):
        return Gm_wh, acoef, None, clast
    T = np.zeros((size, size), dtype=dtype)
    T[:kh, :kh] = Vw / np.sqrt(lw)
    T[kh:, kh:] = np.diag(1.0 / np.sqrt(rho))
    K = T.conj().T @ Ga @ T
    K = 0.5 * (K + K.conj().T)
    Y1 = _ritz_std(K, T, kmax)
    if Y1 is None:
        return Gm_wh, acoef, None, clast
    Y2 = _ritz_std(K[:-1, :-1], T[:-1, :-1], kmax) if size > kmax + 1 else None
    Yc = Y1 if Y2 is None else np.concatenate([Y1, np.vstack([Y2, np.zeros((1, Y2.shape[1]), dtype=dtype)])], axis=1)
    # Gm-orthonormal basis of span(Yc), then Ritz pairs in it
    Gc = Yc.conj().T @ Gm @ Yc
    lam, V = np.linalg.eigh(0.5 * (Gc + Gc.conj().T))
    keep = lam > 1e-10 * max(lam.max(initial=0.0), 1e-300)
    B = Yc @ (V[:, keep] / np.sqrt(lam[keep]))
    theta, Zs = np.linalg.eigh(0.5 * ((B.conj().T @ Ga @ B) + (B.conj().T @ Ga @ B).conj().T))
    pos = theta > 0
    theta, Y = theta[pos], B @ Zs[:, pos]
    if theta.size == 0:
        return Gm_wh, acoef, None, clast
    Y = Y / np.sqrt(theta)  # Yᴴ Ga Y = I  (A-orthonormal Ritz vectors)
    # rows: Wh_new = Y[:kh]ᵀ Wh + (Bmat ᵀ-combination of the window)  with z_i = p̃_{i+1} − β_i p̃_i
    Yz = Y[kh:]  # nz × kk
    Cw = np.zeros((nz + 1, Y.shape[1]), dtype=dtype)  # coefficients on (virtual p̃_{−1},) p̃_0 … p̃_{nw−1}
    Cw[1:] += Yz
    Cw[:nz] -= beta[:, None] * Yz
    Cw = Cw[shift:]
    if not (np.all(np.isfinite(Cw)) and np.all(np.isfinite(Y))):
        return Gm_wh, acoef, None, clast
    # Wh_new = Y[:kh]ᵀ Wh + Cwᵀ P̃_window  (kept as coefficients; formed once at the end)
    Wh.update(Y[:kh], Cw, Pw[:nw], APw[:nw])
    Gm_new = Y.conj().T @ Gm @ Y
    a_new = np.concatenate([acoef, Mu], axis=1) @ Y if acoef.shape[0] else np.zeros((0, Y.shape[1]), dtype=dtype)
    return Gm_new, a_new, theta, Y[size - 1].copy()


class _Pending:
    """The pending deflation space of a solve, Wh = Σ_b C_bᵀ·P_b over stored row blocks P_b.

    Each harvest replaces Wh by Yᵀ Wh + Cᵀ P_window, which only updates the
    small coefficient matrices; the n-vectors are combined once, by `form`,
    at the end of the solve (instead of 2k × (k + ℓ) × n flops per window).
    The blocks are the harvest windows themselves (and the starting W); when
    they would exceed ``_PENDING_BUDGET`` numbers, they are folded into one.
    A·Wh is tracked the same way when ``with_A`` (operator unchanged).
    """

    def __init__(self, W, AW, with_A):
        self.with_A = with_A
        self.fold_each = False  # fold after every update (the window buffer is then reused)
        self.blocks = []  # [P (rows × n), AP or None, C (rows × kh)]
        self.kh = 0
        if W is not None and W.shape[0]:
            self.blocks.append([W, AW if with_A else None, np.eye(W.shape[0], dtype=W.dtype)])
            self.kh = W.shape[0]

    def update(self, Y, Cw, P, AP):
        for blk in self.blocks:
            blk[2] = blk[2] @ Y
        self.blocks.append([P, AP if self.with_A else None, Cw])
        self.kh = Cw.shape[1]
        if self.fold_each or sum(b[0].shape[0] for b in self.blocks) * P.shape[1] > _PENDING_BUDGET:
            W, AW = self.form()
            self.blocks = [[W, AW, np.eye(W.shape[0], dtype=W.dtype)]]

    def truncate(self, kk):
        for blk in self.blocks:
            blk[2] = blk[2][:, :kk]
        self.kh = min(self.kh, kk)

    def form(self):
        """(Wh, A·Wh or None) as row arrays, or (None, None) when empty."""
        if not self.blocks or self.kh == 0:
            return None, None
        W = sum(blk[2].T @ blk[0] for blk in self.blocks)
        AW = sum(blk[2].T @ blk[1] for blk in self.blocks) if self.with_A else None
        return np.ascontiguousarray(W), (None if AW is None else np.ascontiguousarray(AW))


#: numbers (rows × n) the pending space may keep in unformed blocks before folding them
_PENDING_BUDGET = 1 << 23


def _ritz(Ga, Gm, kk):
    """The kk smallest Ritz vectors of the pencil (Ga, Gm) with positive Ritz values, or None."""
    try:
        theta, Y = sla.eigh(Ga, Gm, check_finite=True)
    except (np.linalg.LinAlgError, ValueError):
        return None
    pos = theta > 0
    if not pos.any():
        return None
    return Y[:, pos][:, :kk]


def _ritz_std(K, T, kk):
    """The kk smallest Ritz vectors T·z of the scaled Hermitian matrix K (positive values only), or None."""
    try:
        theta, Z = np.linalg.eigh(K)
    except np.linalg.LinAlgError:
        return None
    pos = theta > 0
    if not pos.any():
        return None
    return T @ Z[:, pos][:, :kk]
