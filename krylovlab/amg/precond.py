"""Algebraic multigrid as a preconditioner, with AMG-CG and AMG-GMRES solvers.

Algorithm: one multigrid V-cycle (Brandt, McCormick & Ruge, "Algebraic
multigrid (AMG) for sparse matrix equations", 1984; Stüben, "A review of
algebraic multigrid", J. Comput. Appl. Math. 128, 2001) applied to the
residual from a zero initial guess, used as M ≈ A⁻¹ inside CG (Concus, Golub &
O'Leary 1976) or GMRES.  The hierarchy — aggregates or C/F splitting,
prolongations P_l, restrictions R_l and Galerkin operators A_{l+1} = R_l A_l
P_l — is built by pyamg (``kind="sa" | "rs" | "pairwise" | "adaptive"``); the
*cycle* runs on krylovlab's kernels: the whole V-cycle, and for AMG-CG the
whole preconditioned iteration, is one numba call on the hierarchy's raw CSR
arrays (`krylovlab.kernels.cpu.amg_pcg`).  On a GPU the hierarchy's matrices
are copied to cupyx once (`AMG.to_device`) and the cycle runs there with
damped-Jacobi smoothing (`krylovlab.kernels.gpu._amg`).

Monitored norm: AMG-CG monitors the recursively updated residual ‖r_k‖₂
(r_k = b − A x_k in exact arithmetic) and `Solver.solve` confirms convergence
on the true residual; AMG-GMRES reports what the GMRES engine monitors.

Workspace: AMG-CG keeps 4 n-vectors (r, p, q, z) besides x, plus three work
vectors per level (x_l, b_l, r_l: 3·grid-complexity·n) and the dense
pseudo-inverse of the coarsest matrix.

With symmetric Gauss–Seidel (the default) or Jacobi smoothing and a symmetric
hierarchy (R = Pᵀ, as pyamg builds for ``symmetry="hermitian"``) the V-cycle
is a symmetric positive definite operator when A is, so CG may use it.
"""

from __future__ import annotations

import math
import numbers

import numba as nb
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._operator import Operator, Preconditioner, as_operator
from .._result import Status
from .._solver import Outcome, Problem, Solver
from ..kernels.cpu import _amg as kamg
from ..kernels.cpu import _dia as kdia
from ..kernels.cpu import _relax as krelax
from ..kernels.cpu._blas import PARALLEL_THRESHOLD, machine_busy

__all__ = ["AMG", "AMGCG", "AMGGMRES"]

_STATUS = {int(s): s for s in Status}
_KINDS = ("sa", "rs", "pairwise", "adaptive", "grid")
_SMOOTHERS = {"gauss_seidel": kamg.GAUSS_SEIDEL, "jacobi": kamg.JACOBI}
_SWEEPS = {"symmetric": kamg.SYMMETRIC, "forward": kamg.FORWARD, "backward": kamg.BACKWARD,
           "red-black": kamg.RED_BLACK}


def _build_pyamg(A, kind, options):
    import pyamg

    if kind == "sa":
        return pyamg.smoothed_aggregation_solver(A, **options)
    if kind == "rs":
        return pyamg.ruge_stuben_solver(A, **options)
    if kind == "pairwise":
        return pyamg.aggregation.pairwise_solver(A, **options)
    if kind == "adaptive":
        ml, _work = pyamg.aggregation.adaptive_sa_solver(A, **options)
        return ml
    raise ValueError(f"kind must be one of {', '.join(map(repr, _KINDS))}, got {kind!r}")


#: the finest level keeps a copy in diagonal storage from this many rows on (tests lower it)
_DIA_MIN_ROWS = kdia.MIN_ROWS
#: coarse levels get red–black sweeps from diagonal storage from this many rows on
_COARSE_RB_MIN_ROWS = 256


