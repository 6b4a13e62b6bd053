"""The `Solver` base class and monitors.

A `Solver` holds configuration, the operator, a preconditioner and whatever a
method learns across solves (recycle space, bandit state, a model).  Its
``solve(b, x0)`` does everything that is the same for every method —
validation, the scipy tolerance rule, the zero right-hand side, copying
``x0``, choosing the backend, timing, the final true-residual check — and
calls the method's ``_iterate(problem)`` for the rest.

The final check is the guarantee behind "a solver never reports convergence it
did not reach": when a method claims convergence on a recursively updated
residual, ``solve`` recomputes ``b − A x``; if that misses the tolerance, the
method is restarted from its own ``x`` with the iterations it has left
(at most ``_MAX_TRUE_RESIDUAL_RESTARTS`` times) and otherwise stops with
`Status.STAGNATION`.

Monitors have one signature, ``monitor(info) -> bool | None``; returning True
stops the solve with `Status.USER_STOP`.
"""

from __future__ import annotations

import abc

import dataclasses
import math
import time
from typing import Any, Callable, ClassVar

import numpy as np

from ._operator import (
    Operator,
    Preconditioner,
    as_operator,
    as_preconditioner,
    check_tolerances,
    check_vector,
    result_dtype,
)
from ._result import SolveResult, Status
from .backend import Backend, get_backend

__all__ = [
    "Solver",
    "Problem",
    "Outcome",
    "IterationInfo",
    "Monitor",
    "History",
    "PrintEvery",
    "RecordIterates",
    "TimeLimit",
    "CallbackMonitor",
]

_MAX_TRUE_RESIDUAL_RESTARTS = 3


# ------------------------------------------------------------------------------------ monitors
@dataclasses.dataclass
class IterationInfo:
    """What a monitor sees after each iteration."""

    iteration: int
    rnorm: float
    _x: Callable[[], Any]
    solver: "Solver | None" = None

    def x(self):
        """The current iterate (computed on demand: GMRES forms it only when asked)."""
        return self._x()


class Monitor(abc.ABC):
    """Base class: override ``__call__(info) -> bool | None``; ``start()`` is called before each solve."""

    def start(self, problem: "Problem") -> None:  # pragma: no cover - default no-op
        pass

    @abc.abstractmethod
    def __call__(self, info: IterationInfo) -> bool | None:
        """Observe one iteration; return True to stop the solve."""


class History(Monitor):
    """Record the monitored norm after every iteration in ``self.rnorms``."""

    def __init__(self):
        self.rnorms: list[float] = []

    def start(self, problem):
        self.rnorms = []

    def __call__(self, info):
        self.rnorms.append(float(info.rnorm))


class PrintEvery(Monitor):
    """Print the iteration and norm every ``k`` iterations."""

    def __init__(self, k: int = 10, file=None):
        if k < 1:
            raise ValueError("PrintEvery: k must be >= 1")
        self.k = int(k)
        self.file = file

    def __call__(self, info):
        if info.iteration % self.k == 0:
            print(f"{info.iteration:6d}  ||r|| = {info.rnorm:.6e}", file=self.file)


class RecordIterates(Monitor):
    """Keep a copy of the iterate every ``k`` iterations in ``self.iterates``."""

    def __init__(self, k: int = 1):
        if k < 1:
            raise ValueError("RecordIterates: k must be >= 1")
        self.k = int(k)
        self.iterates: list = []

    def start(self, problem):
        self.iterates = []

    def __call__(self, info):
        if info.iteration % self.k == 0:
            self.iterates.append(info.x().copy())


class TimeLimit(Monitor):
    """Stop (USER_STOP) once ``seconds`` of wall time have passed in a solve."""

    def __init__(self, seconds: float):
        if not seconds > 0:
            raise ValueError("TimeLimit: seconds must be positive")
        self.seconds = float(seconds)
        self._t0 = 0.0

    def start(self, problem):
        self._t0 = time.perf_counter()

    def __call__(self, info):
        return time.perf_counter() - self._t0 > self.seconds


class CallbackMonitor(Monitor):
    """Adapt scipy's ``callback(xk)`` (or ``callback(rnorm)`` with ``arg="rnorm"``)."""

    def __init__(self, callback, arg: str = "x"):
        self.callback = callback
        self.arg = arg

    def __call__(self, info):
        self.callback(info.x() if self.arg == "x" else info.rnorm)
        return None


