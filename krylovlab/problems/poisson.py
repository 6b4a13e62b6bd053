"""Poisson −Δu = f with random sources, u = 0 on the boundary.

5-point/7-point finite differences on a uniform grid (`_fd.laplacian`);
the matrix is the same for every sample (only b changes), the classic
multiple-right-hand-side case.  Sources are Gaussian random fields.
"""

from __future__ import annotations

import functools

import numpy as np

from ._base import ProblemFamily
from ._fd import laplacian
from ._grf import gaussian_random_field, low_frequency_features


class Poisson(ProblemFamily):
    """Poisson equation with a GRF source (fixed matrix).

    Examples
    --------
    >>> from krylovlab.problems import Poisson
    >>> fam = Poisson(grid=8)
    >>> A, b = fam.assemble(fam.sample(1))
    >>> A.shape, b.shape
    ((64, 64), (64,))
    """

    name = "poisson"
    matrix_varies = False

    def __init__(self, grid=64, *, dim=None, alpha=2.5, tau=7.0):
        super().__init__(grid, dim=dim)
        self.alpha, self.tau = float(alpha), float(tau)

    @functools.cached_property
    def _matrix(self):
        return laplacian(self.grid)

    def sample(self, rng):
        g = gaussian_random_field(self.node_shape(), rng, alpha=self.alpha, tau=self.tau)
        return {"f": g[tuple(slice(1, -1) for _ in self.grid)].copy()}

    def assemble(self, params):
        return self._matrix, params["f"].ravel().copy()

    def features(self, params):
        return low_frequency_features(params["f"])

    def config(self):
        return {"family": self.name, "grid": list(self.grid), "alpha": self.alpha, "tau": self.tau}
