"""Finite-difference matrices on uniform grids."""

from __future__ import annotations

import numpy as np
import pyamg.gallery
import scipy.sparse as sp


def _csr(a, dtype):
    a = sp.csr_matrix(a, dtype=dtype)
    a.sum_duplicates()
    a.sort_indices()
    return a


def poisson(shape, dtype=np.float64) -> sp.csr_matrix:
    """Negative Laplacian, (2d+1)-point stencil, Dirichlet boundary, unscaled.

    Parameters
    ----------
    shape : int or tuple of ints
        Grid points per dimension: ``(n,)``, ``(nx, ny)`` or ``(nx, ny, nz)``.
    dtype : float dtype

    Examples
    --------
    >>> from krylovlab.gallery import poisson
    >>> poisson((3,)).toarray()
    array([[ 2., -1.,  0.],
           [-1.,  2., -1.],
           [ 0., -1.,  2.]])
    """
    if np.isscalar(shape):
        shape = (int(shape),)
    shape = tuple(int(s) for s in shape)
    if not 1 <= len(shape) <= 3 or min(shape) < 1:
        raise ValueError(f"poisson: shape must have 1 to 3 positive sizes, got {shape}")
    return _csr(pyamg.gallery.poisson(shape, format="csr"), dtype)


def convection_diffusion(shape, *, eps=0.01, velocity=(1.0, 0.5), dtype=np.float64) -> sp.csr_matrix:
    """Upwind finite differences for ``−ε Δu + v·∇u`` on the unit square/cube.

    Dirichlet boundary, mesh width h = 1/(n+1); first-order upwind
    convection, so the matrix is a nonsingular M-matrix (nonsymmetric).

    Parameters
    ----------
    shape : tuple of ints
        ``(nx, ny)`` or ``(nx, ny, nz)`` interior points.
    eps : float
        Diffusion coefficient.
    velocity : tuple of floats
        Constant velocity, one component per dimension.
    """
    shape = tuple(int(s) for s in (shape if not np.isscalar(shape) else (shape, shape)))
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"convection_diffusion: shape must be 2-D or 3-D, got {shape}")
    if len(velocity) != len(shape):
        raise ValueError("convection_diffusion: velocity needs one component per dimension")
    if not eps > 0:
        raise ValueError("convection_diffusion: eps must be positive")
    mats = []
    for n, v in zip(shape, velocity):
        h = 1.0 / (n + 1)
        e = np.ones(n)
        diff = sp.diags([-e[1:], 2 * e, -e[1:]], [-1, 0, 1]) * (eps / h**2)
        if v >= 0:
            conv = sp.diags([-e[1:], e], [-1, 0]) * (v / h)
        else:
            conv = sp.diags([-e[1:], e], [1, 0]) * (-v / h)
        mats.append((diff + conv).tocsr())
    eyes = [sp.identity(n, format="csr") for n in shape]
    total = None
    for d in range(len(shape)):
        factors = [mats[d] if k == d else eyes[k] for k in range(len(shape))]
        term = factors[0]
        for f in factors[1:]:
            term = sp.kron(term, f, format="csr")
        total = term if total is None else total + term
    return _csr(total, dtype)
