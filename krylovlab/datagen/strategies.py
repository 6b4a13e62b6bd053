"""Ways to solve one shard of samples, in order, carrying what helps the next solve.

Each strategy is created per shard (so a shard's results never depend on
what another shard did), then ``solve(A, b)`` is called for the shard's
samples in solving order.  Every strategy warm-starts from the previous
solution where that is meaningful; the stopping rule is always krylovlab's
(``‖b − A x‖ ≤ rtol·‖b‖``, independent of the initial guess).

=================  =================================================================
``direct``         sparse LU (SuperLU) per matrix; one factorisation per shard when
                   the family's matrix does not vary
``cg``             krylovlab CG, warm start (SPD families)
``gmres``          krylovlab GMRES(40), warm start (any family)
``amg-cg``         krylovlab AMG-CG: smoothed-aggregation hierarchy (pyamg) built on
                   the shard's first matrix, coarse operators R·A·P recomputed for
                   each new matrix, rebuilt when iterations grow past 1.5× those
                   right after the last rebuild (SPD families)
``gcrodr``         krylovlab GCRO-DR(40, 20) carrying its recycle space (needs
                   `krylovlab.recycle`)
``rcg``            krylovlab recycled CG (SPD; needs `krylovlab.recycle`)
=================  =================================================================
"""

from __future__ import annotations

import abc
import importlib.util

import numpy as np
import scipy.sparse.linalg as spla


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class Strategy(abc.ABC):
    name = ""

    def __init__(self, family, rtol: float):
        self.family = family
        self.rtol = float(rtol)
        self.prev = None

    @abc.abstractmethod
    def solve(self, A, b):
        """Return ``(x, iterations)``; raise `RuntimeError` if it did not converge."""


class Direct(Strategy):
    name = "direct"

    def __init__(self, family, rtol):
        super().__init__(family, rtol)
        self._lu = None
        self._for = None

    def solve(self, A, b):
        if self._lu is None or self.family.matrix_varies or self._for is not A:
            self._lu = spla.splu(A.tocsc())
            self._for = A
        x = self._lu.solve(np.asarray(b, dtype=np.result_type(A.dtype, b.dtype)))
        return x, 0


class _KrylovStrategy(Strategy):
    method = "cg"
    options: dict = {}

    def _solver(self, A):
        import krylovlab

        return krylovlab.get_solver_class(self.method)(A, rtol=self.rtol, maxiter=20 * A.shape[0],
                                                      **self.options)

    def solve(self, A, b):
        solver = self._solver(A)
        x0 = self.prev if self.prev is not None and self.prev.dtype == np.result_type(A.dtype, b.dtype) else None
        res = solver.solve(b, x0)
        if not res.converged:
            raise RuntimeError(f"{self.name} did not converge: {res.status.name}")
        self.prev = res.x
        return res.x, res.iterations


class CGWarm(_KrylovStrategy):
    name = "cg"
    method = "cg"


class GMRESWarm(_KrylovStrategy):
    name = "gmres"
    method = "gmres"
    options = {"restart": 40}


class AMGCG(Strategy):
    """krylovlab AMG-CG (one numba call per solve); the hierarchy's P and R are kept across the shard.

    For each new matrix only the coarse operators R·A·P are recomputed; the
    hierarchy is rebuilt from scratch when iterations grow past 1.5× those
    right after the last rebuild.
    """

    name = "amg-cg"

    def __init__(self, family, rtol):
        super().__init__(family, rtol)
        self._solver = None
        self._base_iters = None
        self._rebuild = False

    def solve(self, A, b):
        from ..amg import AMGCG as _AMGCG

        if self._solver is None:
            self._solver = _AMGCG(A, rtol=self.rtol, amg_options={"rebuild_threshold": float("inf")})
        else:
            self._solver.amg.update_operator(A, rebuild=self._rebuild)
            self._solver.update_operator(A)
            if self._rebuild:
                self._base_iters = None
        res = self._solver.solve(b, self.prev)
        if not res.converged:
            raise RuntimeError(f"amg-cg did not converge: {res.status.name}")
        if self._base_iters is None:
            self._base_iters = max(res.iterations, 1)
        self._rebuild = self.family.matrix_varies and res.iterations > 1.5 * self._base_iters
        self.prev = res.x
        return res.x, res.iterations


class Recycling(Strategy):
    """GCRO-DR or RCG from `krylovlab.recycle`, one solver object per shard."""

    def __init__(self, family, rtol, method):
        super().__init__(family, rtol)
        self.name = method
        self._solver = None

    def solve(self, A, b):
        import krylovlab

        if self._solver is None:
            cls = krylovlab.get_solver_class(self.name)
            self._solver = cls(A, rtol=self.rtol, maxiter=20 * A.shape[0])
        else:
            self._solver.update_operator(A)
        res = self._solver.solve(b, self.prev)
        if not res.converged:
            raise RuntimeError(f"{self.name} did not converge: {res.status.name}")
        self.prev = res.x
        return res.x, res.iterations


def make(name: str, family, rtol: float) -> Strategy:
    """Build strategy ``name`` for one shard."""
    if name == "direct":
        return Direct(family, rtol)
    if name == "cg":
        return CGWarm(family, rtol)
    if name == "gmres":
        return GMRESWarm(family, rtol)
    if name == "amg-cg":
        return AMGCG(family, rtol)
    if name in ("gcrodr", "rcg"):
        return Recycling(family, rtol, name)
    raise ValueError(f"unknown solver strategy {name!r}; choose from {', '.join(available(family))} or 'auto'")


def recycling_available() -> bool:
    return _have("krylovlab.recycle.gcrodr")


def available(family) -> list[str]:
    """Strategies that apply to ``family`` with what is installed."""
    names = ["direct"]
    spd = family.symmetric and family.definite
    if spd:
        names += ["cg", "amg-cg"]
    names.append("gmres")
    if recycling_available():
        names.append("gcrodr")
        if spd and _have("krylovlab.recycle.rcg"):
            names.append("rcg")
    return names


def candidates(family) -> list[str]:
    """What ``solver="auto"`` calibrates among (skips hopeless ones by size)."""
    names = available(family)
    n, dim = family.n, family.dim
    if (dim == 2 and n > 300_000) or (dim == 3 and n > 10_000):
        names.remove("direct")  # fill-in makes LU far slower than the iterative options (3-D: 8.6 s at 32³)
    if family.symmetric and family.definite:
        # CG-type methods dominate GMRES-type ones on SPD families (short recurrences)
        names = [nm for nm in names if nm not in ("gmres", "gcrodr")]
    return names