class _Packed:
    """The hierarchy as packed raw arrays for `kernels.cpu._amg` (see its docstring).

    The finest matrix is also kept in diagonal storage when it is banded and
    has at least `_DIA_MIN_ROWS` rows (CG's products read it), and with
    ``red_black`` its rows are two-coloured when its graph allows (the
    red–black sweeps read ``f_dm``).
    """

    def __init__(self, As, Ps, Rs, dtype, red_black=False, axes=None):
        L = len(As)
        self.nl = np.array([a.shape[0] for a in As], dtype=np.int64)
        self.vo = np.zeros(L, dtype=np.int64)
        self.vo[1:] = np.cumsum(self.nl)[:-1]
        total = int(self.nl.sum())
        self.a_ptr, self.a_idx, self.a_dat, self.po, self.ao = self._pack(As[:-1], dtype)
        self.p_ptr, self.p_idx, self.p_dat, self.ppo, self.pao = self._pack(Ps, dtype)
        self.r_ptr, self.r_idx, self.r_dat, self.rpo, self.rao = self._pack(Rs, dtype)
        d = np.concatenate([a.diagonal() for a in As]).astype(dtype)
        with np.errstate(divide="ignore"):
            self.dinv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0.0).astype(dtype)
        lo_up = [kamg.split_diagonal(a.indptr, a.indices) for a in As]
        self.lo = np.concatenate([lu[0] for lu in lo_up])
        self.up = np.concatenate([lu[1] for lu in lo_up])
        coarse = As[-1].toarray()
        self.cinv = np.ascontiguousarray(sla.pinv(coarse), dtype=dtype).ravel()
        self.xw = np.zeros(total, dtype=dtype)
        self.bw = np.zeros(total, dtype=dtype)
        self.rw = np.zeros(total, dtype=dtype)
        n0 = int(self.nl[0])
        self.f_dm = np.zeros((2, 0), dtype=dtype)
        from .grid import no_tensor_transfers, tensor_transfers

        # a grid hierarchy's P and R, axis by axis (`krylovlab.amg.grid`); else from CSR
        self.tt = tensor_transfers(axes, dtype) if axes else no_tensor_transfers(dtype)
        self._colour = None
        fine = As[0]
        # a single-level hierarchy has no cycle to smooth in: no copy
        self._fine = kdia.DiagonalCopy(dtype, _DIA_MIN_ROWS if L >= 2 else 2**62)
        self.f_off, self.f_val = self._fine.update(fine)
        if red_black and self.f_off.shape[0] > 0:
            self._colour = _two_colouring(fine)
            if self._colour is not None:
                self.f_dm = np.zeros((2, n0), dtype=dtype)
                self._set_dm()
        self._coarse_rb(As, dtype, red_black)

    def _coarse_rb(self, As, dtype, red_black):
        """Red–black sweeps on the coarse levels that are banded and two-coloured too (a grid hierarchy's
        5/7-point levels; smoothed aggregation's are neither), packed as ``cl = (offsets, their starts per
        level, values, their starts, scalings)``: level l's diagonals are ``offsets[o[l]:o[l+1]]`` with
        values ``values[v[l]:…]`` (diagonals × rows) and its scalings ``scal[2·vo[l]:…]`` (2 × rows).
        3D Darcy 32³, level 16³ (ad hoc, one thread): a red–black pass 8 µs against 48-65 µs for a
        lexicographic symmetric sweep."""
        L = len(As)
        offs, optr, vals, vptr = [], [0, 0], [], [0, 0]  # level 0 (red–black through f_*) has none here
        self._c_levels = []  # (level, DiagonalCopy, colour) for `refresh_coarse`
        scal = np.zeros(2 * int(self.nl.sum()), dtype=dtype)
        for lev in range(1, L - 1):
            a = As[lev]
            copy = kdia.DiagonalCopy(dtype, _COARSE_RB_MIN_ROWS)
            off, val = copy.update(a) if red_black and self.red_black else (np.zeros(0, np.int64), None)
            colour = _two_colouring(a) if off.shape[0] > 0 else None
            if colour is not None:
                offs.append(off)
                vals.append(val.ravel())
                self._c_levels.append((lev, copy, colour))
            optr.append(optr[-1] + (off.shape[0] if colour is not None else 0))
            vptr.append(vptr[-1] + (val.size if colour is not None else 0))
        optr += [optr[-1]] * (L + 1 - len(optr))
        vptr += [vptr[-1]] * (L + 1 - len(vptr))
        cval = np.concatenate(vals).astype(dtype) if vals else np.zeros(0, dtype)
        self.cl = (np.concatenate(offs) if offs else np.zeros(0, np.int64), np.asarray(optr, dtype=np.int64), cval,
                   np.asarray(vptr, dtype=np.int64), scal)
        self._bind_coarse_views()
        self._set_coarse_scalings()

    def _bind_coarse_views(self):
        """Each coarse level's diagonal copy gathers new values straight into the packed array."""
        cval, vptr = self.cl[2], self.cl[3]
        for lev, copy, _ in self._c_levels:
            copy.val = cval[vptr[lev]:vptr[lev + 1]].reshape(copy.val.shape)

    def __setstate__(self, state):
        """Unpickled: the copies' views into the packed values became arrays of their own; bind them again."""
        self.__dict__.update(state)
        if hasattr(self, "cl"):
            self._bind_coarse_views()

    def _set_coarse_scalings(self):
        for lev, _, colour in self._c_levels:
            n, vo = int(self.nl[lev]), int(self.vo[lev])
            _split_by_colour(self.dinv[vo:vo + n], colour, self.cl[4][2 * vo:2 * vo + 2 * n].reshape(2, n))

    def refresh_coarse(self, mats):
        """After the coarse levels' values (and `dinv`) changed, patterns unchanged: refill their diagonals
        and red–black scalings (``mats[l]``: level l's matrix)."""
        for lev, copy, _ in self._c_levels:
            copy.update(mats[lev], same_pattern=True)  # into its view of the packed values
        self._set_coarse_scalings()

    def _set_dm(self):
        _split_by_colour(self.dinv[: self.f_dm.shape[1]], self._colour, self.f_dm)

    @property
    def red_black(self) -> bool:
        """Does the cycle run red–black sweeps on the finest level (banded and two-coloured)?"""
        return self.f_dm.shape[1] > 0

    def refresh_fine(self, A):
        """After the finest matrix's values (and `dinv`) changed, pattern unchanged: refill its diagonals
        and the red–black scalings."""
        self.f_off, self.f_val = self._fine.update(A, same_pattern=True)
        if self.red_black:
            self._set_dm()

    @staticmethod
    def _pack(mats, dtype):
        if not mats:
            z = np.zeros(1, dtype=np.int64)
            return z, np.zeros(1, dtype=np.int32), np.zeros(1, dtype=dtype), z, z
        big = sum(m.nnz for m in mats) >= 2**31 - 1
        itype = np.int64 if big else np.int32
        ptr = np.concatenate([m.indptr.astype(np.int64) for m in mats])
        idx = np.concatenate([m.indices.astype(itype, copy=False) for m in mats])
        dat = np.concatenate([m.data.astype(dtype, copy=False) for m in mats])
        po = np.zeros(len(mats), dtype=np.int64)
        ao = np.zeros(len(mats), dtype=np.int64)
        po[1:] = np.cumsum([m.shape[0] + 1 for m in mats])[:-1]
        ao[1:] = np.cumsum([m.nnz for m in mats])[:-1]
        return ptr, idx, dat, po, ao

    def args(self):
        return (self.nl, self.vo, self.a_ptr, self.a_idx, self.a_dat, self.po, self.ao,
                self.p_ptr, self.p_idx, self.p_dat, self.ppo, self.pao,
                self.r_ptr, self.r_idx, self.r_dat, self.rpo, self.rao,
                self.dinv, self.lo, self.up, self.cinv, self.xw, self.bw, self.rw,
                self.f_off, self.f_val, self.f_dm, self.tt, self.cl)

    @property
    def nbytes(self):
        arrays = [a for a in self.args() if not isinstance(a, tuple)] + list(self.tt) + list(self.cl)
        return sum(a.nbytes for a in arrays if hasattr(a, "nbytes"))


