"""SOR (successive over-relaxation) as a solver, SSOR as a preconditioner, ω learned across solves.

Algorithm.  Split A = D + L + U (diagonal, strict lower, strict upper).  One
forward SOR iteration solves (D/ω + L) x_{k+1} = b − ((1 − 1/ω) D + U) x_k
row by row (Young 1950; Frankel 1950); ω = 1 is Gauss–Seidel.  A backward
iteration swaps the roles of L and U, and a symmetric (SSOR) iteration does
one of each.  For Hermitian positive definite A the iteration converges
for every ω in (0, 2) (Ostrowski–Reich) and diverges for ω outside it, so
ω outside (0, 2) is rejected.  The SSOR preconditioner is
M = ω/(2 − ω) · (D/ω + L) D⁻¹ (D/ω + U), applied as one symmetric sweep
from zero; it is Hermitian positive definite whenever A is and 0 < ω < 2,
so it can precondition CG.

Learning ω.  ``omega="bandit"`` (Tsallis-INF), ``"binned"`` (one Tsallis-INF
per context bin), ``"contextual"`` (ChebCB) or any learner object from
`krylovlab.relax.bandit` makes the solver draw ω before each solve and report
the iteration count after it (Khodak, Chow, Balcan & Talwalkar, "Learning to
Relax", ICLR 2024).  A failed solve reports ``maxiter`` as its cost.

Monitored norm: the true residual ‖b − A x_k‖₂, computed inside the next
sweep from a saved copy of x_k (no extra SpMV per sweep); when it meets the
tolerance x_k is restored and returned, so ``iterations`` = k and the
returned x is exactly the iterate that was tested (one more sweep was spent
to test it; ``extras["sweeps"]`` counts all sweeps).  With monitors the
loop runs in Python and computes the residual with one SpMV per sweep.

Workspace: 2 n-vectors (x and the saved iterate) plus the history.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._operator import Operator, as_operator
from .._result import Status
from .._solver import Outcome, Problem, Solver, converged_status
from ..kernels.cpu import _relax as K
from .bandit import BinnedTsallisINF, ChebCB, OmegaLearner, TsallisINF
from .coloring import Coloring, multicolor_ordering

__all__ = ["SOR", "SSOR", "young_omega", "check_omega"]

_SWEEPS = {"forward": 0, "backward": 1, "symmetric": 2}
_ORDERINGS = ("natural", "multicolor")
_CODES = {K.CODE_RTOL: Status.RTOL, K.CODE_MAXITER: Status.MAXITER, K.CODE_NANORINF: Status.NANORINF,
          K.CODE_DIVERGED: Status.STAGNATION}


def check_omega(omega) -> float:
    """Return ω as a float; raise ValueError unless 0 < ω < 2."""
    if isinstance(omega, (bool, np.bool_)) or not isinstance(omega, numbers.Real):
        raise TypeError(f"omega must be a real number in (0, 2), 'bandit', 'binned', 'contextual' "
                        f"or a learner object, got {omega!r}")
    w = float(omega)
    if not (math.isfinite(w) and 0.0 < w < 2.0):
        raise ValueError(f"omega must lie in the open interval (0, 2), got {omega!r}: SOR diverges for "
                         "omega <= 0 or omega >= 2 even on SPD matrices")
    return w


def _make_learner(omega, arms, context_range, rng):
    """(fixed ω or None, learner or None) from the ``omega`` argument."""
    if isinstance(omega, OmegaLearner):
        return None, omega
    if isinstance(omega, str):
        kind = omega.lower()
        if kind == "bandit":
            return None, TsallisINF(arms, rng=rng)
        if kind == "binned":
            return None, BinnedTsallisINF(arms, context_range=context_range, rng=rng)
        if kind == "contextual":
            return None, ChebCB(arms, context_range=context_range, rng=rng)
        raise ValueError(f"unknown omega {omega!r}: use a number in (0, 2), 'bandit', 'binned', "
                         "'contextual' or a learner object")
    return check_omega(omega), None


class _RelaxMatrix:
    """CSR arrays of A, checked for a usable diagonal, and a lazily built colouring."""

    def __init__(self, op: Operator, ordering: str, previous: "_RelaxMatrix | None" = None):
        if op.kind == "linop":
            raise TypeError("SOR/SSOR need the matrix entries: pass a dense array or a scipy sparse "
                            "matrix, not a LinearOperator or a callable")
        if op.device:
            raise TypeError("SOR/SSOR have no GPU solver path yet: pass host arrays (the GPU sweep "
                            "kernels are in krylovlab.kernels.gpu)")
        a = op.csr if op.kind == "csr" else sp.csr_matrix(op.dense)
        a = sp.csr_matrix(a)
        if not a.has_sorted_indices:
            a = a.sorted_indices()
        d = a.diagonal()
        bad = np.flatnonzero(d == 0)
        if bad.size:
            raise ValueError(f"A has a zero on its diagonal (row {int(bad[0])}{' and others' if bad.size > 1 else ''}): "
                             "SOR divides by a_ii; reorder the rows or use method='gmres'")
        self.indptr = a.indptr.astype(np.int64, copy=False)
        self.indices = a.indices.astype(np.int64, copy=False)
        self.data = a.data
        self.n = a.shape[0]
        self.ordering = ordering
        self._cast = {}
        self._coloring = None
        if previous is not None and previous._coloring is not None and _same_pattern(previous, self):
            self._coloring = previous._coloring

    def data_as(self, dtype):
        """The values in ``dtype`` (a converted copy is cached; the original is kept)."""
        dtype = np.dtype(dtype)
        if self.data.dtype == dtype:
            return self.data
        if dtype not in self._cast:
            self._cast[dtype] = self.data.astype(dtype)
        return self._cast[dtype]

    def inv_diag_as(self, dtype):
        """1 / a_ii in ``dtype`` (cached)."""
        key = ("inv_diag", np.dtype(dtype))
        if key not in self._cast:
            d = sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.n, self.n)).diagonal()
            self._cast[key] = np.ascontiguousarray(1.0 / d, dtype=dtype)
        return self._cast[key]

    @property
    def coloring(self) -> Coloring:
        if self._coloring is None:
            self._coloring = multicolor_ordering(sp.csr_matrix((self.data, self.indices, self.indptr),
                                                               shape=(self.n, self.n)))
        return self._coloring


def _same_pattern(a: _RelaxMatrix, b: _RelaxMatrix) -> bool:
    return (a.n == b.n and a.indices.shape == b.indices.shape and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices))


def _check_choice(value, name, allowed):
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value.lower()


class SOR(Solver):
    """Stationary SOR / SSOR iteration, with a fixed or learned relaxation factor.

    Parameters
    ----------
    A : dense array or sparse matrix, optional
        Needs a nonzero diagonal.  Converges for Hermitian positive definite
        A and any ω in (0, 2); for other matrices convergence depends on A.
    omega : float in (0, 2), ``"bandit"``, ``"binned"``, ``"contextual"`` or learner
        Fixed ω (1 = Gauss–Seidel), or a learner that draws ω before every
        solve and learns from the iteration counts: Tsallis-INF, binned
        Tsallis-INF, ChebCB (the last two need ``context_range`` and a
        ``context=`` on every solve).
    sweep : ``"forward"``, ``"backward"`` or ``"symmetric"``
    ordering : ``"natural"`` or ``"multicolor"``
        Row order of a sweep.  ``"multicolor"`` updates the rows of each
        greedy colour class in parallel threads (worth it above ~20k rows);
        see `krylovlab.relax.coloring`.
    rtol, atol, maxiter, monitors, history
        As for every `Solver`; ``maxiter`` counts sweeps (default
        max(10·n, 10 000)).
    arms : array of ω, optional
        The learner's grid (default 1.00, 1.05, …, 1.95).
    context_range : (low, high), optional
        Interval of the contexts, for the contextual learners.
    rng : seed or numpy Generator
        Seeds the learner.

    Attributes
    ----------
    learner : OmegaLearner or None
        The learned state (``omega_history``, ``arm_probabilities`` …).

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import SOR
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((10, 10))
    >>> res = SOR(A, omega=1.5, rtol=1e-8).solve(np.ones(100))
    >>> res.converged, res.extras["omega"]
    (True, 1.5)

    A sequence of shifted systems with ω chosen by a bandit:

    >>> solver = SOR(omega="bandit", rtol=1e-8, rng=0)
    >>> for c in np.linspace(0.0, 0.3, 20):
    ...     solver.update_operator(A + c * np.eye(100))
    ...     res = solver.solve(np.ones(100))
    >>> len(solver.learner.omega_history)
    20
    """

    method = "sor"
    norm = "true residual 2-norm ||b - Ax_k|| (computed inside the next sweep)"
    maxiter_factor = 10

    def __init__(self, A=None, *, omega=1.0, sweep="forward", ordering="natural", rtol=1e-5, atol=0.0,
                 maxiter=None, monitors=(), history=False, arms=None, context_range=None, rng=None):
        self.sweep = _check_choice(sweep, "sweep", tuple(_SWEEPS))
        self.ordering = _check_choice(ordering, "ordering", _ORDERINGS)
        self._omega_spec = (omega, arms, context_range, rng)
        self.omega, self.learner = _make_learner(omega, arms, context_range, rng)
        self._relax: _RelaxMatrix | None = None
        self._omega_now = self.omega
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=None, monitors=monitors, history=history)

    def update_operator(self, A, M=None) -> None:
        """Set the next matrix of the sequence (the learner's state is kept)."""
        if M is not None:
            raise TypeError("SOR takes no preconditioner M; use CG(M=SSOR(...)) for preconditioned CG")
        op = as_operator(A, name="A")
        relax = _RelaxMatrix(op, self.ordering, self._relax)  # validates before anything changes
        self.A, self._relax, self.M = op, relax, None

    def reset(self) -> None:
        """Forget the learned ω distribution (a fixed ω stays)."""
        if self.learner is not None:
            self.learner.reset()

    def default_maxiter(self, n: int) -> int:
        return max(self.maxiter_factor * n, 10_000)

    def solve(self, b, x0=None, *, context=None):
        """Solve A x = b with the current (fixed or freshly drawn) ω.

        Parameters
        ----------
        b, x0 : arrays
        context : float, optional
            The instance's context (for example a coefficient of the PDE);
            required by the contextual learners, ignored otherwise.
        """
        if self.A is None:
            raise ValueError("SOR has no operator: pass A or call update_operator(A)")
        learner = self.learner
        if learner is None:
            self._omega_now = self.omega
            return super().solve(b, x0)
        self._omega_now = learner.choose(context if learner.contextual else None)
        self._ran = False
        try:
            res = super().solve(b, x0)
        except BaseException:
            learner.cancel()
            raise
        if not self._ran:  # b = 0: nothing was solved, nothing to learn
            learner.cancel()
            return res
        maxiter = self.default_maxiter(self.A.n) if self.maxiter is None else self.maxiter
        learner.update(maxiter if res.status.is_failure else res.iterations)
        return res

    # ---------------------------------------------------------------------- iteration
    def _iterate(self, pb: Problem) -> Outcome:
        self._ran = True
        omega = self._omega_now
        rm = self._relax
        data = rm.data_as(pb.dtype)
        sweep = _SWEEPS[self.sweep]
        extras = {"omega": omega, "sweep": self.sweep, "ordering": self.ordering}
        if self.ordering == "multicolor":
            col = rm.coloring
            extras["colors"] = col.ncolors
        if pb.live:
            return self._iterate_python(pb, data, omega, sweep, extras)
        hist = np.empty(pb.maxiter + 1 if pb.record_history else 0, dtype=np.float64)
        xprev = np.empty_like(pb.x)
        if self.ordering == "natural":
            it, code, rn, nsw = K.sor_solve(rm.indptr, rm.indices, data, pb.x, pb.b, omega, pb.tol, pb.maxiter,
                                            sweep, hist, xprev)
        else:
            it, code, rn, nsw = K.sor_solve_multicolor(rm.indptr, rm.indices, data, pb.x, pb.b, omega, pb.tol,
                                                       pb.maxiter, sweep, hist, xprev, col.order, col.color_ptr)
        status = _CODES[int(code)]
        if status == Status.RTOL:
            status = converged_status(rn, pb)
        elif int(code) == K.CODE_DIVERGED:
            extras["diverged"] = True
        extras["sweeps"] = int(nsw)
        history = hist[: int(it) + 1] if pb.record_history else None
        nmv = 1 if int(it) == pb.maxiter else 0  # the final residual check after maxiter sweeps
        return Outcome(pb.x, status, int(it), float(rn), nmatvec=nmv, history=history, extras=extras,
                       rnorm_is_true=True)

    def _iterate_python(self, pb, data, omega, sweep, extras) -> Outcome:
        rm, x, b = self._relax, pb.x, pb.b
        col = rm.coloring if self.ordering == "multicolor" else None
        n = rm.n
        r = np.empty_like(x)
        rn = pb.norm(pb.residual(x, r))  # r ← b − A x0
        nmv = 1
        history = [rn] if pb.record_history else None
        r0 = rn
        if rn <= pb.tol:
            return Outcome(x, converged_status(rn, pb), 0, rn, nmv, 0, history, extras, rnorm_is_true=True)
        status, it = Status.MAXITER, pb.maxiter
        for k in range(1, pb.maxiter + 1):
            if col is None:
                if sweep != 1:
                    K.sor_sweep(rm.indptr, rm.indices, data, x, b, omega, 0, n, 1)  # forward sweep
                if sweep != 0:
                    K.sor_sweep(rm.indptr, rm.indices, data, x, b, omega, n - 1, -1, -1)  # backward sweep
            else:
                if sweep != 1:
                    K.sor_sweep_multicolor(rm.indptr, rm.indices, data, x, b, omega, col.order, col.color_ptr, False)
                if sweep != 0:
                    K.sor_sweep_multicolor(rm.indptr, rm.indices, data, x, b, omega, col.order, col.color_ptr, True)
            rn = pb.norm(pb.residual(x, r))  # ‖b − A x_k‖
            nmv += 1
            if history is not None:
                history.append(rn)
            if not math.isfinite(rn):
                status, it = Status.NANORINF, k
                break
            if rn <= pb.tol:
                status, it = converged_status(rn, pb), k
                pb.notify(k, rn, lambda: x)
                break
            if rn > K.DIVERGENCE_FACTOR * r0:
                status, it = Status.STAGNATION, k
                extras["diverged"] = True
                break
            if pb.notify(k, rn, lambda: x):
                status, it = Status.USER_STOP, k
                break
        extras["sweeps"] = it
        return Outcome(x, status, it, rn, nmv, 0, history, extras, rnorm_is_true=True)


class SSOR:
    """Symmetric SOR preconditioner, M = ω/(2 − ω) · (D/ω + L) D⁻¹ (D/ω + U), with fixed or learned ω.

    Use it as ``M`` in CG or any other krylovlab (or scipy) method: solvers
    call `aspreconditioner`, which returns a `LinearOperator` applying
    z = M⁻¹ r (one symmetric sweep from zero, one numba call).  M is
    Hermitian positive definite when A is and 0 < ω < 2.

    With a learned ω, each solve is one round::

        omega = M.choose(context)   # draws ω for the next solve
        res = solver.solve(b)
        M.update(res.iterations)    # or M.update() to count M's applications

    Applying a learned-ω SSOR with no round open raises, so a forgotten
    ``choose`` cannot silently freeze ω.

    Parameters
    ----------
    A : dense array or sparse matrix, optional
        Set later with `update_operator` for sequences.
    omega : float in (0, 2), ``"bandit"``, ``"binned"``, ``"contextual"`` or learner
    ordering : ``"natural"`` or ``"multicolor"``
    arms, context_range, rng
        For the learners, as in `SOR`.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab import CG, SSOR
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((40, 40))
    >>> b = np.ones(A.shape[0])
    >>> plain = CG(A, rtol=1e-8).solve(b)
    >>> pre = CG(A, rtol=1e-8, M=SSOR(A, omega=1.7)).solve(b)
    >>> pre.converged, pre.iterations < plain.iterations / 2
    (True, True)
    """

    def __init__(self, A=None, *, omega=1.0, ordering="natural", arms=None, context_range=None, rng=None):
        self.ordering = _check_choice(ordering, "ordering", _ORDERINGS)
        self.omega, self.learner = _make_learner(omega, arms, context_range, rng)
        self._omega_now = self.omega
        self._open = False
        self.napply = 0
        self._relax: _RelaxMatrix | None = None
        self.shape = None
        if A is not None:
            self.update_operator(A)

    def update_operator(self, A) -> None:
        """Set the matrix (the learner's state is kept)."""
        op = as_operator(A, name="A")
        self._relax = _RelaxMatrix(op, self.ordering, self._relax)
        self.shape = op.shape
        self.dtype = op.dtype

    # ------------------------------------------------------------------ learned ω
    def choose(self, context=None) -> float:
        """Start a round: draw ω for the next solve (a fixed ω is returned as is)."""
        self.napply = 0
        if self.learner is None:
            return self.omega
        if self._open:
            self.learner.cancel()
        self._omega_now = self.learner.choose(context if self.learner.contextual else None)
        self._open = True
        return self._omega_now

    def update(self, cost=None) -> None:
        """End a round: report its cost (default: applications of M since `choose`)."""
        if self.learner is None:
            return
        if not self._open:
            raise RuntimeError("SSOR.update() without a preceding choose()")
        self.learner.update(self.napply if cost is None else cost)
        self._open = False

    @property
    def current_omega(self) -> float | None:
        return self._omega_now

    # ------------------------------------------------------------------------ apply
    def apply(self, r, out=None):
        """z = M⁻¹ r."""
        rm = self._relax
        if rm is None:
            raise ValueError("SSOR has no matrix: pass A or call update_operator(A)")
        if self.learner is not None and not self._open:
            raise RuntimeError("SSOR with a learned omega: call M.choose(context) before each solve and "
                               "M.update(cost) after it")
        r = np.asarray(r).reshape(-1)
        if r.shape[0] != rm.n:
            raise ValueError(f"SSOR: vector of length {r.shape[0]}, matrix has {rm.n} rows")
        dtype = np.result_type(rm.data.dtype, r.dtype)
        if dtype.kind not in "fc":
            dtype = np.dtype(np.float64)
        data = rm.data_as(dtype)
        r = np.ascontiguousarray(r, dtype=dtype)
        z = np.empty_like(r) if out is None or out.dtype != dtype else out
        omega = self._omega_now
        if self.ordering == "natural":
            K.ssor_apply_diag(rm.indptr, rm.indices, data, rm.inv_diag_as(dtype), r, z, omega)  # z ← M⁻¹ r
        else:
            col = rm.coloring
            z[:] = 0
            K.ssor_sweep_multicolor(rm.indptr, rm.indices, data, z, r, omega, col.order, col.color_ptr)
        self.napply += 1
        if out is not None and z is not out:
            out[...] = z
            return out
        return z

    def aspreconditioner(self) -> spla.LinearOperator:
        """A `LinearOperator` applying M⁻¹ (what solvers call for ``M=``)."""
        if self._relax is None:
            raise ValueError("SSOR has no matrix: pass A or call update_operator(A)")
        return spla.LinearOperator(self.shape, matvec=self.apply, dtype=self.dtype)

    def __repr__(self):
        w = "learned" if self.learner is not None else self.omega
        return f"SSOR(omega={w}, ordering={self.ordering!r}, n={None if self._relax is None else self._relax.n})"


def young_omega(A) -> float:
    """Young's optimal ω for A from the Jacobi spectral radius β: ω* = 2 / (1 + √(1 − β²)).

    Exact for consistently ordered matrices with real Jacobi eigenvalues
    (e.g. 5-point Laplacians in natural or red–black order); a heuristic
    otherwise.  Uses a dense eigen-solve below 2 000 rows, Lanczos above.

    Raises
    ------
    ValueError
        If A is not symmetric, has a non-positive diagonal, or β ≥ 1
        (Jacobi diverges and the formula does not apply).

    Examples
    --------
    >>> from krylovlab.gallery import poisson
    >>> from krylovlab.relax import young_omega
    >>> round(young_omega(poisson((10, 10))), 4)    # 2 / (1 + sin(π/11))
    1.5604
    """
    op = as_operator(A, name="A")
    if op.kind == "linop":
        raise TypeError("young_omega needs an explicit matrix")
    if not op.symmetric:
        raise ValueError("young_omega needs a symmetric matrix")
    d = np.asarray(op.diagonal).real
    if np.any(d <= 0):
        raise ValueError("young_omega needs a positive diagonal")
    s = sp.diags(1.0 / np.sqrt(d))
    a = sp.csr_matrix(op.csr if op.kind == "csr" else op.dense)
    B = (s @ a @ s).tocsr()  # D^{-1/2} A D^{-1/2}: its eigenvalues λ give Jacobi's 1 − λ
    if B.shape[0] <= 2000:
        lam = np.linalg.eigvalsh(B.toarray())
        lo, hi = lam[0], lam[-1]
    else:
        hi = spla.eigsh(B, k=1, which="LA", return_eigenvectors=False)[0]
        lo = spla.eigsh(B, k=1, which="SA", return_eigenvectors=False)[0]
    beta = max(abs(1 - lo), abs(1 - hi))
    if not beta < 1:
        raise ValueError(f"the Jacobi iteration matrix has spectral radius {beta:.4g} >= 1: "
                         "Young's formula does not apply")
    return float(2.0 / (1.0 + math.sqrt(1.0 - beta * beta)))
