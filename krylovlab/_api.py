"""``solve()``: the rich front door, the method registry and ``method="auto"``.

Every method is a `Solver` subclass registered here by name as
``"module:Class"`` and imported on first use, so importing krylovlab stays
cheap and optional families (torch, CuPy, dask) load only when asked for.
"""

from __future__ import annotations

import importlib
import inspect

from ._operator import as_operator
from ._result import SolveResult, Status

__all__ = ["solve", "methods", "get_solver_class"]

#: name -> "module:Class" (relative to the krylovlab package)
_METHODS: dict[str, str] = {
    # classic Krylov (krylov/)
    "cg": "krylov.cg:CG",
    "gmres": "krylov.gmres:GMRES",
    "bicgstab": "krylov.bicgstab:BiCGSTAB",
    "minres": "krylov.minres:MINRES",
    "cgs": "krylov.delegated:CGS",
    "bicg": "krylov.delegated:BiCG",
    "qmr": "krylov.delegated:QMR",
    "tfqmr": "krylov.delegated:TFQMR",
    "lgmres": "krylov.delegated:LGMRES",
    "gcrotmk": "krylov.delegated:GCROTMK",
    # recycled Krylov (recycle/)
    "gcrodr": "recycle.gcrodr:GCRODR",
    "gmresdr": "recycle.gcrodr:GMRESDR",
    "rcg": "recycle.rcg:RCG",
    # relaxation (relax/)
    "sor": "relax.sor:SOR",
    # learned directions (learned/)
    "dcdm": "learned.dcdm:DCDM",
    # sketching (sketch/)
    "kaczmarz": "sketch.project:Kaczmarz",
    "sketch-project": "sketch.project:SketchProject",
    # algebraic multigrid (amg/)
    "amg-cg": "amg.precond:AMGCG",
    "amg-gmres": "amg.precond:AMGGMRES",
}


def methods() -> list[str]:
    """Names accepted by ``solve(method=...)`` (``"auto"`` included)."""
    return ["auto", *_METHODS]


def get_solver_class(method: str):
    """The `Solver` subclass registered under ``method``."""
    try:
        target = _METHODS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(methods())}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(f"krylovlab.{module}"), cls)


def _choose_auto(op, M):
    """Pick a method from operator tags; return (name, reason)."""
    sym = op.symmetric
    if sym is None:
        return "gmres", "operator is implicit (no tags): GMRES is the robust default"
    if sym and op.positive_diagonal:
        return "cg", "Hermitian with a positive diagonal: CG (falls back to MINRES if it meets negative curvature)"
    if sym:
        return "minres", "Hermitian but not positive definite: MINRES"
    return "gmres", "not symmetric: restarted GMRES"


def _split_options(cls, options: dict) -> tuple[dict, dict]:
    """Split keyword options into constructor and solve() arguments; reject unknown ones."""
    ctor = _accepted(cls.__init__)
    solve_params = _accepted(cls.solve)
    init_kw, solve_kw = {}, {}
    for key, value in options.items():
        if key in ctor:
            init_kw[key] = value
        elif key in solve_params:
            solve_kw[key] = value
        else:
            valid = sorted((ctor | solve_params) - {"self", "A", "b", "x0"})
            raise TypeError(f"{cls.__name__} got an unknown option {key!r}; valid options: {', '.join(valid)}")
    return init_kw, solve_kw


def _accepted(fn) -> set[str]:
    params = inspect.signature(fn).parameters
    return {name for name, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def solve(A, b, x0=None, *, method: str = "auto", **options) -> SolveResult:
    """Solve ``A x = b`` with the named method.

    Parameters
    ----------
    A : matrix-like
        Dense array, scipy or cupyx sparse matrix, `LinearOperator` or callable.
    b : array
        Right-hand side (length n).
    x0 : array, optional
        Initial guess (never modified).
    method : str
        One of `methods()`.  ``"auto"`` chooses from the operator's properties
        and says what it chose, and why, in ``result.extras``.
    **options
        Passed to the method's solver class (``rtol``, ``atol``, ``maxiter``,
        ``M``, ``monitors``, ``history`` and method-specific ones such as
        ``restart``, ``recycle_dim`` or ``omega``).  Unknown options raise
        `TypeError` listing the valid ones.

    Returns
    -------
    SolveResult

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((30, 30))
    >>> b = np.ones(A.shape[0])
    >>> res = krylovlab.solve(A, b, rtol=1e-8)
    >>> res.extras["auto_choice"], res.converged
    ('cg', True)
    >>> bool(np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b))
    True
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    method = method.lower()
    if method != "auto":
        cls = get_solver_class(method)
        init_kw, solve_kw = _split_options(cls, options)
        return cls(A, **init_kw).solve(b, x0, **solve_kw)

    op = as_operator(A, name="A", n=getattr(b, "shape", (None,))[0])
    M = options.get("M")
    choice, reason = _choose_auto(op, M)
    cls = get_solver_class(choice)
    init_kw, solve_kw = _split_options(cls, options)
    result = cls(op, **init_kw).solve(b, x0, **solve_kw)
    extras = {"auto_choice": choice, "auto_reason": reason}
    if choice == "cg" and result.status in (Status.INDEFINITE, Status.PC_FAILED):
        fallback = get_solver_class("minres")
        init_kw, solve_kw = _split_options(fallback, options)
        result = fallback(op, **init_kw).solve(b, x0, **solve_kw)
        extras = {"auto_choice": "minres", "auto_reason": reason + "; CG met negative curvature, so MINRES was used"}
    return _with_extras(result, extras)


def _with_extras(result: SolveResult, extras: dict) -> SolveResult:
    import dataclasses

    return dataclasses.replace(result, extras={**result.extras, **extras})
