"""krylovlab: sparse linear-system solvers in the SciPy style.

One front door, ``krylovlab.solve(A, b, method=...)``, returning a
`SolveResult`; `Solver` classes that learn across sequences of systems; and
drop-in replacements for the ``scipy.sparse.linalg`` solvers with the same
names, signatures and ``(x, info)`` returns.
"""

from ._api import get_solver_class, methods, solve
from ._operator import Jacobi, Operator, as_operator, as_preconditioner
from ._result import SolveResult, Status
from ._solver import (
    CallbackMonitor,
    History,
    IterationInfo,
    Monitor,
    PrintEvery,
    RecordIterates,
    Solver,
    TimeLimit,
)
from .backend import get_backend

# --- classic Krylov: solver classes and scipy drop-ins (krylov/, compat.py) ---
from .krylov.cg import CG
from .compat import cg
# --- end classic Krylov ---

# --- recycled Krylov (recycle/) ---
# --- end recycled Krylov ---

# --- relaxation (relax/) ---
# --- end relaxation ---

# --- learned directions (learned/) ---
# --- end learned directions ---

# --- sketching (sketch/) ---
# --- end sketching ---

# --- algebraic multigrid (amg/) ---
# --- end algebraic multigrid ---

from . import gallery

__version__ = "0.1.0"

__all__ = [
    "solve",
    "methods",
    "get_solver_class",
    "SolveResult",
    "Status",
    "Solver",
    "Operator",
    "as_operator",
    "as_preconditioner",
    "Jacobi",
    "get_backend",
    "Monitor",
    "IterationInfo",
    "History",
    "PrintEvery",
    "RecordIterates",
    "TimeLimit",
    "CallbackMonitor",
    "gallery",
    # classic Krylov
    "CG",
    "cg",
    # recycled Krylov
    # relaxation
    # learned directions
    # sketching
    # algebraic multigrid
]
