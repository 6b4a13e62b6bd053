"""Sketch-and-precondition least squares for tall matrices.

Algorithm (Rokhlin & Tygert, PNAS 2008; Avron, Maymounkov & Toledo,
"Blendenpik", SISC 2010; Meng, Saunders & Mahoney, "LSRN", SISC 2014):

1. Draw a sketch S (d × m, d ≈ 4n) and form S A and S b in one pass over A.
2. Factorise [S A, S b] = Q [R z; 0 ρ].  R is the preconditioner and
   x₀ = R⁻¹ z is the sketch-and-solve answer, used as the warm start (which
   also makes the method forward stable: Meier, Nakatsukasa, Townsend & Webb,
   arXiv 2302.07202; Epperly, "iterative sketching is stable", 2023).
   R comes from Cholesky-QR (Cholesky of the sketch's Gram matrix, formed by
   BLAS syrk at a third of Householder QR's cost) whenever the resulting
   SA R⁻¹ passes an orthonormality check, and from Householder QR otherwise
   (κ(A) beyond ≈ 1e7, numerical rank deficiency); see `_factor`.
3. If a condition estimate of R says SA may be numerically rank deficient,
   take the SVD R = U Σ Vᵀ instead, keep the r singular values above
   ``rcond·σ₁`` and precondition with N = V_r Σ_r⁻¹ (LSRN).  Because N maps
   into the row space of A, the iteration then converges to the
   *minimum-norm* least-squares solution, like ``numpy.linalg.lstsq``.
4. Solve min_y ‖A N y − (b − A x₀)‖ (plus ``damp``·‖x‖ when damping) with
   CGLS, LSQR or LSMR.  A N has condition number ≈ (1+ε)/(1−ε), ε ≈ √(n/d),
   so the iteration count is ≈ 40–50 for 1e-14 whatever κ(A) is.

The default solver, CGLS, runs one fused numba pass per iteration that
returns both q = A w and Aᵀq (`kernels.cpu.normal_dense` / `normal_csr`), so
an iteration reads A once instead of twice as LSQR does.

Monitored norms (scipy's ``lsqr`` stopping rules, on the preconditioned
operator Ā = [A; damp·I] N):

* test 1 (consistent systems): ‖r̃‖ ≤ btol·‖b‖ + atol·‖A‖_F·‖x‖,
* test 2 (least squares):      ‖Āᵀ r̃‖ ≤ atol·‖Ā‖·‖r̃‖,

with r̃ = [b − A x; −damp·x].  Because Ā is well conditioned, test 2 bounds
the excess residual: ‖A(x − x*)‖ ≤ κ(Ā)·atol·‖r̃‖.  Whichever test fires is
re-checked on the true residual (one more pass) before the result claims
convergence, and a final check on the unpreconditioned gradient ‖Ãᵀ r̃‖
guards against a sketch that missed part of A's column space.

Workspace: the d × n sketch, R (n × n), and three m-vectors (r, q, b) plus
four n-vectors.  ``mode="sketch-solve"`` stops after step 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from types import MappingProxyType
from typing import Any, Mapping

import numba
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

from .._operator import _check_finite_values, as_operator, check_vector, is_device_array
from .._result import Status
from ..kernels import cpu
from ..kernels.cpu._sketch import normal_dense_serial
from .sketches import SketchOperator, make_sketch

__all__ = ["lstsq", "LstsqResult", "linf_sketch_size"]

_EPS = np.finfo(np.float64).eps


@dataclasses.dataclass(frozen=True, eq=False)
class LstsqResult:
    """Outcome of `lstsq`.

    Attributes
    ----------
    x : ndarray
        The computed solution.
    status : Status
        ``RTOL`` (test 1: consistent system solved), ``ATOL`` (test 2: least
        squares optimality), ``MAXITER``, ``STAGNATION`` (the final gradient
        check failed: raise ``sketch_size``), ``NANORINF``, or ``USER_STOP``
        for ``mode="sketch-solve"`` (an approximate answer by design).
    iterations : int
        Iterations of the inner solver (0 for sketch-and-solve).
    rnorm : float
        ‖b − A x‖₂, computed from x at the end (not a recursive estimate).
    arnorm : float
        ‖Aᵀ(b − A x) − damp²·x‖₂, the gradient of the objective, likewise exact.
    xnorm : float
        ‖x‖₂.
    rank : int
        Numerical rank of S A (equal to rank(A) when S embeds A's column space).
    full_rank : bool
        ``rank == n``.
    acond : float
        Estimate of κ₂(A) (from R, within the sketch's distortion).
    sketch : str
        Sketch family used (``"none"`` when d ≥ m, where A itself is factorised).
    sketch_size : int
    mode, solver : str
    time : float
        Wall time in seconds; ``timings`` splits it into sketch, factor,
        iterate and check.
    history : ndarray or None
        ‖r̃‖ per iteration when ``history=True``.
    """

    x: Any
    status: Status
    iterations: int
    rnorm: float
    arnorm: float
    xnorm: float
    rank: int
    full_rank: bool
    acond: float
    sketch: str
    sketch_size: int
    mode: str
    solver: str
    time: float = 0.0
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict)
    history: np.ndarray | None = None
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "timings", MappingProxyType(dict(self.timings)))
        object.__setattr__(self, "extras", MappingProxyType(dict(self.extras)))

    @property
    def converged(self) -> bool:
        return self.status in (Status.RTOL, Status.ATOL)

    @property
    def message(self) -> str:
        if self.status == Status.USER_STOP and self.mode == "sketch-solve":
            return "sketch-and-solve answer (no iterations): approximate by design; use mode='precondition' for full accuracy."
        if self.status == Status.STAGNATION:
            return ("the final gradient check failed: the sketch did not capture A's column space. "
                    "Raise sketch_size or use a denser sketch.")
        return self.status.message

    def __repr__(self):
        return (f"LstsqResult(status={self.status.name}, iterations={self.iterations}, rnorm={self.rnorm:.6e}, "
                f"arnorm={self.arnorm:.3e}, rank={self.rank}, sketch={self.sketch!r}, sketch_size={self.sketch_size}, "
                f"time={self.time:.3g}s)")


def linf_sketch_size(m: int, n: int, eps: float = 0.5, delta: float = 0.01) -> int:
    """Dense-sketch rows for the ℓ∞ guarantee of sketch-and-solve.

    Song, Ye, Yin & Zhang (ICML 2023) show that a dense sketch with
    d = ε⁻²·n·log³(m/δ) rows gives, with probability 1 − δ,
    ‖x′ − x*‖_∞ ≤ (ε/√n)·‖A x* − b‖·‖A⁺‖ for x′ = argmin ‖S A x − S b‖.
    The constant in their O(·) is not explicit; this returns the formula
    with constant 1, capped at m (a size to start from, not a certificate).

    Examples
    --------
    >>> from krylovlab.sketch import linf_sketch_size
    >>> linf_sketch_size(100_000, 50, eps=0.5)
    100000
    >>> linf_sketch_size(10**9, 10, eps=1.0) < 10**9
    True
    """
    if not (0 < eps and 0 < delta < 1):
        raise ValueError("need eps > 0 and 0 < delta < 1")
    d = math.ceil(n * math.log(m / delta) ** 3 / eps**2)
    return int(min(max(d, n + 1), m))


_SKETCHES = ("sparse-sign", "countsketch", "gaussian", "srht")


# --------------------------------------------------------------------------- operator
class _Tall:
    """A validated tall matrix with the fused normal-equation pass."""

    def __init__(self, A, check_finite: bool = True):
        if is_device_array(A):
            raise TypeError("lstsq runs on the host: pass numpy/scipy inputs (the sketch operators accept CuPy arrays)")
        if isinstance(A, spla.LinearOperator) or (callable(A) and not hasattr(A, "shape")):
            raise TypeError("lstsq needs an explicit matrix (dense array or scipy sparse); a LinearOperator cannot be sketched cheaply")
        op = as_operator(A, name="A", square=False, check_finite=check_finite or sp.issparse(A))
        if op.dtype.kind == "c":
            raise TypeError("lstsq supports real matrices only (got a complex dtype)")
        self.shape = op.shape
        self.checked = check_finite or op.kind == "csr"  # entries known to be finite
        if op.kind == "csr":
            a = op.csr if op.csr.dtype == np.float64 else op.csr.astype(np.float64)
            self.kind, self.csr, self.dense = "csr", a, None
        else:
            self.kind, self.csr = "dense", None
            self.dense = np.ascontiguousarray(op.dense, dtype=np.float64)

    def check_finite(self):
        """Raise ValueError if A has a NaN or Inf entry (the scan `as_operator` does)."""
        _check_finite_values(self.matrix.data if self.kind == "csr" else self.dense, "A")
        self.checked = True

    @property
    def matrix(self):
        return self.csr if self.kind == "csr" else self.dense

    def normal(self, w, b, residual, q, t):
        """q ← A w (or b − A w); t ← Aᵀ q, one pass over A."""
        if self.kind == "csr":
            a = self.csr
            cpu.normal_csr(a.indptr, a.indices, a.data, w, b, residual, q, t)
        else:
            cpu.normal_dense(self.dense, w, b, residual, q, t)

    def matvec(self, w):
        return self.matrix @ w

    def rmatvec(self, u):
        return self.matrix.T @ u


class _Precond:
    """N = R⁻¹ (triangular) or N = V_r Σ_r⁻¹ (after an SVD of R)."""

    def __init__(self, R, rcond):
        n = R.shape[0]
        self.n = n
        self.fro = float(np.linalg.norm(R))  # ≈ ‖A‖_F (within the sketch distortion)
        diag = np.abs(np.diag(R))
        est = 0.0
        if n and diag.min() > 0:
            est, info = sla.lapack.dtrcon(R, norm="1", uplo="U", diag="N")
            est = float(est) if info == 0 else 0.0
        # 1-norm estimates are within a factor n of the 2-norm; be conservative.  When the 1-norm test
        # is inconclusive, a few power steps estimate the 2-norm condition in O(n²) each before paying
        # for an O(n³) SVD (κ(A) = 1e6 at n = 1000 lands there: the SVD cost more than the iteration).
        full_rank = est > 0 and est > rcond * n * 10
        if est > 0 and not full_rank:
            est2 = _rcond2_estimate(R)  # overestimates by < 1.5x after 12 steps; demand a 100x margin
            full_rank = est2 > 100.0 * rcond
            est = est2 if full_rank else est
        if full_rank:
            self.kind = "triangular"
            self.R = np.ascontiguousarray(R)
            self.rank = n
            self.acond = 1.0 / est
            self.sv = None
        else:
            U, s, Vt = np.linalg.svd(R)
            keep = s > rcond * (s[0] if s.size else 0.0)
            r = int(keep.sum())
            self.kind = "svd"
            self.U = U[:, :r]
            self.sv = s
            self.Vs = np.ascontiguousarray(Vt[:r].T / s[:r])  # N = V_r Σ_r⁻¹ (n × r)
            self.rank = r
            self.acond = float(s[0] / s[r - 1]) if r else math.inf
        self.k = self.rank

    def solve_start(self, z):
        """x₀ = N (first part of Qᵀ S b): R⁻¹ z, or V_r Σ_r⁻¹ U_rᵀ z."""
        if self.kind == "triangular":
            return sla.solve_triangular(self.R, z, check_finite=False)
        return self.Vs @ (self.U.T @ z)

    def apply(self, p):
        """w ← N p."""
        if self.kind == "triangular":
            return sla.solve_triangular(self.R, p, check_finite=False)
        return self.Vs @ p

    def apply_t(self, t):
        """Nᵀ t."""
        if self.kind == "triangular":
            return sla.solve_triangular(self.R, t, trans="T", check_finite=False)
        return self.Vs.T @ t


def _rcond2_estimate(R, steps: int = 12) -> float:
    """Estimate σ_min(R)/σ_max(R) for an upper-triangular R by power iteration (O(n²) per step).

    Power iteration on RᵀR and on (RᵀR)⁻¹ (two triangular solves) from a fixed
    random start; both estimates approach their singular values from inside, so
    the ratio can only overestimate, by a factor that after 12 steps is below
    (1/|c₁|)^(1/24) for a start with component c₁ along the singular vector
    (about 1.3 for n = 1000) — the caller divides by 100 before trusting it.
    Returns 0 when R is singular or the iteration overflows.
    """
    n = R.shape[0]
    if n == 0:
        return 1.0
    rng = np.random.default_rng(12345)
    with np.errstate(all="ignore"):
        v = rng.standard_normal(n)
        v /= np.linalg.norm(v)
        smax2 = 0.0
        for _ in range(steps):
            u = R.T @ (R @ v)
            smax2 = float(np.linalg.norm(u))
            if not (smax2 > 0 and math.isfinite(smax2)):
                return 0.0
            v = u / smax2
        v = rng.standard_normal(n)
        v /= np.linalg.norm(v)
        imax2 = 0.0
        for _ in range(steps):
            try:
                u = sla.solve_triangular(R, sla.solve_triangular(R, v, trans="T", check_finite=False),
                                         check_finite=False)
            except (np.linalg.LinAlgError, ValueError):
                return 0.0
            imax2 = float(np.linalg.norm(u))
            if not (imax2 > 0 and math.isfinite(imax2)):
                return 0.0
            v = u / imax2
    return 1.0 / math.sqrt(smax2 * imax2)


def _geqrf_r(M):
    """R factor (upper triangle of the first ncols rows) of a tall M (Householder QR, LAPACK geqrf).

    Through `numpy.linalg.qr`: on our machines numpy's OpenBLAS build runs this
    4000 × 1001 factorisation 3.6-4.4x faster than scipy's `geqrf` wrapper
    (0.52 vs 1.89 s at one thread), with the same R.
    """
    k = M.shape[1]
    R = np.linalg.qr(M, mode="r")
    return np.triu(R[:k, :k])


#: a Cholesky factor of the sketch's Gram matrix is accepted as preconditioner when the
#: power-iteration estimate of ‖(SA R⁻¹)ᵀ(SA R⁻¹) − I‖₂ is below this (κ(SA R⁻¹) ≤ √3)
_GRAM_TOL = 0.5


def _gram_defect(SA, R, damp: float = 0.0, steps: int = 5) -> float:
    """Power-iteration estimate of ‖Q̂ᵀQ̂ − I‖₂ for Q̂ = [SA; damp·I] R⁻¹ (∞ when it blows up).

    Works from SA itself, not from its rounded Gram matrix, so it sees the
    error of forming SAᵀSA as well as the error of the Cholesky factorisation.
    Each step costs two triangular solves and two products with SA.  The
    estimate approaches the largest |eigenvalue| from below; an underestimate
    only costs CGLS iterations (the answer is checked on true residuals), and
    the failure that matters — a numerically singular SA, where Q̂ has columns
    of norm ≈ √ε and the defect is ≈ 1 — is an isolated eigenvalue that the
    iteration finds in a step or two.
    """
    n = R.shape[0]
    v = np.random.default_rng(20240611).standard_normal(n)
    v /= np.linalg.norm(v)
    lam = 0.0
    d2 = damp * damp
    q = np.empty(SA.shape[0])
    g = np.empty(n)
    with np.errstate(all="ignore"):
        for _ in range(steps):
            y = sla.solve_triangular(R, v, check_finite=False)
            if SA.flags.c_contiguous:
                normal_dense_serial(SA, y, q, False, q, g)  # g ← SAᵀ(SA y), one pass over SA
            else:
                g = SA.T @ (SA @ y)
            if d2:
                g += d2 * y
            u = sla.solve_triangular(R, g, trans="T", check_finite=False) - v
            lam = float(np.linalg.norm(u))
            if not math.isfinite(lam):
                return math.inf
            if lam == 0.0:
                return 0.0
            v = u / lam
    return lam


def _factor(SA, Sb, damp, rcond, gram=True):
    """Preconditioner and sketch-and-solve data from the sketch S A, S b (damping rows implied).

    Returns ``(N, z, how)``: N a `_Precond`, z = Qᵀ S b restricted to N's range
    (the warm start is N.solve_start(z)), ``how`` the factorisation used.

    First choice is Cholesky-QR: the Gram matrix SAᵀSA (+ damp²·I) by one
    symmetric rank-k update (BLAS syrk, half the flops of Householder QR and at
    level-3 speed — 0.14 against 0.42 s for a 4000 × 1000 sketch here, and no
    column-major copy of the sketch) and R = chol of it.  Squaring the
    condition number makes that R inaccurate once κ(A) nears 1/√ε, so it is
    kept only if the defect of Q̂ = [SA; damp·I] R⁻¹ from orthonormality is small
    (`_gram_defect`) and R is full rank by `_Precond`'s test: then it is as
    good a preconditioner as the Householder R (κ(Q̂) ≤ √3 multiplies the
    sketch distortion).  Otherwise — numerical rank deficiency, Cholesky
    breakdown, κ(A) beyond ≈ 1e7 — Householder QR of [SA, Sb; damp·I, 0]
    decides, with the SVD fallback for rank-deficient R.

    ``gram=False`` skips Cholesky-QR: for ``mode="sketch-solve"`` the answer
    R⁻¹z is returned as it is, and through the Gram matrix it would solve the
    sketched normal equations, with an error growing like κ(A)² instead of κ(A).
    """
    d, n = SA.shape
    if gram:
        # SAᵀSA without copying SA: syrk of the transpose of a row-major array is the column-major case
        if not (SA.flags.c_contiguous or SA.flags.f_contiguous):
            SA = np.ascontiguousarray(SA)
        if SA.flags.c_contiguous:
            G = sla.blas.dsyrk(1.0, SA.T, trans=0, lower=0)
        else:
            G = sla.blas.dsyrk(1.0, SA, trans=1, lower=0)
        if damp > 0:
            G[np.diag_indices(n)] += damp * damp
        R, info = sla.lapack.dpotrf(G, lower=0, clean=1, overwrite_a=1)
        # The rest is O(n²)-per-step work, run on one BLAS thread.  Besides, OpenBLAS's idle workers
        # spin for ~0.1 s after their last threaded call and slow the numba passes that follow on a
        # 2-core machine (first passes 60-100 instead of 40 ms measured here); this serial stretch
        # lets that spin run out before the iteration starts instead of re-arming it.
        with threadpool_limits(1, user_api="blas"):
            if info == 0 and np.all(np.isfinite(R)) and _gram_defect(SA, R, damp) <= _GRAM_TOL:
                N = _Precond(R, rcond)
                if N.kind == "triangular":
                    # z = R⁻ᵀ (SA)ᵀ S b, the last column of the augmented Cholesky factor
                    z = sla.solve_triangular(R, SA.T @ Sb, trans="T", check_finite=False)
                    return N, z, "cholesky-qr"
    M = np.zeros((d + (n if damp > 0 else 0), n + 1), dtype=np.float64, order="F")
    M[:d, :n] = SA
    M[:d, n] = Sb
    if damp > 0:
        M[d:, :n] = damp * np.eye(n)  # [S A; damp·I]
    Raug = _geqrf_r(M)
    del M
    return _Precond(Raug[:n, :n], rcond), Raug[:n, n].copy(), "householder-qr"


# ------------------------------------------------------------------------------ lstsq
def lstsq(A, b, *, sketch: str | SketchOperator = "sparse-sign", sketch_size: int | None = None,
          mode: str = "precondition", solver: str = "cgls", damp: float = 0.0, atol: float = 1e-12,
          btol: float = 1e-12, iter_lim: int | None = None, rcond: float | None = None,
          warm_start: bool = True, rng=None, history: bool = False, threads: int | None = None) -> LstsqResult:
    """Least squares min ‖A x − b‖₂ (+ damp²‖x‖²) for tall A by sketch-and-precondition.

    Parameters
    ----------
    A : (m, n) ndarray or scipy sparse matrix, m ≥ n
        Real, finite.  Wide matrices (m < n) raise ``ValueError``.
    b : (m,) array
    sketch : {"sparse-sign", "countsketch", "gaussian", "srht"} or SketchOperator
        Sketch family (see `krylovlab.sketch.sketches`).  For preconditioning
        the cheap sparse sketches are the right choice; for
        ``mode="sketch-solve"`` with per-coordinate accuracy use a dense one
        (``"gaussian"`` or ``"srht"``, size from `linf_sketch_size`).
    sketch_size : int, optional
        Rows d of the sketch; default 4·n.  When d ≥ m no sketch is drawn and
        A itself is factorised (``result.sketch == "none"``).
    mode : {"precondition", "sketch-solve"}
        ``"sketch-solve"`` returns x = argmin ‖S(A x − b)‖ without iterating.
    solver : {"cgls", "lsqr", "lsmr"}
        Inner iteration on the preconditioned problem.  ``"cgls"`` (default)
        uses the fused one-pass kernel; ``"lsqr"``/``"lsmr"`` call scipy.
    damp : float
        Tikhonov damping: minimise ‖A x − b‖² + damp²‖x‖².
    atol, btol : float
        scipy ``lsqr`` stopping tolerances (module docstring); the defaults
        aim at LAPACK-level residuals.
    iter_lim : int, optional
        Iteration limit (default 2·n + 100).
    rcond : float, optional
        Relative cut-off for small singular values of S A when it is
        numerically rank deficient (default ``eps·max(m, n)``, numpy's).
    warm_start : bool
        Start from the sketch-and-solve answer (recommended: fewer iterations
        and forward stability).
    rng : int, Generator or None
        Seed for the sketch; the same seed gives the same result.
    history : bool
        Record ‖r̃‖ per iteration.
    threads : int, optional
        Threads for the sketch, the QR (BLAS) and the passes over A (numba).
        Default: all cores, or 1 when the machine is busy (1-minute load
        average above the core count + ½) — on a shared, oversubscribed
        machine threaded BLAS and numba regions stall waiting for each other
        (measured here: QR of the sketch 28× slower at load 19 on 2 cores).

    Returns
    -------
    LstsqResult

    Raises
    ------
    ValueError
        Wide A, mismatched b, NaN/Inf entries, bad options.
    TypeError
        Complex or non-numeric input, LinearOperators, CuPy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import lstsq
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((2000, 50)) @ np.diag(np.logspace(0, 6, 50))
    >>> b = rng.standard_normal(2000)
    >>> res = lstsq(A, b, rng=0)
    >>> res.converged, res.rank
    (True, 50)
    >>> x_ref = np.linalg.lstsq(A, b, rcond=None)[0]
    >>> bool(abs(res.rnorm - np.linalg.norm(b - A @ x_ref)) <= 1e-10 * res.rnorm)
    True
    """
    t_start = time.perf_counter()
    if mode not in ("precondition", "sketch-solve"):
        raise ValueError(f"mode must be 'precondition' or 'sketch-solve', got {mode!r}")
    if solver not in ("cgls", "lsqr", "lsmr"):
        raise ValueError(f"solver must be 'cgls', 'lsqr' or 'lsmr', got {solver!r}")
    for name, v in (("damp", damp), ("atol", atol), ("btol", btol)):
        if isinstance(v, (bool, str)) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite non-negative number, got {v!r}")
    damp, atol, btol = float(damp), float(atol), float(btol)

    # A built-in sketch mixes every row of A into S A, so a NaN/Inf entry of dense A shows up in S A:
    # the scan of A (one more pass over it) is then needed only when S A is not finite (see _lstsq).
    builtin = isinstance(sketch, str) and sketch.lower() in _SKETCHES
    op = _Tall(A, check_finite=not builtin)
    m, n = op.shape
    if m < n:
        raise ValueError(
            f"lstsq sketches tall matrices (m >= n); A has shape {op.shape}. For wide (underdetermined) "
            "systems use scipy.sparse.linalg.lsqr (minimum-norm solution from x0 = 0) or numpy.linalg.lstsq."
        )
    if n == 0:
        raise ValueError("A has no columns")
    b = check_vector(b, m, "b")
    if b.dtype.kind == "c":
        raise TypeError("lstsq supports real right-hand sides only")
    b = np.ascontiguousarray(b, dtype=np.float64)
    if iter_lim is None:
        iter_lim = 2 * n + 100
    if isinstance(iter_lim, bool) or not isinstance(iter_lim, (int, np.integer)) or iter_lim < 0:
        raise ValueError(f"iter_lim must be a non-negative integer, got {iter_lim!r}")
    if rcond is None:
        rcond = _EPS * max(m, n)
    if not (isinstance(rcond, (int, float, np.floating)) and 0 <= rcond < 1):
        raise ValueError(f"rcond must be in [0, 1), got {rcond!r}")

    if threads is None:
        threads = 1 if _busy() else numba.config.NUMBA_NUM_THREADS
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    threads = int(min(threads, numba.config.NUMBA_NUM_THREADS))
    with _thread_limit(threads):
        return _lstsq(op, b, m, n, sketch, sketch_size, mode, solver, damp, atol, btol, int(iter_lim), float(rcond),
                      warm_start, rng, history, threads, t_start)


def _busy() -> bool:
    """The package-wide test (`kernels.cpu.machine_busy`: load above cores + ½).

    A stricter 75 %-of-cores threshold used to be applied here; a benchmark's
    own two-thread runs lift the load average to ~1.8 on two cores, so it
    pushed later solves in the same process onto one thread (38 passes over A
    at 95 instead of 60 ms each).
    """
    return cpu.machine_busy()


@contextlib.contextmanager
def _thread_limit(threads):
    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        with threadpool_limits(threads, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(old)


def _lstsq(op, b, m, n, sketch, sketch_size, mode, solver, damp, atol, btol, iter_lim, rcond, warm_start, rng,
           history, threads, t_start):
    timings = {}
    # ------------------------------------------------------------- 1. sketch S A, S b
    t0 = time.perf_counter()
    if isinstance(sketch, SketchOperator):
        if sketch.m != m:
            raise ValueError(f"the sketch has {sketch.m} columns but A has {m} rows")
        S = sketch
        d = S.d
        sketch_name = S.name
    else:
        if not isinstance(sketch, str) or sketch.lower() not in _SKETCHES:
            raise ValueError(f"unknown sketch {sketch!r}; valid sketches: sparse-sign, countsketch, gaussian, srht")
        d = 4 * n if sketch_size is None else sketch_size
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < n:
            raise ValueError(f"sketch_size must be an integer >= n = {n}, got {sketch_size!r}")
        d = int(d)
        S = None if d >= m else make_sketch(sketch.lower(), d, m, rng=rng)
        sketch_name = "none" if S is None else sketch.lower()
        if S is None:
            d = m
    if S is None:
        SA = op.matrix.toarray() if op.kind == "csr" else op.dense
        Sb = b
    else:
        # an unchecked A is scanned through S A just below; an Inf in it makes inf − inf there, which numpy
        # would warn about ("invalid value encountered in matmul") right before the clear error
        with np.errstate(invalid="ignore") if not op.checked else contextlib.nullcontext():
            SA = S @ op.matrix  # S A (row-major, d × n)
        Sb = S @ b
    if not op.checked and (S is None or not cpu.all_finite(SA.ravel())):
        op.check_finite()  # raises for NaN/Inf in A; a finite A whose sketch overflowed goes on as before
    timings["sketch"] = time.perf_counter() - t0

    # ---------------------------------------------- 2. factorise the sketch, rank check
    t0 = time.perf_counter()
    N, z, factor = _factor(SA, Sb, damp, float(rcond), gram=mode == "precondition")
    del SA
    with threadpool_limits(1, user_api="blas"):  # small dense work: one thread, one BLAS pool
        x = N.solve_start(z) if (warm_start or mode == "sketch-solve") else np.zeros(n)
    timings["factor"] = time.perf_counter() - t0

    bnorm = float(cpu.norm2(b))
    q = np.empty(m)
    t = np.empty(n)
    base = dict(rank=N.rank, full_rank=N.rank == n, acond=N.acond, sketch=sketch_name, sketch_size=int(d),
                mode=mode, solver=solver if mode == "precondition" else "none")
    extras = {"preconditioner": "R^-1 (QR)" if N.kind == "triangular" else "V_r S_r^-1 (SVD of R)", "factor": factor,
              "damp": damp, "atol": atol, "btol": btol, "threads": threads}

    def exact(xv):
        """r = b − A x and g = Aᵀ r − damp²·x, exactly (one pass)."""
        op.normal(xv, b, True, q, t)  # q ← b − A x;  t ← Aᵀ q
        g = t - damp**2 * xv if damp > 0 else t.copy()
        return q, g

    if mode == "sketch-solve":
        t0 = time.perf_counter()
        r, g = exact(x)
        timings["check"] = time.perf_counter() - t0
        rn = float(cpu.norm2(r))
        status = Status.USER_STOP if math.isfinite(rn) else Status.NANORINF
        return LstsqResult(x, status, 0, rn, float(np.linalg.norm(g)), float(np.linalg.norm(x)), **base,
                           time=time.perf_counter() - t_start, timings=timings, extras=extras)

    # ----------------------------------------------------------------- 3. iterate
    t0 = time.perf_counter()
    with threadpool_limits(1, user_api="blas"):
        if solver == "cgls":
            x, status, its, hist, fresh = _cgls(op, N, b, x, damp, atol, btol, bnorm, int(iter_lim), history, q, t)
        else:
            x, status, its, hist = _scipy_inner(op, N, b, x, damp, atol, btol, int(iter_lim), solver)
            fresh = False
    timings["iterate"] = time.perf_counter() - t0

    # ------------------------------------------------------ 4. honest final numbers
    t0 = time.perf_counter()
    if fresh:  # CGLS confirmed its claim on a true residual at this very x: q and t are exact
        r, g = q, (t - damp**2 * x if damp > 0 else t)
    else:
        r, g = exact(x)
    rn = float(cpu.norm2(r))
    xn = float(np.linalg.norm(x))
    gn = float(np.linalg.norm(g))
    rtil = math.hypot(rn, damp * xn)
    if not (math.isfinite(rn) and math.isfinite(gn)):
        status = Status.NANORINF
    elif status in (Status.RTOL, Status.ATOL):
        # Guard against a sketch that lost part of range(A): a correct answer has a tiny gradient.
        anorm = N.fro
        bound = 1e3 * max(atol, _EPS) * anorm * (rtil + anorm * xn) + 1e3 * _EPS * anorm * bnorm
        if gn > bound:
            status = Status.STAGNATION
            extras["gradient_check"] = f"failed: ||A^T r|| = {gn:.3e} > {bound:.3e}"
    timings["check"] = time.perf_counter() - t0
    return LstsqResult(x, status, its, rn, gn, xn, **base, time=time.perf_counter() - t_start, timings=timings,
                       history=None if hist is None else np.asarray(hist), extras=extras)


# ------------------------------------------------------------------------ inner solvers
def _cgls(op: _Tall, N: _Precond, b, x, damp, atol, btol, bnorm, iter_lim, record, q, t):
    """CGLS on min ‖Ã N y − r̃₀‖, tracking x = x₀ + N y directly.

    Returns (x, status, iterations, history, fresh); ``fresh`` says that q and
    t hold b − A x and Aᵀ(b − A x) for the returned x, computed by a pass after
    x's last update (the convergence confirmation), so the caller need not
    repeat that pass.
    """
    d2 = damp * damp
    x = np.array(x, dtype=np.float64, copy=True)
    # r ← b − A x;  t ← Aᵀ r  (one pass)
    op.normal(x, b, True, q, t)
    r = q.copy()
    s = N.apply_t(t - d2 * x) if damp > 0 else N.apply_t(t)  # s ← Nᵀ Ãᵀ r̃
    p = s.copy()
    gamma = float(s @ s)
    abar = 0.0  # running lower bound on ‖Ā‖₂
    anorm = N.fro
    hist = [] if record else None
    status, its = Status.MAXITER, iter_lim
    checks = 0
    it = 0
    while True:
        rn = float(cpu.norm2(r))
        xn = float(np.linalg.norm(x))
        rtil = math.hypot(rn, damp * xn)
        if hist is not None:
            hist.append(rtil)
        sn = math.sqrt(gamma)
        if not (math.isfinite(rtil) and math.isfinite(sn)):
            return x, Status.NANORINF, it, hist, False
        claim = None
        if rtil <= btol * bnorm + atol * anorm * xn:
            claim = Status.RTOL
        elif sn <= atol * max(abar, 1.0) * rtil:
            claim = Status.ATOL
        if claim is not None:
            # confirm on the true residual (residual replacement): one more pass
            op.normal(x, b, True, q, t)
            r[:] = q
            s = N.apply_t(t - d2 * x) if damp > 0 else N.apply_t(t)
            gamma = float(s @ s)
            rn = float(cpu.norm2(r))
            rtil = math.hypot(rn, damp * xn)
            sn = math.sqrt(gamma)
            # Nᵀ(Aᵀ r) cannot be computed more accurately than ≈ eps·κ(A)·‖r‖: that is the floor.
            floor = max(atol, 10.0 * _EPS * min(N.acond, 1.0 / _EPS))
            if (claim == Status.RTOL and rtil <= btol * bnorm + atol * anorm * xn) or (
                    claim == Status.ATOL and sn <= floor * max(abar, 1.0) * rtil):
                return x, claim, it, hist, True
            checks += 1
            if checks > 3:
                return x, Status.STAGNATION, it, hist, True
            p = s.copy()  # restart the recurrence from the replaced residual
        if it >= iter_lim:
            return x, Status.MAXITER, it, hist, False
        it += 1
        w = N.apply(p)  # w ← N p
        op.normal(w, b, False, q, t)  # q ← A w;  t ← Aᵀ q  (one pass)
        qq = float(cpu.norm2(q)) ** 2 + d2 * float(w @ w)  # ‖Ã w‖²
        pn = float(np.linalg.norm(p))
        if qq <= 0.0 or not math.isfinite(qq):
            return x, (Status.NANORINF if not math.isfinite(qq) else Status.STAGNATION), it, hist, False
        abar = max(abar, math.sqrt(qq) / pn)
        alpha = gamma / qq
        x += alpha * w  # x ← x + α N p
        cpu.axpby(-alpha, q, 1.0, r)  # r ← r − α A w
        if damp > 0:
            s -= alpha * N.apply_t(t + d2 * w)  # s ← s − α Nᵀ Ãᵀ Ã w
        else:
            s -= alpha * N.apply_t(t)  # s ← s − α Nᵀ Aᵀ A w
        gamma_new = float(s @ s)
        p = s + (gamma_new / gamma) * p  # p ← s + β p
        gamma = gamma_new


def _scipy_inner(op: _Tall, N: _Precond, b, x0, damp, atol, btol, iter_lim, which):
    """scipy LSQR/LSMR on Ā = [A; damp·I] N with right-hand side r̃₀."""
    m, n = op.shape
    k = N.k
    mm = m + (n if damp > 0 else 0)

    def mv(y):
        w = N.apply(np.ravel(y))
        u = op.matvec(w)
        return np.concatenate([u, damp * w]) if damp > 0 else u

    def rmv(u):
        u = np.ravel(u)
        v = op.rmatvec(u[:m])
        if damp > 0:
            v = v + damp * u[m:]
        return N.apply_t(v)

    Abar = spla.LinearOperator((mm, k), matvec=mv, rmatvec=rmv, dtype=np.float64)
    r0 = b - op.matvec(x0)
    if damp > 0:
        r0 = np.concatenate([r0, -damp * x0])
    fn = spla.lsqr if which == "lsqr" else spla.lsmr
    kw = dict(atol=atol, btol=btol, maxiter=iter_lim) if which == "lsmr" else dict(atol=atol, btol=btol, iter_lim=iter_lim)
    out = fn(Abar, r0, **kw)
    y, istop, its = out[0], int(out[1]), int(out[2])
    x = x0 + N.apply(y)
    status = {1: Status.RTOL, 2: Status.ATOL, 4: Status.RTOL, 5: Status.ATOL, 7: Status.MAXITER}.get(istop, Status.MAXITER)
    if istop == 0:
        status = Status.RTOL  # x0 already solves it
    if istop in (3, 6):
        status = Status.STAGNATION  # condition-number limit: not a least-squares answer
    return x, status, its, None
