"""Cheap coarse-operator updates for an AMG hierarchy reused across a sequence of matrices.

When a data-generation shard keeps the prolongations P_l and restrictions R_l
of one smoothed-aggregation hierarchy for many matrices with the same
sparsity pattern, only the values of the Galerkin operators
A_{l+1} = R_l A_l P_l change, and their patterns are fixed.  `GalerkinPlan`
records, once per level, every product and where it lands: first the
products A[i, j]·P[j, J] summed into A_l P_l, then R[I, i]·(A P)[i, J] summed
into R_l (A_l P_l).  Each pass is stored as a sparse matrix acting on a value
array, so a new matrix costs two sparse mat-vecs per level — no
sparse-sparse products, no pattern work, no BSR→CSR conversion and no
re-pack of the hierarchy.  When R = Pᵀ the second pass computes only the
upper triangle of the coarse matrix and mirrors it, so the coarse operators
are exactly symmetric.

The first version stored one map per level, T with
``A_{l+1}.data = T @ A_l.data`` (one entry per product R[I, i]·A[i, j]·P[j, J]):
at 3D Darcy 32³ the two-pass plan has 2.0 million entries against T's 5.5
million (3.2 million with its upper-triangle halves), builds in 0.18 s
against 0.37–0.49 s and updates the hierarchy in 6.4–7.0 ms against
7.0–8.0 ms (process time on a busy machine; scipy's mat-vec bounds both).

`FastGalerkin` wraps a `krylovlab.amg.AMG`: it replaces the coarse operators
by ones with exactly the pattern of |R|·|A|·|P| (values equal to R A P up to
summation order), re-packs once, and from then on writes new values straight
into the packed arrays the numba V-cycle reads.  The pairs (R, P) are those
of `AMG.coarse_transfers`: a grid hierarchy (``kind="grid"``) makes its
coarse operators as ½·Tᵀ A T, one product per entry of A per level.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import scipy.sparse as sp

from ..kernels.cpu import spmv_rows_serial

__all__ = ["GalerkinPlan", "FastGalerkin"]


def _ones(m):
    m = sp.csr_matrix(m, copy=True)
    m.data = np.ones_like(m.data, dtype=np.float64)
    return m


def _sorted_pattern(m):
    m = m.tocsr()
    m.sort_indices()
    return m.indptr.astype(np.int64), m.indices.astype(np.int64)


class GalerkinPlan:
    """Where the products of R·A·P land, for every matrix with the pattern of ``A``.

    Parameters
    ----------
    A, R, P : sparse matrices
        The fine operator (its pattern is what later matrices must share),
        the restriction and the prolongation.
    symmetric : bool
        Compute only the upper triangle of R·A·P and mirror it.  Used only
        when R equals Pᵀ exactly (then R·A·P is symmetric whenever A is);
        `symmetric` tells whether it is in use.

    Attributes
    ----------
    indptr, indices : ndarray
        The sorted CSR pattern of the coarse matrix (that of |R|·|A|·|P|).
    """

    def __init__(self, A, R, P, symmetric: bool = False):
        A = sp.csr_matrix(A)
        P = sp.csr_matrix(P)
        R = sp.csr_matrix(R)
        for m in (A, P, R):
            if not m.has_sorted_indices:
                m.sort_indices()
        n, nc = A.shape[0], P.shape[1]
        if A.shape[1] != P.shape[0] or R.shape != (nc, n):
            raise ValueError("GalerkinPlan: shapes of R, A, P do not chain")
        a_ptr, a_idx = A.indptr.astype(np.int64), A.indices.astype(np.int64)
        # the patterns of A·P and R·(A·P), from all-positive values (nothing cancels)
        ap = _ones(A) @ _ones(P)
        ap_ptr, ap_idx = _sorted_pattern(ap)
        self.indptr, self.indices = _sorted_pattern(_ones(R) @ ap)
        self.symmetric = bool(symmetric) and abs(R - P.T.tocsr()).max() == 0
        pos1, src1, w1 = _products_ap(a_ptr, a_idx, P.indptr.astype(np.int64), P.indices.astype(np.int64),
                                      P.data.astype(np.float64), ap_ptr, ap_idx)
        pos2, src2, w2 = _products_rap(R.indptr.astype(np.int64), R.indices.astype(np.int64),
                                       R.data.astype(np.float64), ap_ptr, ap_idx, self.indptr, self.indices,
                                       self.symmetric)
        if pos1.size and pos1.min() < 0 or pos2.size and pos2.min() < 0:
            raise RuntimeError("GalerkinPlan: a product fell outside the coarse pattern")
        # the two passes as sparse matrices: each output value is a gathered sum (no scattered updates)
        self.first = sp.csr_matrix((w1, (pos1, src1)), shape=(ap_idx.shape[0], a_idx.shape[0]))
        self.second = sp.csr_matrix((w2, (pos2, src2)), shape=(self.indices.shape[0], ap_idx.shape[0]))
        # one pass instead of two when every entry of A·P lands in one place of R·(A·P) (then the composed
        # map has no more entries than the first pass): so with R an aggregation, as in the grid hierarchy's
        # ½TᵀAT, where every entry of A goes to one coarse entry
        # (3D 32³: 0.82 → 0.63 ms per update, ad hoc)
        if self.second.nnz and np.diff(self.second.tocsc().indptr).max() <= 1:  # each A·P entry lands once
            fused = (self.second @ self.first).tocsr()
            fused.sort_indices()
            self.first, self.second = fused, None
        self._ap = np.empty(ap_idx.shape[0] if self.second is not None else 0)
        self.dtype = np.dtype(np.float64)
        if self.symmetric:
            self.lower, self.mirror = _mirror(self.indptr, self.indices)
            if self.lower is None:
                raise RuntimeError("GalerkinPlan: the coarse pattern is not symmetric")

    def astype(self, dtype):
        """Compute in ``dtype`` from now on (float32: a third fewer bytes per product for a single-precision
        hierarchy)."""
        self.dtype = np.dtype(dtype)
        self.first.data = self.first.data.astype(dtype)
        if self.second is not None:
            self.second.data = self.second.data.astype(dtype)
        self._ap = self._ap.astype(dtype)
        return self

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    def apply(self, values, out=None):
        """Values of R·A·P (in the order of `indices`) for the matrix with ``A``'s pattern and ``values``."""
        values = np.asarray(values)
        if values.dtype != self.dtype:
            values = values.astype(self.dtype)
        if values.shape != (self.first.shape[1],):
            raise ValueError("GalerkinPlan.apply: values do not match the pattern of A")
        if out is None:
            out = np.empty(self.nnz, dtype=self.dtype)
        # into preallocated arrays: scipy's mat-vec allocated (and page-faulted) new ones every time
        if self.second is None:  # the fused single pass
            spmv_rows_serial(self.first.indptr, self.first.indices, self.first.data, values, out)
        else:
            spmv_rows_serial(self.first.indptr, self.first.indices, self.first.data, values, self._ap)
            spmv_rows_serial(self.second.indptr, self.second.indices, self.second.data, self._ap, out)
        if self.symmetric:
            out[self.lower] = out[self.mirror]
        return out


