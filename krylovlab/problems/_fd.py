"""Finite-difference assembly on uniform grids of the unit square/cube.

Unknowns are the interior nodes of an (n₁+2) × … grid with spacing
h_d = 1/(n_d + 1); boundary nodes carry the boundary condition.  Interior
unknowns are numbered in C order (last axis fastest).
"""

from __future__ import annotations

import functools

import numba as nb
import numpy as np
import scipy.sparse as sp


def interior_coordinates(shape) -> list[np.ndarray]:
    """Coordinates of the interior nodes, one array of ``shape`` per axis."""
    axes = [np.arange(1, n + 1) / (n + 1) for n in shape]
    return list(np.meshgrid(*axes, indexing="ij"))


def node_coordinates(shape) -> list[np.ndarray]:
    """Coordinates of all nodes (boundary included), arrays of shape ``n_d + 2``."""
    axes = [np.arange(n + 2) / (n + 1) for n in shape]
    return list(np.meshgrid(*axes, indexing="ij"))


def _slice(dim, axis, sl):
    out = [slice(1, -1)] * dim
    out[axis] = sl
    return tuple(out)


@functools.lru_cache(maxsize=16)
def _stencil_pattern(shape):
    """CSR pattern of the (2·dim+1)-point stencil on the interior grid ``shape`` (cached per shape).

    Returns ``(take, indices, indptr)``: ``take`` selects, from the row-major
    ``(N, 2·dim+1)`` table of stencil values (slots ordered by column:
    −e₀ … −e_{d−1}, centre, +e_{d−1} … +e₀), the entries that exist, so the
    CSR arrays come out sorted without a COO→CSR conversion.
    """
    dim = len(shape)
    N = int(np.prod(shape))
    strides = [int(np.prod(shape[axis + 1:])) for axis in range(dim)]
    pos = np.indices(shape).reshape(dim, N)
    slots = [(axis, -1) for axis in range(dim)] + [(None, 0)] + [(axis, 1) for axis in reversed(range(dim))]
    exists = np.ones((N, len(slots)), dtype=bool)
    cols = np.empty((N, len(slots)), dtype=np.int64)
    rows = np.arange(N)
    for s, (axis, sign) in enumerate(slots):
        if axis is None:
            cols[:, s] = rows
            continue
        cols[:, s] = rows + sign * strides[axis]
        exists[:, s] = pos[axis] > 0 if sign < 0 else pos[axis] < shape[axis] - 1
    take = np.flatnonzero(exists.ravel())
    itype = np.int32 if N * len(slots) < 2**31 else np.int64
    indices = cols.ravel()[take].astype(itype)
    indptr = np.zeros(N + 1, dtype=itype)
    np.cumsum(exists.sum(axis=1), out=indptr[1:])
    for arr in (take, indices, indptr):
        arr.setflags(write=False)
    return take, indices, indptr


def diffusion(a_nodes: np.ndarray) -> sp.csr_matrix:
    """Conservative discretisation of −∇·(a∇u) with zero Dirichlet boundary.

    ``a_nodes`` holds the positive coefficient at every node, boundary
    included (shape ``n_d + 2`` per axis).  The flux through the face between
    two neighbouring nodes uses the harmonic mean of their coefficients,
    which keeps the scheme conservative and second-order accurate for smooth
    ``a`` and robust for jumps.  The matrix is symmetric positive definite.

    The CSR arrays are written directly in sorted order from a cached
    pattern (no COO→CSR sort); every sample of one grid has the same
    ``indptr``/``indices`` (copies, so a caller may modify them).
    """
    a = np.asarray(a_nodes, dtype=np.float64)
    dim = a.ndim
    if not np.isfinite(a).all() or not (a > 0).all():
        raise ValueError("diffusion: the coefficient must be finite and positive")
    shape = tuple(s - 2 for s in a.shape)
    if min(shape) < 1:
        raise ValueError("diffusion: need at least one interior node per axis")
    N = int(np.prod(shape))
    _, indices, indptr = _stencil_pattern(shape)
    data = np.empty(indices.shape[0])
    h2 = np.array([(1.0 / (n + 1)) ** 2 for n in shape])
    (_fill_2d if dim == 2 else _fill_3d)(a, h2, data)
    A = sp.csr_matrix((data, indices.copy(), indptr.copy()), shape=(N, N))
    A.has_canonical_format = True  # sorted, no duplicates by construction (scipy's check: 0.2 ms at 32³)
    return A


# The fill kernels write each row's entries in column order (−e₀ … centre … +e₀), skipping
# neighbours outside the interior; the diagonal is summed axis by axis from the last axis, and
# each face uses 2·lo·hi/(lo + hi)/h², so the values match a plain numpy evaluation bit for bit.
@nb.njit(cache=True, nogil=True)
def _hm(lo, hi, h2):
    return 2.0 * lo * hi / (lo + hi) / h2


@nb.njit(cache=True, nogil=True)
def _fill_2d(a, h2, data):
    n0, n1 = a.shape[0] - 2, a.shape[1] - 2
    k = 0
    for i in range(1, n0 + 1):
        for j in range(1, n1 + 1):
            c = a[i, j]
            m0, p0 = _hm(a[i - 1, j], c, h2[0]), _hm(c, a[i + 1, j], h2[0])
            m1, p1 = _hm(a[i, j - 1], c, h2[1]), _hm(c, a[i, j + 1], h2[1])
            if i > 1:
                data[k] = -m0
                k += 1
            if j > 1:
                data[k] = -m1
                k += 1
            data[k] = (0.0 + (m1 + p1)) + (m0 + p0)
            k += 1
            if j < n1:
                data[k] = -p1
                k += 1
            if i < n0:
                data[k] = -p0
                k += 1


@nb.njit(cache=True, nogil=True)
def _fill_3d(a, h2, data):
    n0, n1, n2 = a.shape[0] - 2, a.shape[1] - 2, a.shape[2] - 2
    k = 0
    for i in range(1, n0 + 1):
        for j in range(1, n1 + 1):
            for l in range(1, n2 + 1):
                c = a[i, j, l]
                m0, p0 = _hm(a[i - 1, j, l], c, h2[0]), _hm(c, a[i + 1, j, l], h2[0])
                m1, p1 = _hm(a[i, j - 1, l], c, h2[1]), _hm(c, a[i, j + 1, l], h2[1])
                m2, p2 = _hm(a[i, j, l - 1], c, h2[2]), _hm(c, a[i, j, l + 1], h2[2])
                if i > 1:
                    data[k] = -m0
                    k += 1
                if j > 1:
                    data[k] = -m1
                    k += 1
                if l > 1:
                    data[k] = -m2
                    k += 1
                data[k] = ((0.0 + (m2 + p2)) + (m1 + p1)) + (m0 + p0)
                k += 1
                if l < n2:
                    data[k] = -p2
                    k += 1
                if j < n1:
                    data[k] = -p1
                    k += 1
                if i < n0:
                    data[k] = -p0
                    k += 1


def _along(arr, axis, start, stop):
    idx = [slice(None)] * arr.ndim
    idx[axis] = slice(start, stop)
    return arr[tuple(idx)]


def laplacian(shape) -> sp.csr_matrix:
    """−Δ with zero Dirichlet boundary, scaled by 1/h² (a ≡ 1)."""
    return diffusion(np.ones(tuple(n + 2 for n in shape)))
