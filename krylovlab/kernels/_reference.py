"""Slow, obviously correct numpy versions of every kernel.

CPU and GPU kernels are tested against these.  They take the same arguments
and update outputs in place the same way.
"""

from __future__ import annotations

import numpy as np


def spmv(indptr, indices, data, x, y):
    """y ← A x."""
    for i in range(len(indptr) - 1):
        sl = slice(indptr[i], indptr[i + 1])
        y[i] = np.sum(data[sl] * x[indices[sl]])


def spmv_dot(indptr, indices, data, x, y):
    """y ← A x; return xᴴ y."""
    spmv(indptr, indices, data, x, y)
    return np.vdot(x, y)


def dot(x, y):
    """xᴴ y."""
    return np.vdot(x, y)


def norm2(x):
    return float(np.sqrt(np.sum(np.abs(x) ** 2)))


def axpby(a, x, b, y):
    """y ← a x + b y."""
    y[...] = a * x + b * y


def cg_update(alpha, p, q, x, r):
    """x ← x + α p; r ← r − α q; return ‖r‖²."""
    x += alpha * p
    r -= alpha * q
    return float(np.sum(np.abs(r) ** 2))


def jacobi(inv_diag, r, z):
    """z ← D⁻¹ r; return rᴴ z."""
    z[...] = inv_diag * r
    return np.vdot(r, z)


def sor_sweep(indptr, indices, data, x, b, omega, start, stop, step):
    """One SOR sweep over rows range(start, stop, step), x updated in place."""
    for i in range(start, stop, step):
        cols = indices[indptr[i]:indptr[i + 1]]
        vals = data[indptr[i]:indptr[i + 1]]
        diag = vals[cols == i].sum()
        off = np.sum(vals[cols != i] * x[cols[cols != i]])
        x[i] = (1 - omega) * x[i] + omega * (b[i] - off) / diag