@nb.njit(cache=True, nogil=True)
def _find(idx, lo, hi, col):
    """Position of ``col`` in the sorted ``idx[lo:hi]``, or -1."""
    end = hi
    while lo < hi:
        mid = (lo + hi) // 2
        if idx[mid] < col:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < end and idx[lo] == col else -1


@nb.njit(cache=True, nogil=True)
def _products_ap(a_ptr, a_idx, p_ptr, p_idx, p_dat, ap_ptr, ap_idx):
    """The products A[i, j]·P[j, J] of A·P: for each, its place (i, J) in A·P, the index of A[i, j] in
    A's values and the weight P[j, J]."""
    n = a_ptr.shape[0] - 1
    count = 0
    for k in range(a_ptr[n]):
        j = a_idx[k]
        count += p_ptr[j + 1] - p_ptr[j]
    pos = np.empty(count, dtype=np.int64)
    src = np.empty(count, dtype=np.int64)
    weight = np.empty(count, dtype=np.float64)
    t = 0
    for i in range(n):
        for k in range(a_ptr[i], a_ptr[i + 1]):
            j = a_idx[k]
            for v in range(p_ptr[j], p_ptr[j + 1]):
                pos[t] = _find(ap_idx, ap_ptr[i], ap_ptr[i + 1], p_idx[v])
                src[t] = k
                weight[t] = p_dat[v]
                t += 1
    return pos, src, weight


