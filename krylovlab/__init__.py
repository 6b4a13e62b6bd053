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
from .krylov.minres import MINRES
from .krylov.delegated import BiCG, CGS, GCROTMK, LGMRES, QMR, TFQMR
from .compat import bicg, cgs, gcrotmk, lgmres, minres, qmr, tfqmr
from .krylov.gmres import GMRES
from .krylov.bicgstab import BiCGSTAB
from .compat import bicgstab, gmres
# --- end classic Krylov ---

# --- recycled Krylov (recycle/) ---
from .recycle import GCRODR, GMRESDR, RCG, gcrodr, ordering
# --- end recycled Krylov ---

# --- relaxation (relax/) ---
from .relax import SOR, SSOR, BinnedTsallisINF, ChebCB, TsallisINF
# --- end relaxation ---

# --- learned directions (learned/) ---
from .learned import DCDM
# --- end learned directions ---

# --- sketching (sketch/) ---
from .sketch import (
    SRHT,
    CountSketch,
    GaussianSketch,
    Kaczmarz,
    LstsqResult,
    SketchProject,
    SparseSign,
    lstsq,
    make_sketch,
)
# --- end sketching ---

# --- algebraic multigrid (amg/) ---
from .amg import AMG, AMGCG, AMGGMRES, AMGSpectralClustering, spectral_clustering
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
    "MINRES",
    "minres",
    "CGS",
    "cgs",
    "BiCG",
    "bicg",
    "QMR",
    "qmr",
    "TFQMR",
    "tfqmr",
    "LGMRES",
    "lgmres",
    "GCROTMK",
    "gcrotmk",
    "GMRES",
    "gmres",
    "BiCGSTAB",
    "bicgstab",
    # recycled Krylov
    "GCRODR",
    "GMRESDR",
    "RCG",
    "gcrodr",
    "ordering",
    # relaxation
    "SOR",
    "SSOR",
    "TsallisINF",
    "BinnedTsallisINF",
    "ChebCB",
    # learned directions
    "DCDM",
    # sketching
    "lstsq",
    "LstsqResult",
    "Kaczmarz",
    "SketchProject",
    "make_sketch",
    "GaussianSketch",
    "SRHT",
    "CountSketch",
    "SparseSign",
    # algebraic multigrid
    "AMG",
    "AMGCG",
    "AMGGMRES",
    "AMGSpectralClustering",
    "spectral_clustering",
]
