"""Why a solve stopped, and everything it produced.

`Status` follows PETSc's sign convention: a positive value means the method
stopped for a good reason, a negative value means it failed.  Every member
carries a message that names a remedy.  `SolveResult` is what every solver in
krylovlab returns; it unpacks as scipy's ``(x, info)`` pair.
"""

from __future__ import annotations

import dataclasses
import enum
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

__all__ = ["Status", "SolveResult"]


class Status(enum.IntEnum):
    """Reason a solve stopped (PETSc convention: > 0 success, < 0 failure)."""

    RTOL = 2
    ATOL = 3
    HAPPY_BREAKDOWN = 5
    USER_STOP = 6
    MAXITER = -3
    BREAKDOWN = -5
    INDEFINITE = -8
    NANORINF = -9
    PC_FAILED = -11
    STAGNATION = -12

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def is_failure(self) -> bool:
        return self < 0


_MESSAGES = {
    Status.RTOL: "converged: ||b - Ax|| <= rtol * ||b||.",
    Status.ATOL: "converged: ||b - Ax|| <= atol.",
    Status.HAPPY_BREAKDOWN: "converged: the Krylov space became invariant, so the solution is exact "
    "to rounding error.",
    Status.USER_STOP: "stopped by a monitor or callback; check `converged` for whether the "
    "tolerance was met.",
    Status.MAXITER: "not converged within maxiter iterations: raise maxiter, loosen rtol/atol, "
    "or use a preconditioner (M=...).",
    Status.BREAKDOWN: "the method broke down (a division by a vanishing inner product): try "
    "method='gmres', a different x0, or a preconditioner.",
    Status.INDEFINITE: "the matrix or preconditioner is not positive definite (CG met "
    "non-positive curvature): use method='minres' for symmetric indefinite "
    "systems or method='gmres' otherwise.",
    Status.NANORINF: "NaN or Inf appeared in the iteration: check the matrix, the right-hand "
    "side and the preconditioner for overflow or invalid values.",
    Status.PC_FAILED: "the preconditioner produced NaN/Inf or a non-positive-definite result: "
    "check that M approximates inv(A) and, for CG/MINRES, that it is SPD.",
    Status.STAGNATION: "the residual stopped decreasing before reaching the tolerance: the "
    "system may be singular or inconsistent, or the tolerance is below what "
    "rounding error allows.",
}

_CONVERGED = frozenset({Status.RTOL, Status.ATOL, Status.HAPPY_BREAKDOWN})


@dataclasses.dataclass(frozen=True, eq=False)
class SolveResult:
    """The outcome of one solve.

    Attributes
    ----------
    x : array
        The computed solution (on the device the inputs came from).
    status : Status
        Why the method stopped.
    converged : bool
        True exactly when the tolerance test was met on the monitored norm.
    iterations : int
        Iterations performed (what ``maxiter`` counts for this method).
    rnorm : float
        Final value of the monitored norm, see ``norm``.
    norm : str
        Which norm ``rnorm`` and ``history`` measure.
    history : ndarray or None
        Monitored norm at iteration 0, 1, ..., when recorded.
    nmatvec, nprec : int
        Products with A and applications of the preconditioner.
    time : float
        Wall time of the solve in seconds.
    backend : str
        ``"numpy"`` or ``"cupy"``.
    extras : mapping
        Method-specific facts (what ``method="auto"`` chose, omega, recycle
        dimension, sketch size ...).
    info : int
        scipy's convention: 0 converged, > 0 iterations done without
        convergence, < 0 breakdown or illegal input.

    Examples
    --------
    >>> import krylovlab
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((16,))
    >>> res = krylovlab.solve(A, A @ (1.0 + 0 * A.diagonal()), method="cg", rtol=1e-10)
    >>> res.converged, res.status.name
    (True, 'RTOL')
    >>> x, info = res
    """

    x: Any
    status: Status
    iterations: int
    rnorm: float
    norm: str = "true residual 2-norm ||b - Ax||"
    history: np.ndarray | None = None
    nmatvec: int = 0
    nprec: int = 0
    time: float = 0.0
    backend: str = "numpy"
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "extras", MappingProxyType(dict(self.extras)))

    @property
    def converged(self) -> bool:
        if self.status in _CONVERGED:
            return True
        return bool(self.extras.get("tolerance_met", False))

    @property
    def info(self) -> int:
        if self.converged:
            return 0
        if self.status in (Status.MAXITER, Status.USER_STOP, Status.STAGNATION):
            return max(int(self.iterations), 1)
        return -1

    @property
    def message(self) -> str:
        return self.status.message

    def __iter__(self):
        yield self.x
        yield self.info

    def __repr__(self) -> str:
        return (
            f"SolveResult(status={self.status.name}, converged={self.converged}, "
            f"iterations={self.iterations}, rnorm={self.rnorm:.3e}, nmatvec={self.nmatvec}, "
            f"time={self.time:.3g}s, backend={self.backend!r})"
        )