@nb.njit(cache=True, nogil=True)
def _products_rap(r_ptr, r_idx, r_dat, ap_ptr, ap_idx, c_ptr, c_idx, upper):
    """The products R[I, i]·(A·P)[i, J] of R·(A·P) (only J ≥ I if ``upper``): for each, its place (I, J),
    the index of (A·P)[i, J] in A·P's values and the weight R[I, i]."""
    nc = r_ptr.shape[0] - 1
    count = 0
    for I in range(nc):
        for u in range(r_ptr[I], r_ptr[I + 1]):
            i = r_idx[u]
            for w in range(ap_ptr[i], ap_ptr[i + 1]):
                if not upper or ap_idx[w] >= I:
                    count += 1
    pos = np.empty(count, dtype=np.int64)
    src = np.empty(count, dtype=np.int64)
    weight = np.empty(count, dtype=np.float64)
    t = 0
    for I in range(nc):
        for u in range(r_ptr[I], r_ptr[I + 1]):
            i = r_idx[u]
            for w in range(ap_ptr[i], ap_ptr[i + 1]):
                if not upper or ap_idx[w] >= I:
                    pos[t] = _find(c_idx, c_ptr[I], c_ptr[I + 1], ap_idx[w])
                    src[t] = w
                    weight[t] = r_dat[u]
                    t += 1
    return pos, src, weight


def _mirror(indptr, indices):
    """``(lower, mirror)``: the strictly lower entries of a symmetric pattern and their transposed places,
    or ``(None, None)`` when the pattern is not symmetric."""
    n = indptr.shape[0] - 1
    m = sp.csr_matrix((np.arange(1, indices.shape[0] + 1, dtype=np.float64), indices, indptr), shape=(n, n))
    t = m.T.tocsr()
    t.sort_indices()
    if not (np.array_equal(t.indptr, indptr) and np.array_equal(t.indices, indices)):
        return None, None
    rows = np.repeat(np.arange(n), np.diff(indptr))
    lower = np.flatnonzero(indices < rows)
    return lower, t.data[lower].astype(np.int64) - 1


def _reciprocal_diagonals(datas, positions, dinv):
    """dinv ← 1 / (each level's diagonal, levels concatenated); False when one is not positive and finite."""
    start = 0
    for data, pos in zip(datas, positions):
        if not _reciprocal_at(data, pos, dinv[start:start + pos.shape[0]]):
            return False
        start += pos.shape[0]
    return True


@nb.njit(cache=True, nogil=True, error_model="numpy")  # 1/0 gives inf (refused by the caller), no exception
def _reciprocal_at(data, pos, out):
    ok = True
    for i in range(pos.shape[0]):
        d = data[pos[i]]
        ok = ok and d > 0 and d < np.inf
        out[i] = 1.0 / d
    return ok


def _pinv(c, symmetric):
    """Pseudo-inverse with scipy's default cutoff (the one the packed hierarchy used; scipy's own pinv costs
    0.5 ms at 4×4): from an eigendecomposition when ``c`` is symmetric (numpy's SVD-based pinv cost 0.25 ms
    per update at 8×8, eigh 0.03 ms)."""
    cutoff_rel = max(c.shape) * np.finfo(c.dtype).eps
    if not symmetric:
        return np.linalg.pinv(c, rcond=cutoff_rel)
    w, V = np.linalg.eigh(c)
    keep = np.abs(w) > cutoff_rel * np.abs(w).max(initial=0.0)
    return (V[:, keep] / w[keep]) @ V[:, keep].T


def _diagonal_positions(indptr, indices):
    """Index into ``data`` of each row's diagonal entry (-1 when it is structurally absent)."""
    n = indptr.shape[0] - 1
    rows = np.repeat(np.arange(n), np.diff(indptr))
    pos = np.full(n, -1, dtype=np.int64)
    hit = np.flatnonzero(indices == rows)
    pos[rows[hit]] = hit
    return pos


