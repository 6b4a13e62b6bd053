"""Sketch-and-project solvers for consistent square or tall systems A x = b.

Gower & Richtárik, "Randomized iterative methods for linear systems", SIMAX
36(4), 2015: at each step draw a sketch S (m × τ) and project the iterate onto
the solution set of the sketched system Sᵀ A x = Sᵀ b (with B = I),

    x ← x + Aᵀ S (Sᵀ A Aᵀ S)⁺ Sᵀ (b − A x).

Special cases implemented here:

* `Kaczmarz` — S = e_i, row i drawn with probability ∝ ‖a_i‖²
  (Strohmer & Vershynin, J. Fourier Anal. Appl. 15, 2009; rate
  E‖x_k − x*‖² ≤ (1 − 1/κ_F²)^k ‖x₀ − x*‖², κ_F = ‖A‖_F‖A⁺‖₂), and block
  Kaczmarz with ``block_size`` rows per step (Needell & Tropp, LAA 441, 2014).
* `SketchProject` with ``sketch="gaussian"`` (S Gaussian, τ columns; τ = 1 is
  the "GV" solver of Hong, Na, Mahoney & Kolar, ICML 2023),
  ``"countsketch"`` / ``"sparse-sign"`` (sparse S, Dereziński & Rebrova 2022),
  and ``"coordinate"`` — randomized coordinate descent for SPD A (the B = A,
  S = e_j case; Leventhal & Lewis, Math. OR 35, 2010).

Monitored norm: the true residual ‖b − A x‖₂, recomputed once per iteration
(so the reported norm is never a recursive estimate).  One **iteration** is
about one pass over A: an epoch of m single-row steps (or m/τ blocks) for
Kaczmarz, an epoch of n coordinate steps for ``"coordinate"``, and one
sketch step for the Gaussian and sparse sketches (each reads all of A).

``stop`` is a user predicate ``stop(info) -> bool`` checked after every
iteration with the same `IterationInfo` monitors get (iteration, true
residual norm, ``info.x()``).  It lets an outer method (inexact Newton, SQP)
impose its own adaptive accuracy: when it returns True the solve ends with
``Status.USER_STOP`` and ``extras["stop_rule"] == "met"``.

Rectangular A: these classes override ``update_operator`` and ``solve`` so A
may be m × n with m ≥ n (``b`` has length m, ``x0`` length n); everything else
(tolerance rule, zero b, x0 copy, monitors, the final true-residual check) is
the `Solver` base class's.  Inconsistent systems do not converge (Kaczmarz
reaches a noise floor): the solve stops with ``Status.STAGNATION`` once the
residual has not improved by 0.1 % for ``patience`` iterations — use
`krylovlab.lstsq` for least squares.

Workspace: x, r (m-vector), and for blocks the τ × n sketched rows.
"""

from __future__ import annotations

import abc

import math
import time

import numpy as np

from .._operator import as_operator, check_vector, result_dtype
from .._result import SolveResult, Status
from .._solver import Monitor, Outcome, Problem, Solver, converged_status
from ..backend import get_backend
from ..kernels import cpu
from .sketches import _generator, make_sketch

__all__ = ["Kaczmarz", "SketchProject"]