# ------------------------------------------------------------------------------------ problem
@dataclasses.dataclass
class Problem:
    """Everything a method's ``_iterate`` needs for one solve.

    ``x`` is a fresh working copy (never the user's ``x0``); ``tol`` is the
    absolute threshold max(atol, rtol·‖b‖) on the true residual.
    """

    op: Operator
    M: Preconditioner | None
    b: Any
    x: Any
    bnorm: float
    tol: float
    maxiter: int
    backend: Backend
    dtype: np.dtype
    monitors: list
    record_history: bool
    solver: "Solver"
    x0_given: bool = False

    @property
    def xp(self):
        return self.backend.xp

    @property
    def k(self):
        return self.backend.kernels

    @property
    def live(self) -> bool:
        """True when per-iteration Python callbacks must run (no fully jitted path)."""
        return bool(self.monitors)

    @property
    def jit_ready(self) -> bool:
        """Whether a whole-solve numba loop applies: host CSR A, M None or diagonal, no monitors."""
        op, M = self.op, self.M
        return (op.kind == "csr" and not op.device and not self.live
                and (M is None or M.inv_diag is not None))

    def jit_inputs(self) -> "JitInputs":
        """The raw arrays and flags the whole-solve numba loops take (see `jit_ready`)."""
        a, dtype = self.op.csr, self.dtype
        data = a.data if a.data.dtype == dtype else a.data.astype(dtype)
        inv_diag = (np.empty(0, dtype=dtype) if self.M is None
                    else np.ascontiguousarray(self.M.inv_diag, dtype=dtype))
        from .kernels import cpu

        return JitInputs(
            indptr=a.indptr, indices=a.indices, data=data, inv_diag=inv_diag,
            hist=np.empty(self.maxiter + 1 if self.record_history else 0, dtype=np.float64),
            parallel=cpu.use_parallel(self.b.shape[0]),
            x0_nonzero=bool(self.x0_given and np.any(self.x)),
            eps=float(np.finfo(dtype).eps))

    def history_of(self, inputs: "JitInputs", iterations: int):
        """The recorded part of a jitted loop's history array (None when not recorded)."""
        return inputs.hist[: int(iterations) + 1] if self.record_history else None

    # -- products, dispatched once by operator kind and backend ------------------------------
    def matvec(self, x, out=None):
        return self.op.matvec(x, out)

    def precond(self, r, out=None):
        if self.M is None:
            if out is None:
                return r.copy()
            out[...] = r
            return out
        return self.M.apply(r, out)

    def dot(self, x, y):
        return self.k.dot(x, y)

    def norm(self, x) -> float:
        return float(self.k.norm2(x))

    def residual(self, x, out=None):
        """r = b − A x."""
        r = self.matvec(x, out)
        r *= -1
        r += self.b
        return r

    def notify(self, iteration: int, rnorm: float, xfun: Callable[[], Any]) -> bool:
        """Run the monitors; True means a monitor asked to stop."""
        stop = False
        if self.monitors:
            info = IterationInfo(iteration, float(rnorm), xfun, self.solver)
            for m in self.monitors:
                if m(info):
                    stop = True
        return stop


@dataclasses.dataclass(frozen=True)
class JitInputs:
    """Arguments shared by the whole-solve numba loops (CG, MINRES, BiCGSTAB, GMRES)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    inv_diag: np.ndarray  # D⁻¹ for Jacobi, length 0 for no preconditioner
    hist: np.ndarray  # length maxiter + 1, or 0 when history is not recorded
    parallel: bool
    x0_nonzero: bool
    eps: float


@dataclasses.dataclass
class Outcome:
    """What a method's ``_iterate`` returns."""

    x: Any
    status: Status
    iterations: int
    rnorm: float
    nmatvec: int = 0
    nprec: int = 0
    history: list | np.ndarray | None = None
    extras: dict = dataclasses.field(default_factory=dict)
    rnorm_is_true: bool = False


