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
``jacobi-cg``      krylovlab CG with Jacobi preconditioning, warm start (SPD families)
``gmres``          krylovlab GMRES(40), warm start (any family)
``amg-cg``         krylovlab AMG-CG: smoothed-aggregation hierarchy (pyamg) built once
                   per process on the first matrix of the solving order, coarse
                   operators R·A·P updated for each new matrix through precomputed
                   linear maps, rebuilt when iterations grow past 1.5× those of the
                   shard's first solve (SPD families)
``gmg-cg``         the same with a hierarchy made from the grid (``AMG(kind="grid")``):
                   5- or 7-point coarse operators ½·TᵀAT, cheaper to update and to
                   cycle through (SPD families)
``gcrodr``         krylovlab GCRO-DR(40, 20) carrying its recycle space (needs
                   `krylovlab.recycle`)
``rcg``            krylovlab recycled CG (SPD; needs `krylovlab.recycle`)
=================  =================================================================
"""

from __future__ import annotations

import abc
import importlib.util
import pickle
import threading

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

    #: does the strategy keep its setup (e.g. an AMG hierarchy) across shards run in one process?
    setup_shared = False
    #: does it solve faster when neighbours in the solving order are similar (a carried Krylov space,
    #: a warm start that matters)?  ``order="auto"`` sorts the samples only for strategies that do.
    order_matters = True
    #: does it run numba kernels?  Which of them get compiled depends on the matrix (diagonal storage from
    #: 10 000 rows, red–black AMG sweeps, threaded variants by size), so the calibration warms such a
    #: strategy up on a real system of the family, not on a small one.
    compiled = True

    @abc.abstractmethod
    def solve(self, A, b):
        """Return ``(x, iterations)``; raise `RuntimeError` if it did not converge."""

    def close(self) -> None:
        """Release what the strategy holds (called at the end of a shard)."""


class Direct(Strategy):
    name = "direct"
    order_matters = False
    compiled = False  # scipy's SuperLU

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

    jacobi = False

    def _solver(self, A):
        import krylovlab

        M = krylovlab.Jacobi(A) if self.jacobi else None
        return krylovlab.get_solver_class(self.method)(A, rtol=self.rtol, maxiter=20 * A.shape[0], M=M,
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


class JacobiCGWarm(_KrylovStrategy):
    """CG preconditioned by diag(A)⁻¹ (inside the jitted loop), warm start; helps when the
    coefficient varies a lot (exp of a Gaussian random field)."""

    name = "jacobi-cg"
    method = "cg"
    jacobi = True


class GMRESWarm(_KrylovStrategy):
    name = "gmres"
    method = "gmres"
    options = {"restart": 40}


#: per reference key, a pool of AMG hierarchies built from that reference matrix, each ``{"lock", "value"}``:
#: shards running at once in one process (Dask worker threads, the calibration) each hold one
_SHARED_AMG: dict = {}
#: per pool key, the first hierarchy built for it, pickled (see `AMGCG._pooled`)
_TEMPLATES: dict = {}
_SHARED_LOCK = threading.Lock()


def clear_shared() -> None:
    """Forget the per-process AMG hierarchies (the next shard builds its own again)."""
    with _SHARED_LOCK:
        _SHARED_AMG.clear()
        _TEMPLATES.clear()


def _seeded_amg(A, precision="single", kind="sa", **options):
    """An AMG hierarchy of ``kind`` (pyamg smoothed aggregation by default, or ``"grid"``); one symmetric
    Gauss–Seidel sweep before and after the coarse correction, red–black on the finest level; the cycle in
    single precision.

    Symmetric sweeps cost about what a forward pre-sweep and a backward
    post-sweep do per cycle and cut AMG-CG's iterations on Darcy from 11 to 9
    (3D 32³) and from 12 to 9 (2D 128²).  Red–black sweeps on the finest level
    (a 5- or 7-point stencil) and a float32 cycle inside the float64 CG: 3D
    Darcy 32³, 24 samples after the first, one hierarchy updated per sample
    (ad hoc): 8.33 mean iterations and 24.4 ms per sample, against 8.0 and
    27.5 ms with lexicographic sweeps in double precision (red–black in double:
    8.33 and 27.6 ms; lexicographic in single: 8.0 and 25.6 ms).

    pyamg estimates spectral radii from random start vectors drawn from
    numpy's global generator: it is seeded for the build (and restored), so
    the hierarchy — and every shard solved with it — is reproducible.
    """
    from ..amg import AMG

    state = np.random.get_state()
    try:
        np.random.seed(0x5EED)
        return AMG(A, kind, sweep="red-black", precision=precision, rebuild_threshold=float("inf"), **options)
    finally:
        np.random.set_state(state)


class AMGCG(Strategy):
    """krylovlab AMG-CG (one numba call per solve) reusing one AMG hierarchy's P and R.

    For each new matrix with the pattern the hierarchy was built on, only the
    coarse operators R·A·P change, and they are computed through precomputed
    linear maps of A's values (`FastGalerkin`: one sparse mat-vec per level).
    The hierarchy is rebuilt from scratch (pyamg smoothed aggregation) when
    iterations grow past 1.5× those of the shard's first solve.

    With ``reference=(key, build)`` the first hierarchy is built from the
    matrix ``build()`` returns (the first sample of the solving order) once
    per process — once per shard running at the same time, e.g. on Dask
    worker threads — and reused by every later shard there; a shard only ever
    overwrites its values with its own matrices, so the results do not depend
    on which shards ran before in the same process.
    """

    name = "amg-cg"
    setup_shared = True
    #: its warm start barely matters: AMG-CG reduces the residual about tenfold per iteration, and a
    #: neighbour's solution is not ten times closer than zero.  Darcy, 200 samples, SKR order against
    #: index order: 8.04 against 8.04 mean iterations at 32³, 8.05 against 8.11 at 128² (while the
    #: features and the tour cost 5-10 % of the run).
    order_matters = False

    def __init__(self, family, rtol, reference=None):
        super().__init__(family, rtol)
        self._reference = reference
        self._solver = None
        self._fast = None
        self._lock = None
        self._base_iters = None
        self._rebuild = False

    def __del__(self):
        self._release()

    def _release(self):
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _make(self, A):
        from ..amg import AMGCG as _AMGCG
        from ._galerkin import FastGalerkin

        amg = self._hierarchy(A)
        try:
            fast = FastGalerkin(amg, symmetric=self.family.symmetric)
        except (RuntimeError, ValueError):
            fast = None  # fall back to pyamg's own R·A·P updates
        return fast, _AMGCG(amg._A, amg=amg)

    def _hierarchy(self, A):
        return _seeded_amg(A)

    def _pooled(self, key, build):
        """A new hierarchy for the pool of ``key``: built from the reference matrix the first time, and
        then also kept pickled, so that a shard running at the same time as the first (a second Dask
        worker thread) unpickles a copy instead of building one (3D Darcy 32³: 9 ms against 130-190 ms; a
        copy of the freshly built hierarchy, it is the one a build would give, bit for bit)."""
        template = _TEMPLATES.get(key)
        if template is not None:
            return pickle.loads(template)
        value = self._make(build())
        with _SHARED_LOCK:
            _TEMPLATES[key] = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            for old in [k for k in _TEMPLATES if k not in _SHARED_AMG]:
                del _TEMPLATES[old]  # the pools it served are gone
        return value

    def _start(self, A):
        """The shard's first hierarchy: a free one of the process's pool for ``reference`` (built from the
        reference matrix, a new one when all are in use by shards running at the same time), else a private
        one.  Every pooled hierarchy has the same P and R (the build is seeded), so a shard's results do not
        depend on which one it gets."""
        if self._reference is not None:
            key, build = self._reference
            key = (self.name, key)  # each strategy its own kind of hierarchy
            with _SHARED_LOCK:
                pool = _SHARED_AMG.get(key)
                if pool is None:
                    for old in [k for k, p in _SHARED_AMG.items() if not any(e["lock"].locked() for e in p)][:-1]:
                        del _SHARED_AMG[old]  # keep at most the latest idle pool besides the new one
                    pool = _SHARED_AMG[key] = []
                entry = next((e for e in pool if e["lock"].acquire(blocking=False)), None)
                if entry is None:
                    entry = {"lock": threading.Lock(), "value": None}
                    entry["lock"].acquire()
                    pool.append(entry)
            self._lock = entry["lock"]
            if entry["value"] is None:
                entry["value"] = self._pooled(key, build)
            fast, solver = entry["value"]
            if fast is not None and fast.same_pattern(A):
                return fast, solver
            self._release()
        return self._make(A)

    def solve(self, A, b):
        if self._solver is None:
            self._fast, self._solver = self._start(A)
            self._base_iters = None
        elif self._rebuild:
            self._release()
            self._fast, self._solver = self._make(A)
            self._base_iters = None
        self._solver.rtol = self.rtol
        if self._solver.amg._A is not A:
            if self._fast is not None and self._fast.same_pattern(A):
                self._fast.update(A, checked=True)
            else:
                self._solver.amg.update_operator(A, rebuild=False)
        self._solver.update_operator(A)  # the hierarchy already points at A: nothing is recomputed
        res = self._solver.solve(b, self.prev)
        if not res.converged:
            raise RuntimeError(f"{self.name} did not converge: {res.status.name}")
        if self._base_iters is None:
            self._base_iters = max(res.iterations, 1)
        self._rebuild = self.family.matrix_varies and res.iterations > 1.5 * self._base_iters
        self.prev = res.x
        return res.x, res.iterations

    def close(self):
        self._release()


class GridAMGCG(AMGCG):
    """`AMGCG` on a hierarchy made from the grid (``AMG(kind="grid")``, `krylovlab.amg.grid`).

    Its coarse operators are 5- or 7-point stencils, ½TᵀAT: a new matrix
    costs one product per entry of A per level to update them, against the
    smoothed-aggregation hierarchy's Galerkin products (27 entries per row on
    3-D coarse levels), and a V-cycle reads fewer coarse entries.
    """

    name = "gmg-cg"

    def _hierarchy(self, A):
        return _seeded_amg(A, kind="grid", grid=self.family.grid)


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


def order_matters(name: str) -> bool:
    """Whether strategy ``name`` gains from a solving order with similar neighbours."""
    return getattr(_CLASSES.get(name), "order_matters", Strategy.order_matters)


def make(name: str, family, rtol: float, reference=None) -> Strategy:
    """Build strategy ``name`` for one shard.

    ``reference=(key, build)`` lets strategies with a costly setup (amg-cg)
    build it once per process from the matrix ``build()`` returns.
    """
    cls = _CLASSES.get(name)
    if cls is None:
        raise ValueError(f"unknown solver strategy {name!r}; choose from {', '.join(available(family))} or 'auto'")
    if cls in (AMGCG, GridAMGCG):
        return cls(family, rtol, reference)
    if cls is Recycling:
        return Recycling(family, rtol, name)
    return cls(family, rtol)


_CLASSES = {"direct": Direct, "cg": CGWarm, "jacobi-cg": JacobiCGWarm, "gmres": GMRESWarm, "amg-cg": AMGCG,
            "gmg-cg": GridAMGCG, "gcrodr": Recycling, "rcg": Recycling}


def recycling_available() -> bool:
    return _have("krylovlab.recycle.gcrodr")


def available(family) -> list[str]:
    """Strategies that apply to ``family`` with what is installed."""
    names = ["direct"]
    spd = family.symmetric and family.definite
    if spd:
        names += ["cg", "jacobi-cg", "amg-cg", "gmg-cg"]
    names.append("gmres")
    if recycling_available():
        names.append("gcrodr")
        if spd and _have("krylovlab.recycle.rcg"):
            names.append("rcg")
    return names


def shares_setup(name: str) -> bool:
    """Does strategy ``name`` build a setup kept across shards (`Strategy.setup_shared`)?"""
    return bool(getattr(_CLASSES.get(name), "setup_shared", False))


def compiled(name: str) -> bool:
    """Does strategy ``name`` run numba kernels (`Strategy.compiled`)?  (Unknown names: `make` refuses them.)"""
    return getattr(_CLASSES.get(name), "compiled", True)


def fallbacks(family) -> dict:
    """``{strategy: the one it stands in for}``: calibration times the first only when the second failed.

    On 3-D grids ``amg-cg`` stands in for ``gmg-cg``: the same AMG-CG with
    the same smoothing, but smoothed aggregation's coarse operators have about
    four times the entries of the grid hierarchy's 7-point ones, cost more per
    cycle and to update, and its setup (hierarchy and update plans, 0.4 s at
    32³) was most of the calibration's time.  3-D Darcy, one worker, whole
    runs (ad hoc): 24³ 100 samples 1.26 against 1.56 s, 32³ 200 samples 5.21
    against 5.44 s, 64³ 40 samples 13.1 against 17.8 s.  In 2-D both are timed.
    """
    if family.dim == 3:
        return {"amg-cg": "gmg-cg"}
    return {}


def candidates(family) -> list[str]:
    """What ``solver="auto"`` calibrates among (skips hopeless ones by size)."""
    names = available(family)
    n, dim = family.n, family.dim
    if (dim == 2 and n > 300_000) or (dim == 3 and n > 10_000):
        names.remove("direct")  # fill-in makes LU far slower than the iterative options (3-D: 8.6 s at 32³)
    if family.symmetric and family.definite:
        # CG-type methods dominate GMRES-type ones on SPD families (short recurrences)
        names = [nm for nm in names if nm not in ("gmres", "gcrodr")]
        if family.matrix_varies and "jacobi-cg" in names:
            # variable coefficients: Jacobi scaling cuts CG's iterations (3D Darcy 32³: 141 vs 165) for one
            # extra vector product per iteration, so plain CG is not worth its calibration time
            names.remove("cg")
    # the usual winners first: calibration stops timing a candidate once it is clearly slower
    # than the best so far, so a good early best keeps the calibration short
    preference = ["gmg-cg", "amg-cg", "direct", "jacobi-cg", "cg", "rcg", "gcrodr", "gmres"]
    return sorted(names, key=lambda nm: preference.index(nm) if nm in preference else len(preference))