class _RowAction(Solver, abc.ABC):
    """Shared machinery: rectangular operators, stop rule, epoch loop."""

    supports_device = False
    default_epochs = 1000

    def __init__(self, A=None, *, rtol=1e-5, atol=0.0, maxiter=None, stop=None, patience=50, rng=None,
                 monitors=(), history=False):
        if stop is not None and not callable(stop):
            raise TypeError("stop must be a callable stop(info) -> bool")
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        self.stop = stop
        self.patience = int(patience)
        self.rng = _generator(rng)
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=None, monitors=monitors, history=history)

    # --------------------------------------------------------------- operators
    def update_operator(self, A, M=None) -> None:
        if M is not None:
            raise TypeError(f"{type(self).__name__} takes no preconditioner")
        op = as_operator(A, name="A", square=False)
        if op.kind == "linop":
            raise TypeError(f"{type(self).__name__} needs an explicit matrix (dense or scipy sparse): it reads rows of A")
        if op.device:
            raise TypeError(f"{type(self).__name__} has no GPU path yet: pass host (numpy/scipy) arrays")
        if op.dtype.kind == "c":
            raise TypeError(f"{type(self).__name__} supports real matrices only")
        if op.shape[0] < op.shape[1]:
            raise ValueError(f"A has shape {op.shape}; sketch-and-project here needs m >= n (square or tall)")
        if op.kind == "csr":
            op.csr = op.csr.astype(np.float64, copy=False)
            sq = np.add.reduceat(op.csr.data**2, op.csr.indptr[:-1]) if op.csr.nnz else np.zeros(op.shape[0])
            sq[np.diff(op.csr.indptr) == 0] = 0.0
        else:
            op.dense = np.ascontiguousarray(op.dense, dtype=np.float64)
            sq = np.einsum("ij,ij->i", op.dense, op.dense)
        op.dtype = np.dtype(np.float64)
        self._row_norm2 = sq
        self.A = op
        self.M = None
        self._operator_changed(None, op)

    def default_maxiter(self, n):
        return self.default_epochs

    # ---------------------------------------------------------------- one solve
    def solve(self, b, x0=None) -> SolveResult:
        """Solve A x = b (A square or tall, consistent); see the module docstring."""
        if self.A is None:
            raise ValueError(f"{type(self).__name__} has no operator: pass A or call update_operator(A)")
        t0 = time.perf_counter()
        op = self.A
        m, n = op.shape
        be = get_backend(op, b, x0)
        if be.is_gpu:
            raise TypeError(f"{type(self).__name__} has no GPU path yet: pass host (numpy/scipy) arrays")
        b = check_vector(b, m, "b")
        if x0 is not None:
            x0 = check_vector(x0, n, "x0")
        dtype = result_dtype(op.dtype, b.dtype, None if x0 is None else x0.dtype)
        if dtype.kind == "c":
            raise TypeError(f"{type(self).__name__} supports real right-hand sides only")
        b = np.ascontiguousarray(b, dtype=np.float64)
        bnorm = float(cpu.norm2(b))
        tol = max(self.atol, self.rtol * bnorm)
        maxiter = self.default_maxiter(n) if self.maxiter is None else self.maxiter
        if bnorm == 0.0:
            return SolveResult(np.zeros(n), Status.ATOL, 0, 0.0, norm=self.norm,
                               history=np.zeros(1) if self.history else None, time=time.perf_counter() - t0,
                               extras={"method": self.method, "note": "zero right-hand side"})
        x = np.zeros(n) if x0 is None else np.array(x0, dtype=np.float64, copy=True)
        for mon in self.monitors:
            if isinstance(mon, Monitor):
                mon.start(None)
        pb = Problem(op, None, b, x, bnorm, tol, maxiter, be, np.dtype(np.float64), list(self.monitors),
                     self.history, self, x0_given=x0 is not None)
        out = self._run_with_true_residual_check(pb)
        hist = None if out.history is None else np.asarray(out.history, dtype=float)
        return SolveResult(out.x, out.status, out.iterations, out.rnorm, norm=self.norm, history=hist,
                           nmatvec=out.nmatvec, time=time.perf_counter() - t0, backend=be.name,
                           extras={"method": self.method, **out.extras})

    def _iterate(self, pb: Problem) -> Outcome:
        x = pb.x
        r = pb.residual(x)  # r ← b − A x
        rn = pb.norm(r)
        nmv = 1
        history = [rn] if pb.record_history else None
        extras = self._extras()
        if rn <= pb.tol:
            return Outcome(x, converged_status(rn, pb), 0, rn, nmv, 0, history, extras, rnorm_is_true=True)
        best, since = rn, 0
        for k in range(1, pb.maxiter + 1):
            nmv += self._epoch(pb, x, r)
            pb.residual(x, r)  # r ← b − A x (exact, once per iteration)
            nmv += 1
            rn = pb.norm(r)
            if history is not None:
                history.append(rn)
            if not math.isfinite(rn):
                return Outcome(x, Status.NANORINF, k, rn, nmv, 0, history, extras, rnorm_is_true=True)
            if rn <= pb.tol:
                pb.notify(k, rn, lambda: x)
                return Outcome(x, converged_status(rn, pb), k, rn, nmv, 0, history, extras, rnorm_is_true=True)
            if self.stop is not None:
                from .._solver import IterationInfo

                if self.stop(IterationInfo(k, rn, lambda: x, self)):
                    pb.notify(k, rn, lambda: x)
                    extras["stop_rule"] = "met"
                    return Outcome(x, Status.USER_STOP, k, rn, nmv, 0, history, extras, rnorm_is_true=True)
            if pb.notify(k, rn, lambda: x):
                return Outcome(x, Status.USER_STOP, k, rn, nmv, 0, history, extras, rnorm_is_true=True)
            if rn < 0.999 * best:
                best, since = rn, 0
            else:
                since += 1
                if since >= self.patience:
                    extras["note"] = "residual stopped decreasing: the system may be inconsistent (use krylovlab.lstsq)"
                    return Outcome(x, Status.STAGNATION, k, rn, nmv, 0, history, extras, rnorm_is_true=True)
        return Outcome(x, Status.MAXITER, pb.maxiter, rn, nmv, 0, history, extras, rnorm_is_true=True)

    def _extras(self) -> dict:
        return {}

    @abc.abstractmethod
    def _epoch(self, pb, x, r) -> int:
        """One pass of row actions over A; returns the products with A it cost."""


