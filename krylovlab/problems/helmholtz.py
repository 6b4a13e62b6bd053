"""Helmholtz −Δu − k²u = f on the unit square/cube.

5-point/7-point finite differences (`_fd.laplacian`) minus k²I.  With zero
Dirichlet boundary (``boundary="dirichlet"``) A is real symmetric and, once
k² exceeds the smallest Laplacian eigenvalue (dπ² in d dimensions), genuinely
indefinite.  With ``boundary="absorbing"`` a first-order absorbing
(impedance) condition ∂u/∂n = i·k·u replaces the Dirichlet one: eliminating
the ghost node u_g = u_b / (1 − i·k·h) adds −1/((1 − i·k·h)·h²) to the
diagonal of every unknown next to the boundary, per boundary face, giving a
complex symmetric (non-Hermitian) matrix.

A sample draws a wavenumber k uniformly in ``k_range`` and a Gaussian point
source at a random interior location.  Keep k·h ≲ 0.6 for accuracy.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._base import ProblemFamily
from ._fd import interior_coordinates, laplacian


class Helmholtz(ProblemFamily):
    """Indefinite Helmholtz problems with a random wavenumber and source position.

    Examples
    --------
    >>> from krylovlab.problems import Helmholtz
    >>> fam = Helmholtz(grid=16, k_range=(8.0, 10.0))
    >>> A, b = fam.assemble(fam.sample(0))
    >>> A.dtype.kind, fam.definite
    ('f', False)
    """

    name = "helmholtz"
    definite = False

    def __init__(self, grid=64, *, dim=None, k_range=(10.0, 20.0), boundary="dirichlet", width=0.05):
        super().__init__(grid, dim=dim)
        lo, hi = (float(k) for k in k_range)
        if not 0 < lo <= hi:
            raise ValueError("k_range must be (lo, hi) with 0 < lo <= hi")
        if boundary not in ("dirichlet", "absorbing"):
            raise ValueError(f"boundary must be 'dirichlet' or 'absorbing', got {boundary!r}")
        self.k_range, self.boundary, self.width = (lo, hi), boundary, float(width)
        self._lap = laplacian(self.grid)

    def sample(self, rng):
        rng = np.random.default_rng(rng)
        k = rng.uniform(*self.k_range)
        center = rng.uniform(0.25, 0.75, size=self.dim)
        return {"k": np.float64(k), "center": center}

    def assemble(self, params):
        k = float(params["k"])
        A = (self._lap - k * k * sp.identity(self.n, format="csr")).tocsr()
        if self.boundary == "absorbing":
            A = A.astype(np.complex128)
            A = A + sp.diags(self._impedance_diagonal(k), format="csr")
        A.sort_indices()
        coords = interior_coordinates(self.grid)
        r2 = sum((c - x0) ** 2 for c, x0 in zip(coords, params["center"]))
        f = np.exp(-r2 / (2 * self.width**2)).ravel()
        return A.tocsr(), f.astype(A.dtype)

    def _impedance_diagonal(self, k):
        diag = np.zeros(self.grid, dtype=np.complex128)
        for axis, n in enumerate(self.grid):
            h = 1.0 / (n + 1)
            ghost = 1.0 / (1.0 - 1j * k * h)  # u_ghost = ghost · u_boundary-adjacent
            for layer in (0, n - 1):
                idx = [slice(None)] * self.dim
                idx[axis] = layer
                diag[tuple(idx)] += -ghost / h**2
        return diag.ravel()

    def features(self, params):
        return np.concatenate([[float(params["k"])], np.asarray(params["center"], dtype=float)])

    def config(self):
        return {"family": self.name, "grid": list(self.grid), "k_range": list(self.k_range),
                "boundary": self.boundary, "width": self.width}