class FastGalerkin:
    """Keep ``amg``'s P and R; update its coarse operators for new matrices through `GalerkinPlan`\\ s.

    Parameters
    ----------
    amg : krylovlab.amg.AMG
        A hierarchy built on the first matrix of a sequence.  Its coarse
        levels are replaced at once by the pattern-exact Galerkin products.
    symmetric : bool
        The matrices are symmetric: levels whose R is Pᵀ compute only the
        upper triangle of each coarse operator.

    ``update(A)`` accepts any matrix with the sparsity pattern of the one the
    hierarchy was built on (`same_pattern`) and makes the hierarchy exactly
    what ``amg.update_operator(A, rebuild=False)`` would produce, up to
    rounding in the summation order.
    """

    def __init__(self, amg, symmetric: bool = False):
        self.amg = amg
        self.symmetric = bool(symmetric)
        lv = amg.ml.levels
        fine = amg._A.tocsr()
        if not fine.has_sorted_indices:
            fine = fine.sorted_indices()
        self.indptr, self.indices = fine.indptr.copy(), fine.indices.copy()
        lv[0].A = fine
        amg._A = fine
        self.plans = []
        current = fine
        for k, (Rc, Pc) in enumerate(amg.coarse_transfers):  # (R, P); (½Tᵀ, T) for a grid hierarchy
            plan = GalerkinPlan(current, Rc, Pc, symmetric=symmetric)
            coarse = sp.csr_matrix((plan.apply(current.data), plan.indices, plan.indptr), shape=(plan.indptr.shape[0] - 1,) * 2)
            coarse.has_sorted_indices = True
            lv[k + 1].A = coarse
            self.plans.append(plan)
            current = coarse
        amg._set_smoothers()
        amg._pack_levels()
        pk = amg._packed
        for plan in self.plans:
            plan.astype(pk.a_dat.dtype)  # the packed values' precision (float32 for a single-precision cycle)
        self.mats = amg._As  # the level matrices the packed arrays were made from
        for k, plan in enumerate(self.plans):
            if self.mats[k + 1].nnz != plan.nnz:
                raise RuntimeError("FastGalerkin: the packed hierarchy does not have the expected pattern")
        self.diag = [_diagonal_positions(m.indptr, m.indices) for m in self.mats]
        if any(bool(np.any(d < 0)) for d in self.diag):
            raise RuntimeError("FastGalerkin: a level has a structurally zero diagonal")
        self._bind_views()

    def _bind_views(self):
        """The coarse levels' values live in the packed array the V-cycle reads (the coarsest is not packed),
        and so does the finest level's copy the plans read."""
        pk = self.amg._packed
        for k in range(1, len(self.mats) - 1):
            off = int(pk.ao[k])
            self.mats[k].data = pk.a_dat[off:off + self.mats[k].nnz]
        self._fine = pk.a_dat[:self.mats[0].nnz]

    def __setstate__(self, state):
        """Unpickled (a copy of a hierarchy, see `krylovlab.datagen.strategies`): the views into the packed
        arrays became arrays of their own; point them at the packed arrays again."""
        self.__dict__.update(state)
        self._bind_views()

    def same_pattern(self, A) -> bool:
        return (A.shape[0] == self.indptr.shape[0] - 1 and A.nnz == self.indices.shape[0]
                and np.array_equal(A.indptr, self.indptr) and np.array_equal(A.indices, self.indices))

    def update(self, A, checked: bool = False) -> None:
        """Point the hierarchy at ``A`` (same pattern) with new coarse operators, smoother diagonals and coarse solve.
        ``checked``: the caller has just confirmed `same_pattern`."""
        if not checked and not self.same_pattern(A):
            raise ValueError("FastGalerkin.update: A does not have the pattern the hierarchy was built on")
        amg, pk = self.amg, self.amg._packed
        self._fine[:] = A.data
        values = self._fine
        for k, plan in enumerate(self.plans):
            values = plan.apply(values, out=self.mats[k + 1].data)
        if not _reciprocal_diagonals([A.data] + [m.data for m in self.mats[1:]], self.diag, pk.dinv):
            raise ArithmeticError("FastGalerkin.update: a level lost its positive diagonal")
        pk.refresh_fine(A)  # the finest level's diagonal storage and red–black scalings
        pk.refresh_coarse(self.mats)  # the same for coarse levels with red–black sweeps
        pk.cinv[:] = _pinv(self.mats[-1].toarray(), self.symmetric).ravel()
        amg.ml.levels[0].A = A
        self.mats[0] = A
        amg._A = A
        if hasattr(amg.ml, "coarse_solver") and hasattr(amg.ml.coarse_solver, "__dict__"):
            from pyamg.multilevel import coarse_grid_solver

            amg.ml.coarse_solver = coarse_grid_solver("pinv")