# ------------------------------------------------------------------------------------- solver
class Solver(abc.ABC):
    """Base class of every krylovlab method.

    Parameters
    ----------
    A : matrix-like, optional
        The operator (see `krylovlab.as_operator`); may be set later with
        `update_operator`.
    rtol, atol : float
        Stop when ``‖b − A x‖₂ ≤ max(atol, rtol·‖b‖₂)`` (scipy's rule).
    maxiter : int, optional
        Iteration limit (method-specific default).
    M : preconditioner, optional
        Approximation of A⁻¹: matrix, LinearOperator, callable, pyamg
        hierarchy, `Jacobi`, or anything with ``aspreconditioner()``.
    monitors : sequence of callables
        Each is called as ``monitor(info)`` after every iteration; returning
        True stops the solve with `Status.USER_STOP`.
    history : bool
        Record the monitored norm of every iteration in ``SolveResult.history``.

    Subclasses set ``method`` (the registry name) and implement
    ``_iterate(problem) -> Outcome``; sequence methods also override
    ``_operator_changed`` and ``reset``.
    """

    method: ClassVar[str] = ""
    norm: ClassVar[str] = "true residual 2-norm ||b - Ax||"
    #: set when ``_iterate`` handles CuPy arrays through the backend layer
    supports_device: ClassVar[bool] = False
    #: default for ``maxiter`` as a multiple of n (scipy uses 10·n for cg)
    maxiter_factor: ClassVar[int] = 10
    #: whether the final true-residual check may restart the method
    restart_on_false_convergence: ClassVar[bool] = True

    def __init__(self, A=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, monitors=(), history=False):
        self.rtol, self.atol = check_tolerances(rtol, atol)
        if maxiter is not None:
            if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 0:
                raise ValueError(f"maxiter must be a non-negative integer or None, got {maxiter!r}")
            maxiter = int(maxiter)
        self.maxiter = maxiter
        self._M_source = M
        self.M: Preconditioner | None = None
        for m in monitors:
            if not callable(m):
                raise TypeError(f"monitor {m!r} is not callable")
        self.monitors = list(monitors)
        self.history = bool(history)
        self.A: Operator | None = None
        if A is not None:
            self.update_operator(A)

    # ---------------------------------------------------------------- sequence interface
    def update_operator(self, A, M=None) -> None:
        """Set a new operator (and optionally a new preconditioner).

        Methods that learn across solves decide here what of their state the
        new operator invalidates (``_operator_changed``).
        """
        old = self.A
        self.A = as_operator(A, name="A")
        if M is not None:
            self._M_source = M
        self.M = as_preconditioner(self._M_source, self.A.n, name="M")
        self._operator_changed(old, self.A)

    def _operator_changed(self, old: Operator | None, new: Operator) -> None:
        """Hook for sequence methods; the default keeps nothing."""

    def reset(self) -> None:
        """Forget everything learned across solves (recycle spaces, learners ...)."""

    # ---------------------------------------------------------------------- one solve
    def default_maxiter(self, n: int) -> int:
        return max(self.maxiter_factor * n, 1)

    def solve(self, b, x0=None) -> SolveResult:
        """Solve A x = b; return a `SolveResult` (which unpacks as ``x, info``)."""
        if self.A is None:
            raise ValueError(f"{type(self).__name__} has no operator: pass A or call update_operator(A)")
        t0 = time.perf_counter()
        op = self.A
        if op.shape[0] != op.shape[1]:
            raise ValueError(f"A must be square, got shape {op.shape}")
        n = op.n
        be = get_backend(op, b, x0)
        if be.is_gpu and not self.supports_device:
            raise TypeError(
                f"{type(self).__name__} has no GPU path yet: pass host (numpy/scipy) arrays"
            )
        xp = be.xp
        b = check_vector(b, n, "b", xp)
        if x0 is not None:
            x0 = check_vector(x0, n, "x0", xp)
        dtype = result_dtype(op.dtype, b.dtype, None if x0 is None else x0.dtype)
        b = xp.ascontiguousarray(b, dtype=dtype)
        bnorm = float(be.kernels.norm2(b)) if n else 0.0
        tol = max(self.atol, self.rtol * bnorm)
        maxiter = self.default_maxiter(n) if self.maxiter is None else self.maxiter

        if bnorm == 0.0:
            x = xp.zeros(n, dtype=dtype)
            return SolveResult(x, Status.ATOL, 0, 0.0, norm=self.norm, history=np.zeros(1) if self.history else None,
                               time=time.perf_counter() - t0, backend=be.name,
                               extras={"method": self.method, "note": "zero right-hand side"})

        x = xp.zeros(n, dtype=dtype) if x0 is None else xp.array(x0, dtype=dtype, copy=True)
        for m in self.monitors:
            if isinstance(m, Monitor):
                m.start(None)
        problem = Problem(op, self.M, b, x, bnorm, tol, maxiter, be, dtype, list(self.monitors),
                          self.history, self, x0_given=x0 is not None)
        if maxiter == 0:
            out = self._no_iterations(problem)
        else:
            out = self._run_with_true_residual_check(problem)
        hist = None
        if out.history is not None:
            hist = np.asarray(out.history, dtype=float)
        extras = {"method": self.method, **out.extras}
        return SolveResult(out.x, out.status, out.iterations, out.rnorm, norm=self.norm, history=hist,
                           nmatvec=out.nmatvec, nprec=out.nprec, time=time.perf_counter() - t0,
                           backend=be.name, extras=extras)

    def _run_with_true_residual_check(self, problem: Problem) -> Outcome:
        total = None
        restarts = 0
        while True:
            out = self._iterate(problem)
            total = out if total is None else _merge(total, out)
            if not _claims_convergence(out.status) or out.rnorm_is_true:
                break
            xp = problem.xp
            r = problem.residual(out.x)
            true_rnorm = problem.norm(r)
            total.nmatvec += 1
            if not math.isfinite(true_rnorm):
                total.status, total.rnorm = Status.NANORINF, true_rnorm
                break
            if true_rnorm <= problem.tol:
                total.rnorm = true_rnorm
                break
            left = problem.maxiter - total.iterations
            if not self.restart_on_false_convergence or restarts >= _MAX_TRUE_RESIDUAL_RESTARTS or left <= 0:
                total.status = Status.MAXITER if left <= 0 else Status.STAGNATION
                total.rnorm = true_rnorm
                total.extras["true_residual_check"] = "failed"
                break
            restarts += 1
            problem = dataclasses.replace(problem, x=xp.array(out.x, copy=True), maxiter=left, x0_given=True)
        if restarts:
            total.extras["true_residual_restarts"] = restarts
        return total

    def _no_iterations(self, problem: Problem) -> Outcome:
        """maxiter = 0: only test x0 (the same for every method)."""
        if problem.x0_given:
            rnorm = problem.norm(problem.residual(problem.x))
            nmv = 1
        else:
            rnorm, nmv = problem.bnorm, 0
        status = converged_status(rnorm, problem) if rnorm <= problem.tol else Status.MAXITER
        return Outcome(problem.x, status, 0, rnorm, nmatvec=nmv,
                       history=[rnorm] if problem.record_history else None, rnorm_is_true=True)

    @abc.abstractmethod
    def _iterate(self, problem: Problem) -> Outcome:
        """Run the method on ``problem`` (everything method-independent is done by `solve`)."""

    # ------------------------------------------------------------------------ display
    def __repr__(self):
        a = "None" if self.A is None else f"{self.A.shape}"
        return f"{type(self).__name__}(A={a}, rtol={self.rtol}, atol={self.atol}, maxiter={self.maxiter})"


def _claims_convergence(status: Status) -> bool:
    return status in (Status.RTOL, Status.ATOL, Status.HAPPY_BREAKDOWN)


def _merge(a: Outcome, b: Outcome) -> Outcome:
    hist = None
    if a.history is not None and b.history is not None:
        hist = list(np.asarray(a.history)) + list(np.asarray(b.history)[1:])
    return Outcome(b.x, b.status, a.iterations + b.iterations, b.rnorm, a.nmatvec + b.nmatvec,
                   a.nprec + b.nprec, hist, {**a.extras, **b.extras}, b.rnorm_is_true)


def converged_status(rnorm: float, problem: Problem) -> Status:
    """RTOL or ATOL, whichever threshold decided convergence."""
    return Status.ATOL if problem.tol == problem.solver.atol and problem.solver.atol > 0 else Status.RTOL
