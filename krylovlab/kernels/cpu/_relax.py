"""Relaxation sweeps on raw CSR arrays (numba), pyamg-style row ranges.

``sor_sweep(indptr, indices, data, x, b, omega, start, stop, step)`` visits
rows ``range(start, stop, step)`` and, for each row i, sets

    x_i ← (1 − ω) x_i + ω (b_i − Σ_{j≠i} a_ij x_j) / a_ii

in place, using already-updated entries (Gauss–Seidel ordering).  A forward
sweep is ``(0, n, 1)``, a backward sweep ``(n−1, −1, −1)``.  ω = 1 is
Gauss–Seidel.  The diagonal must be nonzero (callers check once).
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def sor_sweep(indptr, indices, data, x, b, omega, start, stop, step):
    """One SOR sweep over rows range(start, stop, step), x updated in place."""
    for i in range(start, stop, step):
        diag = data.dtype.type(0)
        acc = b.dtype.type(0) * x.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            j = np.uint64(indices[k])
            if j == i:
                diag += data[k]
            else:
                acc += data[k] * x[j]
        x[i] = (1 - omega) * x[i] + omega * (b[i] - acc) / diag