@nb.njit(cache=True, nogil=True)
def _split_by_colour(d, colour, dm):
    """dm[c, i] ← d[i] where row i has colour c, else 0 (one pass; numpy's two `where` cost 0.17 ms at 32³)."""
    for i in range(d.shape[0]):
        if colour[i] == 0:
            dm[0, i] = d[i]
            dm[1, i] = 0
        else:
            dm[0, i] = 0
            dm[1, i] = d[i]


def _two_colouring(a):
    """Colours 0/1 of the rows of ``a`` with no entry a_ij ≠ 0 (i ≠ j) inside one colour, or None.

    First-fit colouring in natural order two-colours every grid stencil whose
    neighbours differ by one step along one axis (5-point, 7-point): each row
    but the first has a neighbour before it, of the other parity.
    """
    colour = krelax.greedy_coloring(a.indptr, a.indices)
    if colour.shape[0] == 0 or colour.max() > 1:
        return None
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    off = a.indices != rows
    if np.any(colour[rows[off]] == colour[a.indices[off]]):  # a pattern that is not symmetric
        return None
    return colour.astype(np.int8)


class AMG(Preconditioner):
    """Algebraic multigrid V-cycle preconditioner (pyamg hierarchy, krylovlab cycle).

    Parameters
    ----------
    A : sparse matrix or pyamg ``MultilevelSolver``
        The (symmetric positive definite, for use in CG) matrix; or an
        existing pyamg hierarchy, whose levels are reused as they are.
    kind : {"sa", "rs", "pairwise", "adaptive", "grid"}
        pyamg builder: smoothed aggregation, Ruge–Stüben, pairwise
        aggregation, adaptive smoothed aggregation; or ``"grid"``: a
        hierarchy from the geometry of a structured grid, for stencil
        matrices on the interior nodes of a uniform grid given as
        ``grid=shape`` (`krylovlab.amg.grid`: pairs of nodes per axis, linear
        interpolation, coarse operators ½TᵀAT with 5- or 7-point stencils
        instead of the Galerkin products).  Options: ``grid`` (required),
        ``max_coarse``, ``max_levels``.
    smoother : {"gauss_seidel", "jacobi"}
        Relaxation used in the cycle (Gauss–Seidel is serial, as pyamg's).
    sweep : {"symmetric", "forward", "backward", "red-black"}
        Gauss–Seidel ordering of the pre-smoother; the post-smoother uses the
        reverse ordering, so the cycle stays symmetric.  ``"red-black"``: on
        the finest level, when it is banded (a grid stencil, at least
        10 000 rows) and its graph two-coloured (5-point, 7-point stencils),
        red, black and red passes, each a vectorised product over the
        diagonals instead of a serial chain of rows; symmetric lexicographic
        sweeps on the other levels (and on a finest level that does not
        qualify: `red_black` tells).  About as strong a smoother (3D Darcy
        32³: 9 AMG-CG iterations either way; 8.3 against 8.0 on average over
        a sequence).  Its passes are bound by the bytes they read, so it pays
        together with ``precision="single"`` (one V-cycle 1.4 ms against
        2.3 ms), not alone (2.3 ms).  pyamg's ``ml.solve`` then runs
        symmetric lexicographic sweeps throughout.
    presweeps, postsweeps : int
        Smoothing steps before and after the coarse correction.
    omega : float, optional
        Jacobi damping (default 2/3).
    parallel : {"auto", True, False}
        Threaded kernels on large levels (see `thread_threshold`); Gauss–Seidel
        sweeps are serial in every case.
    precision : {"double", "single"}
        Precision of the cycle.  ``"single"`` keeps the hierarchy in float32
        (the matrix stays as given): half the bytes per cycle, which is what
        a cycle on a large level waits for, at no cost in accuracy when the
        V-cycle preconditions a double-precision Krylov method — its
        residuals and products stay in double (3D Darcy 32³, AMG-CG to
        1e-8: the same 9 iterations).  Vectors passed to `apply` come back
        in their own precision.  (The CPU cycle; the GPU cycle of
        `to_device` runs in the matrix's precision.)
    rebuild_threshold : float
        `update_operator` rebuilds the hierarchy when
        ``‖A_new − A_old‖_F > rebuild_threshold·‖A_old‖_F`` or the sparsity
        pattern changed; otherwise it keeps P and R and recomputes only the
        coarse operators (Galerkin products; ½TᵀAT for ``kind="grid"``).
    **options
        Passed through to the pyamg builder (``max_levels``, ``max_coarse``,
        ``strength``, ``B`` …).  The smoother options are set by krylovlab so
        that pyamg's own ``ml.solve`` runs the same cycle.

    Attributes
    ----------
    ml : pyamg.MultilevelSolver
        The hierarchy (its smoothers match ours, so ``ml.solve`` is a fair peer).
    levels : int
    operator_complexity, grid_complexity : float

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.amg import AMG
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((100, 100))
    >>> M = AMG(A)
    >>> x, info = krylovlab.cg(A, np.ones(A.shape[0]), rtol=1e-8, M=M)
    >>> info
    0
    """

    def __init__(self, A, kind: str = "sa", *, smoother: str = "gauss_seidel", sweep: str = "symmetric",
                 presweeps: int = 1, postsweeps: int = 1, omega: float | None = None,
                 rebuild_threshold: float = 0.1, parallel="auto", precision: str = "double", **options):
        if precision not in ("double", "single"):
            raise ValueError(f"precision must be 'double' or 'single', got {precision!r}")
        self.precision = precision
        if parallel not in ("auto", True, False):
            raise ValueError(f"parallel must be 'auto', True or False, got {parallel!r}")
        self.parallel = parallel
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, _KINDS))}, got {kind!r}")
        if smoother not in _SMOOTHERS:
            raise ValueError(f"smoother must be one of {sorted(_SMOOTHERS)}, got {smoother!r}")
        if sweep not in _SWEEPS:
            raise ValueError(f"sweep must be one of {sorted(_SWEEPS)}, got {sweep!r}")
        for name, v in (("presweeps", presweeps), ("postsweeps", postsweeps)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if omega is None:
            omega = 2.0 / 3.0
        if not (isinstance(omega, numbers.Real) and 0 < omega < 2):
            raise ValueError(f"omega must lie in (0, 2), got {omega!r}")
        if not (isinstance(rebuild_threshold, numbers.Real) and rebuild_threshold >= 0):
            raise ValueError(f"rebuild_threshold must be >= 0, got {rebuild_threshold!r}")
        for key in ("presmoother", "postsmoother"):
            if key in options:
                raise TypeError(f"{key!r} is set by krylovlab; use smoother=, sweep=, presweeps=, postsweeps=")
        self.kind = kind
        self.smoother, self.sweep = smoother, sweep
        self.presweeps, self.postsweeps = int(presweeps), int(postsweeps)
        self.omega = float(omega)
        self.rebuild_threshold = float(rebuild_threshold)
        self.options = dict(options)
        self.n_rebuilds = 0
        self._device = None
        # a Preconditioner itself, so solvers take it as M without a LinearOperator wrapper
        self.inv_diag = None
        self.source = self
        self.description = f"amg ({kind})"
        self._coarse = None  # per level (R_c, P_c) with A_{l+1} = R_c A_l P_c when not (R_l, P_l)
        self._axes = None  # a grid hierarchy's transfers as tensor products (`krylovlab.amg.grid`)
        if kind == "grid" and "grid" not in options:
            raise TypeError("AMG(kind='grid') needs grid=shape, the interior grid the unknowns live on")
        if hasattr(A, "levels") and hasattr(A, "aspreconditioner"):
            self.ml = A
            self._A = A.levels[0].A.tocsr()
            self._set_smoothers()
            self._pack_levels()
        else:
            self._build(A)

    # ------------------------------------------------------------------ setup
    def _pyamg_smoother(self, reverse: bool):
        it = self.postsweeps if reverse else self.presweeps
        if self.smoother == "jacobi":
            return ("jacobi", {"omega": self.omega, "iterations": it, "withrho": False})
        sweep = "symmetric" if self.sweep == "red-black" else self.sweep  # pyamg has no red–black sweep
        if reverse and sweep != "symmetric":
            sweep = "backward" if sweep == "forward" else "forward"
        return ("gauss_seidel", {"sweep": sweep, "iterations": it})

    def _set_smoothers(self):
        from pyamg.relaxation.smoothing import change_smoothers

        change_smoothers(self.ml, self._pyamg_smoother(False), self._pyamg_smoother(True))

    def _build(self, A):
        op = as_operator(A, name="A")
        if op.kind != "csr" or op.device:
            if op.kind == "dense" and not op.device:
                op = as_operator(sp.csr_matrix(op.dense), name="A")
            else:
                raise TypeError("AMG needs an explicit host matrix (scipy sparse or dense numpy array)")
        if op.dtype.kind == "c":
            raise TypeError("AMG: complex matrices are not supported by krylovlab's cycle yet")
        a = op.csr
        d = a.diagonal()
        if np.any(d == 0):
            raise ValueError("AMG: the matrix has a zero on its diagonal (relaxation needs a nonzero diagonal)")
        self._A = a
        if self.kind == "grid":
            from .grid import grid_hierarchy

            self.ml, self._coarse, self._axes = grid_hierarchy(a, **self.options)
        else:
            self.ml = _build_pyamg(a, self.kind, self.options)
        self.n_rebuilds += 1
        self._set_smoothers()
        self._pack_levels()

    def _pack_levels(self):
        lv = self.ml.levels
        dtype = np.float32 if lv[0].A.dtype == np.float32 or self.precision == "single" else np.float64
        As = [lev.A.tocsr() for lev in lv]
        for a in As:
            if not a.has_sorted_indices:
                a.sort_indices()
        Ps = [lev.P.tocsr() for lev in lv[:-1]]
        Rs = [lev.R.tocsr() for lev in lv[:-1]]
        self._As, self._Ps, self._Rs = As, Ps, Rs
        red_black = self.smoother == "gauss_seidel" and self.sweep == "red-black"
        self._packed = _Packed(As, Ps, Rs, dtype, red_black=red_black, axes=self._axes)
        self.dtype = np.dtype(dtype)
        self._device = None

    # ---------------------------------------------------------------- pickling
    def __getstate__(self):
        """The hierarchy without pyamg's smoother and coarse-solver closures (not picklable); `__setstate__`
        makes them again from the options.  A device copy (`to_device`) is not kept."""
        import copy

        state = self.__dict__.copy()
        ml = copy.copy(self.ml)
        ml.__dict__.pop("coarse_solver", None)
        ml.levels = []
        for lev in self.ml.levels:
            lev = copy.copy(lev)
            lev.__dict__.pop("presmoother", None)
            lev.__dict__.pop("postsmoother", None)
            ml.levels.append(lev)
        state["ml"] = ml
        state["_device"] = None
        return state

    def __setstate__(self, state):
        from pyamg.multilevel import coarse_grid_solver

        state.setdefault("_coarse", None)  # pickled before kind="grid" existed
        state.setdefault("_axes", None)
        self.__dict__.update(state)
        if not hasattr(self._packed, "tt") or not hasattr(self._packed, "cl"):  # pickled by an older version
            self._pack_levels()
        # krylovlab's cycle solves the coarsest level with a pseudo-inverse; pyamg's ml.solve gets the same
        self.ml.coarse_solver = coarse_grid_solver("pinv")
        self._set_smoothers()

    # ---------------------------------------------------------------- facts
    @property
    def n(self) -> int:
        return self._A.shape[0]

    @n.setter
    def n(self, value):  # Preconditioner's attribute; the size always follows the matrix
        pass

    @property
    def shape(self):
        return self._A.shape

    @property
    def levels(self) -> int:
        return len(self._As)

    @property
    def matrix_dtype(self) -> np.dtype:
        """The matrix's precision (`dtype` is the cycle's)."""
        return self._A.dtype

    @property
    def red_black(self) -> bool:
        """Does the cycle run red–black sweeps on the finest level?"""
        return self._packed.red_black

    @property
    def coarse_transfers(self) -> list:
        """Per level the pair ``(R_c, P_c)`` with A_{l+1} = R_c A_l P_c: the level's own (R, P) for the algebraic
        kinds (Galerkin), ``(½Tᵀ, T)`` for ``kind="grid"``."""
        if self._coarse is not None:
            return list(self._coarse)
        return [(lev.R, lev.P) for lev in self.ml.levels[:-1]]

    @property
    def operator_complexity(self) -> float:
        return sum(a.nnz for a in self._As) / self._As[0].nnz

    @property
    def grid_complexity(self) -> float:
        return sum(a.shape[0] for a in self._As) / self._As[0].shape[0]

    def thread_threshold(self) -> int:
        """Smallest level size that runs threaded kernels in this solve.

        ``parallel=True``: levels of at least ``PARALLEL_THRESHOLD`` unknowns
        (none when numba runs one thread in the calling thread, e.g. inside
        `krylovlab.datagen`'s single-threaded shards); ``False``: none;
        ``"auto"`` (default): as True, except when the machine is already
        busy (`krylovlab.kernels.cpu.machine_busy`), where a threaded region
        waiting for a descheduled thread was measured many times slower than
        the serial loop.  The choice changes only the
        summation order of the threaded reductions.
        """
        if self.parallel is False or nb.get_num_threads() == 1:  # a one-thread parallel region only costs
            return 2**62
        if self.parallel == "auto" and machine_busy():
            return 2**62
        return PARALLEL_THRESHOLD

    def _kernel_config(self):
        return (_SMOOTHERS[self.smoother], _SWEEPS[self.sweep], self.presweeps, self.postsweeps, self.omega)

    # ---------------------------------------------------------------- apply
    def apply(self, r, out=None):
        """z = B r: one V-cycle from a zero initial guess.

        ``r`` may be a numpy array (numba cycle) or, after `to_device`, a CuPy
        array (cycle on the GPU).
        """
        if type(r).__module__.startswith("cupy"):
            return self._apply_device(r, out)
        r = np.asarray(r).reshape(-1)
        given = r.dtype if r.dtype.kind == "f" else np.dtype(np.float64)
        r = np.ascontiguousarray(r, dtype=self.dtype)
        if r.shape[0] != self.shape[0]:
            raise ValueError(f"AMG.apply: vector of length {r.shape[0]}, expected {self.shape[0]}")
        z = np.empty_like(r) if out is None or out.dtype != self.dtype or not out.flags.c_contiguous else out
        kind, sweep, pre, post, omega = self._kernel_config()
        kamg.vcycle(*self._packed.args(), kind, sweep, pre, post, omega, r, z, self.thread_threshold())
        if out is not None and z is not out:
            out[...] = z
            return out
        return z if out is not None or z.dtype == given else z.astype(given)

    def __matmul__(self, r):
        return self.apply(r)

    def aspreconditioner(self) -> spla.LinearOperator:
        """The V-cycle as a `scipy.sparse.linalg.LinearOperator` (M ≈ A⁻¹)."""

        def matvec(r):
            return self.apply(r)

        return spla.LinearOperator(self.shape, matvec=matvec, rmatvec=matvec, dtype=self.matrix_dtype)

    # ------------------------------------------------------------- sequences
    def update_operator(self, A, rebuild: bool | None = None) -> bool:
        """Point the hierarchy at a new matrix; return True when it was rebuilt.

        ``rebuild=True`` always rebuilds, ``False`` never does (P and R are kept
        and the coarse operators recomputed, see `coarse_transfers`), ``None`` rebuilds when
        the sparsity pattern changed or the relative Frobenius change exceeds
        ``rebuild_threshold``.
        """
        op = as_operator(A, name="A")
        if op.kind != "csr" or op.device:
            raise TypeError("AMG.update_operator needs a host scipy sparse matrix")
        new = op.csr
        if new.shape != self._A.shape:
            raise ValueError(f"AMG.update_operator: shape {new.shape} differs from {self._A.shape}")
        if rebuild is None:
            same_pattern = (new.nnz == self._A.nnz and np.array_equal(new.indptr, self._A.indptr)
                            and np.array_equal(new.indices, self._A.indices))
            change = sp.linalg.norm(new - self._A) / max(sp.linalg.norm(self._A), 1e-300)
            rebuild = not same_pattern or change > self.rebuild_threshold
        if rebuild:
            self._build(new)
            return True
        if np.any(new.diagonal() == 0):
            raise ValueError("AMG: the matrix has a zero on its diagonal")
        self._A = new
        lv = self.ml.levels
        lv[0].A = new
        for k, (Rc, Pc) in enumerate(self.coarse_transfers):
            lv[k + 1].A = (Rc @ lv[k].A @ Pc).tocsr()
        if hasattr(self.ml, "coarse_solver") and hasattr(self.ml.coarse_solver, "__dict__"):
            # pyamg caches the coarse factorisation on its solver; rebuild it lazily
            from pyamg.multilevel import coarse_grid_solver

            self.ml.coarse_solver = coarse_grid_solver("pinv")
        self._set_smoothers()
        self._pack_levels()
        return False

    # ------------------------------------------------------------------- GPU
    def to_device(self):
        """Copy the hierarchy's matrices to the GPU (cupyx CSR) once; returns self."""
        from ..kernels.gpu import _amg as gamg

        self._device = gamg.DeviceHierarchy(self._As, self._Ps, self._Rs, self._packed.cinv,
                                            self.omega, self.presweeps, self.postsweeps)
        return self

    def _apply_device(self, r, out=None):
        if self._device is None:
            raise ValueError("AMG.apply got a CuPy array: call AMG.to_device() first "
                             "(krylovlab never copies between host and device silently)")
        z = self._device.vcycle(r)
        if out is not None:
            out[...] = z
            return out
        return z

    def __repr__(self):
        return (f"AMG(kind={self.kind!r}, n={self.shape[0]}, levels={self.levels}, "
                f"operator_complexity={self.operator_complexity:.2f}, smoother={self.smoother!r}, "
                f"sweep={self.sweep!r})")


# ------------------------------------------------------------------------ solvers
class _AMGSolverBase(Solver):
    """Shared constructor: build (or adopt) the AMG hierarchy for A."""

    def __init__(self, A=None, *, kind="sa", amg=None, amg_options=None, rtol=1e-5, atol=0.0,
                 maxiter=None, monitors=(), history=False):
        if amg is not None and not isinstance(amg, AMG):
            raise TypeError(f"amg must be a krylovlab.amg.AMG, got {type(amg).__name__}")
        if amg_options is not None and not isinstance(amg_options, dict):
            raise TypeError("amg_options must be a dict of AMG/pyamg options")
        self.kind = kind
        self.amg_options = dict(amg_options or {})
        self.amg = amg
        self._outer = kdia.DiagonalCopy(min_rows=_DIA_MIN_ROWS)  # A by diagonals for AMGCG's products
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=None, monitors=monitors, history=history)

    def _operator_changed(self, old, new: Operator) -> None:
        if new.kind not in ("csr", "dense") or new.device:
            raise TypeError(f"{type(self).__name__} needs an explicit host sparse or dense matrix")
        mat = new.csr if new.kind == "csr" else sp.csr_matrix(new.dense)
        if self.amg is None:
            self.amg = AMG(mat, self.kind, **self.amg_options)
        elif self.amg._A is not mat and not _same_matrix(self.amg._A, mat):
            self.amg.update_operator(mat)
        self.M = self.amg

    def default_maxiter(self, n: int) -> int:
        return max(min(10 * n, 10_000), 1)


