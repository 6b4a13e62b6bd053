"""Finite-difference assembly on uniform grids of the unit square/cube.

Unknowns are the interior nodes of an (n₁+2) × … grid with spacing
h_d = 1/(n_d + 1); boundary nodes carry the boundary condition.  Interior
unknowns are numbered in C order (last axis fastest).
"""

from __future__ import annotations

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


def diffusion(a_nodes: np.ndarray) -> sp.csr_matrix:
    """Conservative discretisation of −∇·(a∇u) with zero Dirichlet boundary.

    ``a_nodes`` holds the positive coefficient at every node, boundary
    included (shape ``n_d + 2`` per axis).  The flux through the face between
    two neighbouring nodes uses the harmonic mean of their coefficients,
    which keeps the scheme conservative and second-order accurate for smooth
    ``a`` and robust for jumps.  The matrix is symmetric positive definite.
    """
    a = np.asarray(a_nodes, dtype=np.float64)
    dim = a.ndim
    if not bool(np.all(a > 0)) or not np.all(np.isfinite(a)):
        raise ValueError("diffusion: the coefficient must be finite and positive")
    shape = tuple(s - 2 for s in a.shape)
    if min(shape) < 1:
        raise ValueError("diffusion: need at least one interior node per axis")
    N = int(np.prod(shape))
    diag = np.zeros(shape)
    offsets, bands = [], []
    stride = 1
    for axis in reversed(range(dim)):
        h2 = (1.0 / (shape[axis] + 1)) ** 2
        lo = a[_slice(dim, axis, slice(0, -1))]
        hi = a[_slice(dim, axis, slice(1, None))]
        face = 2.0 * lo * hi / (lo + hi) / h2  # harmonic mean, one per face along `axis`
        n = shape[axis]
        c_minus = np.take(face, np.arange(0, n), axis=axis)
        c_plus = np.take(face, np.arange(1, n + 1), axis=axis)
        diag += c_minus + c_plus
        # coupling of node p to p + e_axis (absent on the last interior layer)
        upper = -c_plus.copy()
        idx = [slice(None)] * dim
        idx[axis] = n - 1
        upper[tuple(idx)] = 0.0
        band = upper.ravel()[: N - stride]
        offsets += [stride, -stride]
        bands += [band, band]
        stride *= n
    A = sp.diags([diag.ravel(), *bands], [0, *offsets], shape=(N, N), format="csr")
    A.eliminate_zeros()
    A.sort_indices()
    return A


def laplacian(shape) -> sp.csr_matrix:
    """−Δ with zero Dirichlet boundary, scaled by 1/h² (a ≡ 1)."""
    return diffusion(np.ones(tuple(n + 2 for n in shape)))
