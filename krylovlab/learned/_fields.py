"""Coefficient fields and variable-coefficient diffusion matrices on grids.

Used to train, test and benchmark DCDM.  The discretisation is the standard
cell-centred 5-point (7-point in 3D) finite-volume one for ``−∇·(a∇u) = f``
with zero Dirichlet boundary, multiplied through by h² (so ``a ≡ 1`` gives
exactly ``krylovlab.gallery.poisson``).  Face coefficients are harmonic means
of the two neighbouring cells; a boundary face takes its cell's value.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["gaussian_random_field", "lognormal_field", "layered_field", "face_coefficients",
           "diffusion_matrix", "diffusion_apply"]


def gaussian_random_field(grid, *, length=0.1, smoothness=2.0, rng=None) -> np.ndarray:
    """A zero-mean, unit-variance stationary Gaussian field on ``grid`` (FFT filtering of white noise).

    The spectrum is ``(|k|² + (1/length)²)^(−smoothness)`` on the unit box.
    """
    rng = np.random.default_rng(rng)
    grid = tuple(int(g) for g in grid)
    noise = rng.standard_normal(grid)
    ks = np.meshgrid(*[np.fft.fftfreq(g, d=1.0 / g) * 2 * np.pi for g in grid], indexing="ij")
    k2 = sum(k**2 for k in ks)
    spec = (k2 + (1.0 / length) ** 2) ** (-smoothness / 2)
    field = np.real(np.fft.ifftn(np.fft.fftn(noise) * spec))
    field -= field.mean()
    sd = field.std()
    return field / sd if sd > 0 else field


def lognormal_field(grid, *, sigma=1.0, length=0.1, rng=None) -> np.ndarray:
    """Darcy permeability ``a = exp(σ·g)`` with g a `gaussian_random_field`."""
    return np.exp(sigma * gaussian_random_field(grid, length=length, rng=rng))


def layered_field(grid, *, contrast=100.0, layers=6, rng=None) -> np.ndarray:
    """Piecewise-constant horizontal layers with values in [1, contrast] (a field unlike the training ones)."""
    rng = np.random.default_rng(rng)
    grid = tuple(int(g) for g in grid)
    cuts = np.sort(rng.integers(0, grid[0], size=layers - 1))
    values = np.exp(rng.uniform(0.0, np.log(contrast), size=layers))
    rows = np.searchsorted(cuts, np.arange(grid[0]), side="right")
    shape = (grid[0],) + (1,) * (len(grid) - 1)
    return np.broadcast_to(values[rows].reshape(shape), grid).copy()


def face_coefficients(a: np.ndarray) -> list[np.ndarray]:
    """Face coefficients per axis: array ``d`` has the shape of ``a`` with ``+1`` on axis d."""
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError("diffusion coefficient must be finite and positive")
    faces = []
    for d in range(a.ndim):
        lo = np.take(a, range(a.shape[d] - 1), axis=d)
        hi = np.take(a, range(1, a.shape[d]), axis=d)
        inner = 2.0 * lo * hi / (lo + hi)
        first = np.take(a, [0], axis=d)
        last = np.take(a, [a.shape[d] - 1], axis=d)
        faces.append(np.concatenate([first, inner, last], axis=d))
    return faces


def diffusion_matrix(a: np.ndarray, dtype=np.float64) -> sp.csr_matrix:
    """CSR matrix of ``−∇·(a∇u)`` (h²-scaled, Dirichlet) for the cell field ``a`` (C-order unknowns)."""
    a = np.asarray(a, dtype=np.float64)
    grid = a.shape
    n = a.size
    idx = np.arange(n).reshape(grid)
    faces = face_coefficients(a)
    diag = np.zeros(grid)
    rows, cols, vals = [], [], []
    for d, f in enumerate(faces):
        m = grid[d]
        diag += np.take(f, range(m), axis=d) + np.take(f, range(1, m + 1), axis=d)
        inner = np.take(f, range(1, m), axis=d)
        lo = np.take(idx, range(m - 1), axis=d).ravel()
        hi = np.take(idx, range(1, m), axis=d).ravel()
        rows += [lo, hi]
        cols += [hi, lo]
        vals += [-inner.ravel(), -inner.ravel()]
    rows.append(idx.ravel())
    cols.append(idx.ravel())
    vals.append(diag.ravel())
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n), dtype=dtype)
    A.sum_duplicates()
    A.sort_indices()
    A.indices = A.indices.astype(np.int32)
    A.indptr = A.indptr.astype(np.int32)
    return A


def diffusion_apply(faces, q, xp=np):
    """``A q`` for a batch of fields: ``q`` has shape (batch, *grid), faces[d] (batch, *grid+e_d).

    Works with numpy or torch (``xp=torch``); used by the training loss.
    """
    out = None
    dim = len(faces)
    for d, f in enumerate(faces):
        ax = d + 1
        m = q.shape[ax]
        shape = list(q.shape)
        shape[ax] = 1
        zero = xp.zeros(shape, dtype=q.dtype) if xp is np else xp.zeros(shape, dtype=q.dtype, device=q.device)
        padded = xp.concatenate([zero, q, zero], axis=ax) if xp is np else xp.cat([zero, q, zero], dim=ax)
        diff = _narrow(xp, padded, ax, 1, m + 2) - _narrow(xp, padded, ax, 0, m + 1)  # q[i] − q[i−1] on faces
        flux = f * diff
        term = _narrow(xp, flux, ax, 0, m) - _narrow(xp, flux, ax, 1, m + 1)  # −(flux[i+1] − flux[i])
        out = term if out is None else out + term
    assert dim >= 1
    return out


def _narrow(xp, a, axis, start, stop):
    sl = [slice(None)] * a.ndim
    sl[axis] = slice(start, stop)
    return a[tuple(sl)]