def _same_matrix(a, b) -> bool:
    return (a.shape == b.shape and a.nnz == b.nnz and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))


class AMGCG(_AMGSolverBase):
    """CG preconditioned by one AMG V-cycle, the whole iteration in one numba call.

    Parameters
    ----------
    A : sparse matrix
        Symmetric positive definite.
    kind : str
        pyamg builder for the hierarchy (see `AMG`).
    amg : AMG, optional
        A prebuilt hierarchy (reused as is).
    amg_options : dict, optional
        Options for `AMG` (``smoother``, ``max_coarse``, ``strength`` …).
    rtol, atol, maxiter, monitors, history
        As for every `Solver`; stop when ‖b − A x‖₂ ≤ max(atol, rtol‖b‖₂).

    Notes
    -----
    With monitors the loop runs in Python over the same kernels (so monitors
    see every iterate); otherwise it is one jitted call.  Non-positive
    curvature gives `Status.INDEFINITE`, a non-positive rᵀBr `Status.PC_FAILED`.

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((100, 100))
    >>> res = krylovlab.solve(A, np.ones(A.shape[0]), method="amg-cg", rtol=1e-8)
    >>> res.converged, res.iterations < 15
    (True, True)
    """

    method = "amg-cg"
    norm = "residual 2-norm ||r_k|| (recursive; confirmed on the true residual)"

    def _iterate(self, pb: Problem) -> Outcome:
        amg = self.amg
        if pb.live or pb.dtype != amg.matrix_dtype:
            return self._iterate_python(pb)
        hist = np.empty(pb.maxiter + 1 if pb.record_history else 0, dtype=np.float64)
        x0_nonzero = bool(pb.x0_given and np.any(pb.x))
        kind, sweep, pre, post, omega = amg._kernel_config()
        a = amg._A
        # A by diagonals for CG's products (empty offsets: CSR), kept per sparsity pattern: a later matrix
        # with that pattern (or the same one, its values changed in place) only gathers its values
        off, val = self._outer.update(a)
        mixed = amg.dtype != pb.dtype  # a single-precision cycle inside double-precision CG
        rc = np.empty(pb.b.shape[0], dtype=amg.dtype) if mixed else None
        zc = np.empty_like(rc) if mixed else None
        it, code, rn, nmv, nprec = kamg.amg_pcg(*amg._packed.args(), kind, sweep, pre, post, omega,
                                                amg.thread_threshold(), a.indptr, a.indices, a.data, off, val,
                                                rc, zc, pb.b, pb.x, pb.tol, pb.maxiter, hist, x0_nonzero)
        history = hist[: it + 1] if pb.record_history else None
        return Outcome(pb.x, _STATUS[int(code)], int(it), float(rn), nmatvec=int(nmv), nprec=int(nprec),
                       history=history, extras=self._extras("jitted"))

    def _extras(self, path):
        a = self.amg
        return {"path": path, "amg_kind": a.kind, "amg_levels": a.levels,
                "operator_complexity": a.operator_complexity}

    def _iterate_python(self, pb: Problem) -> Outcome:
        from ..krylov.cg import CG

        out = CG._iterate_python(self, pb)
        out.extras.update(self._extras("python"))
        return out