# ---------------------------------------------------------------------------------- Kaczmarz
class Kaczmarz(_RowAction):
    """Randomized (block) Kaczmarz for consistent A x = b, A square or tall.

    Parameters
    ----------
    A : dense array or scipy sparse matrix (m × n, m ≥ n)
    rtol, atol : float
        Stop when ‖b − A x‖ ≤ max(atol, rtol·‖b‖).
    maxiter : int, optional
        Epochs (passes of m rows); default 1000.
    block_size : int
        Rows per projection (1: classic randomized Kaczmarz; > 1: block
        Kaczmarz over a random partition reshuffled every epoch, each block
        solved in the least-squares sense).
    sampling : {"norm", "uniform"}
        Row probabilities ∝ ‖a_i‖² (Strohmer–Vershynin) or uniform
        (single-row steps only; blocks always use a random partition).
    stop : callable, optional
        ``stop(info) -> bool``, checked after every epoch (see module docstring).
    patience : int
        Epochs without a 0.1 % residual decrease before ``STAGNATION``.
    rng : int, Generator or None
    monitors, history
        As for every `Solver`.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.sketch import Kaczmarz
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((300, 20)); x_true = rng.standard_normal(20)
    >>> res = Kaczmarz(A, rtol=1e-8, rng=0).solve(A @ x_true)
    >>> res.converged, bool(np.allclose(res.x, x_true, atol=1e-6))
    (True, True)
    """

    method = "kaczmarz"
    norm = "true residual 2-norm ||b - Ax|| (exact, once per epoch)"

    def __init__(self, A=None, *, rtol=1e-5, atol=0.0, maxiter=None, block_size=1, sampling="norm", stop=None,
                 patience=50, rng=None, monitors=(), history=False):
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
        if sampling not in ("norm", "uniform"):
            raise ValueError(f"sampling must be 'norm' or 'uniform', got {sampling!r}")
        self.block_size = int(block_size)
        self.sampling = sampling
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, stop=stop, patience=patience, rng=rng,
                         monitors=monitors, history=history)

    def _operator_changed(self, old, new):
        sq = self._row_norm2
        self._inv = np.where(sq > 0, 1.0 / np.where(sq > 0, sq, 1.0), 0.0)
        tot = sq.sum()
        self._p = sq / tot if (self.sampling == "norm" and tot > 0) else None

    def _extras(self):
        return {"block_size": self.block_size, "sampling": self.sampling}

    def _epoch(self, pb, x, r) -> int:
        op = pb.op
        m = op.shape[0]
        if self.block_size == 1:
            if self._p is not None:
                order = self.rng.choice(m, size=m, p=self._p)
            else:
                order = self.rng.integers(0, m, size=m)
            if op.kind == "csr":
                a = op.csr
                cpu.kaczmarz_csr(a.indptr, a.indices, a.data, pb.b, x, order, self._inv)  # x ← x + (b_i − a_i·x)/‖a_i‖² a_i
            else:
                cpu.kaczmarz_dense(op.dense, pb.b, x, order, self._inv)
            return 0
        perm = self.rng.permutation(m)
        tau = self.block_size
        for j0 in range(0, m, tau):
            rows = perm[j0 : j0 + tau]
            Ab = op.csr[rows].toarray() if op.kind == "csr" else op.dense[rows]
            rb = pb.b[rows] - Ab @ x  # r_τ ← b_τ − A_τ x
            x += np.linalg.lstsq(Ab, rb, rcond=None)[0]  # x ← x + A_τ⁺ r_τ
        return 0