class AMGGMRES(_AMGSolverBase):
    """GMRES preconditioned by one AMG V-cycle (for nonsymmetric matrices).

    Uses krylovlab's GMRES engine when it is available and otherwise scipy's
    ``gmres`` with the V-cycle as ``M``; either way `Solver.solve` confirms the
    result on the true residual.

    Parameters
    ----------
    restart : int
        Krylov dimension between restarts.
    (others as `AMGCG`)

    Examples
    --------
    >>> import numpy as np, krylovlab
    >>> from krylovlab.gallery import convection_diffusion
    >>> A = convection_diffusion((60, 60))
    >>> res = krylovlab.solve(A, np.ones(A.shape[0]), method="amg-gmres", rtol=1e-8)
    >>> res.converged
    True
    """

    method = "amg-gmres"
    norm = "residual 2-norm as monitored by the GMRES engine (confirmed on the true residual)"

    def __init__(self, A=None, *, kind="sa", amg=None, amg_options=None, restart=30, rtol=1e-5, atol=0.0,
                 maxiter=None, monitors=(), history=False):
        if isinstance(restart, bool) or not isinstance(restart, numbers.Integral) or restart < 1:
            raise ValueError(f"restart must be a positive integer, got {restart!r}")
        self.restart = int(restart)
        super().__init__(A, kind=kind, amg=amg, amg_options=amg_options, rtol=rtol, atol=atol,
                         maxiter=maxiter, monitors=monitors, history=history)

    def _iterate(self, pb: Problem) -> Outcome:
        try:
            from ..krylov.gmres import GMRES
        except ImportError:
            GMRES = None
        if GMRES is not None:
            engine = GMRES(pb.op, M=self.amg, restart=self.restart, rtol=self.rtol, atol=self.atol,
                           maxiter=pb.maxiter, monitors=self.monitors, history=self.history)
            out = engine._iterate(pb.__class__(**{**pb.__dict__, "M": engine.M, "solver": engine}))
            out.extras.update({"engine": "krylovlab.GMRES", "amg_levels": self.amg.levels})
            return out
        return self._iterate_scipy(pb)

    def _iterate_scipy(self, pb: Problem) -> Outcome:
        from threadpoolctl import threadpool_limits

        A = pb.op.aslinearoperator()
        M = self.amg.aspreconditioner()
        count = [0]
        history = [] if pb.record_history else None
        stopped = [False]

        def cb(prnorm):
            count[0] += 1
            if history is not None:
                history.append(float(prnorm))
            if pb.notify(count[0], float(prnorm), lambda: None):
                stopped[0] = True
                raise _Stop

        rtol = pb.tol / pb.bnorm
        x = pb.x
        with threadpool_limits(1):
            try:
                x, info = spla.gmres(A, pb.b, x0=pb.x, rtol=rtol, atol=0.0, restart=self.restart,
                                     maxiter=max(1, math.ceil(pb.maxiter / self.restart)), M=M,
                                     callback=cb, callback_type="pr_norm")
            except _Stop:
                info = -99
        rn = float(np.linalg.norm(pb.b - pb.op.matvec(x)))
        if stopped[0]:
            status = Status.USER_STOP
        elif not math.isfinite(rn):
            status = Status.NANORINF
        elif info == 0 and rn <= pb.tol:
            status = Status.RTOL
        elif info == 0:
            status = Status.STAGNATION
        else:
            status = Status.MAXITER
        return Outcome(np.asarray(x), status, count[0], rn, nmatvec=count[0] + 1, nprec=count[0],
                       history=history, extras={"engine": "scipy.gmres", "amg_levels": self.amg.levels},
                       rnorm_is_true=True)


class _Stop(Exception):
    pass