# ----------------------------------------------------------------------------- SketchProject
class SketchProject(_RowAction):
    """Gower–Richtárik sketch-and-project (B = I) with Gaussian or sparse sketches,
    or randomized coordinate descent for SPD systems.

    Parameters
    ----------
    A : dense array or scipy sparse matrix (m × n, m ≥ n; square SPD for ``"coordinate"``)
    sketch : {"gaussian", "countsketch", "sparse-sign", "coordinate"}
    block_size : int
        Sketch columns τ per step (default 1; ignored by ``"coordinate"``).
    maxiter : int, optional
        Iterations (one sketch step, or one epoch of n coordinates); default
        1000 epochs for ``"coordinate"`` and 20·n/τ steps otherwise.
    rtol, atol, stop, patience, rng, monitors, history
        As for `Kaczmarz`.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import solve
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((200, 10)); x_true = rng.standard_normal(10)
    >>> res = solve(A, A @ x_true, method="sketch-project", block_size=4, rtol=1e-8, rng=0)
    >>> res.converged, bool(np.allclose(res.x, x_true, atol=1e-6))
    (True, True)
    """

    method = "sketch-project"
    norm = "true residual 2-norm ||b - Ax|| (exact, once per iteration)"

    def __init__(self, A=None, *, rtol=1e-5, atol=0.0, maxiter=None, sketch="gaussian", block_size=1, stop=None,
                 patience=None, rng=None, monitors=(), history=False):
        if sketch not in ("gaussian", "countsketch", "sparse-sign", "coordinate"):
            raise ValueError(f"sketch must be 'gaussian', 'countsketch', 'sparse-sign' or 'coordinate', got {sketch!r}")
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
        self.sketch = sketch
        self.block_size = int(block_size)
        if patience is None:
            patience = 50 if sketch == "coordinate" else 1000
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, stop=stop, patience=patience, rng=rng,
                         monitors=monitors, history=history)

    def _operator_changed(self, old, new):
        if self.sketch == "coordinate":
            if new.shape[0] != new.shape[1]:
                raise ValueError(f"sketch='coordinate' needs a square SPD matrix, got shape {new.shape}")
            if not new.symmetric or not new.positive_diagonal:
                raise ValueError("sketch='coordinate' needs a symmetric matrix with a positive diagonal (SPD)")
            self._inv_diag = 1.0 / new.diagonal

    def default_maxiter(self, n):
        if self.sketch == "coordinate":
            return self.default_epochs
        return max(20 * n // self.block_size, 100)

    def _extras(self):
        return {"sketch": self.sketch, "block_size": self.block_size}

    def _epoch(self, pb, x, r) -> int:
        op = pb.op
        m, n = op.shape
        if self.sketch == "coordinate":
            order = self.rng.integers(0, n, size=n)
            if op.kind == "csr":
                a = op.csr
                cpu.coordinate_csr(a.indptr, a.indices, a.data, x, r, order, self._inv_diag)  # x_j += r_j/A_jj
            else:
                cpu.coordinate_dense(op.dense, x, r, order, self._inv_diag)
            return 0
        tau = min(self.block_size, m)
        Amat = op.csr if op.kind == "csr" else op.dense
        if self.sketch == "gaussian":
            S = self.rng.standard_normal((m, tau))
            Y = np.asarray(Amat.T @ S).T  # Y ← Sᵀ A (τ × n)
            z = S.T @ r  # z ← Sᵀ r
        else:
            Sk = make_sketch(self.sketch, tau, m, rng=self.rng)
            Y = Sk @ Amat
            z = Sk @ r
        if tau == 1:
            g = float(Y[0] @ Y[0])
            if g == 0.0:
                return 1
            dx = Y[0] * (z[0] / g)  # x ← x + Aᵀs (sᵀr)/‖Aᵀs‖²
        else:
            lam = np.linalg.lstsq(Y @ Y.T, z, rcond=None)[0]  # (Sᵀ A Aᵀ S)⁺ Sᵀ r
            dx = Y.T @ lam
        x += dx
        return 1
