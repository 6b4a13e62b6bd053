"""Convection–diffusion −εΔu + v·∇u = f on the unit square/cube, u = 0 on the boundary.

Central differences for diffusion, first-order upwind for convection
(`krylovlab.gallery.convection_diffusion`), so every A is a nonsingular,
nonsymmetric M-matrix.  A sample draws a constant velocity (random
direction, magnitude uniform in ``speed``) and a GRF source.
"""

from __future__ import annotations

import numpy as np

from ..gallery import convection_diffusion
from ._base import ProblemFamily
from ._grf import gaussian_random_field


class ConvectionDiffusion(ProblemFamily):
    """Convection–diffusion with a random velocity and source.

    Parameters
    ----------
    eps : float
        Diffusion coefficient.
    speed : (float, float)
        Range of the velocity magnitude.
    """

    name = "convdiff"
    symmetric = False
    definite = False

    def __init__(self, grid=64, *, dim=None, eps=0.01, speed=(0.5, 1.5), alpha=2.5, tau=7.0):
        super().__init__(grid, dim=dim)
        if not eps > 0:
            raise ValueError("eps must be positive")
        lo, hi = (float(s) for s in speed)
        if not 0 <= lo <= hi:
            raise ValueError("speed must be a range (lo, hi) with 0 <= lo <= hi")
        self.eps, self.speed, self.alpha, self.tau = float(eps), (lo, hi), float(alpha), float(tau)

    def sample(self, rng):
        rng = np.random.default_rng(rng)
        direction = rng.standard_normal(self.dim)
        direction /= np.linalg.norm(direction)
        velocity = direction * rng.uniform(*self.speed)
        g = gaussian_random_field(self.node_shape(), rng, alpha=self.alpha, tau=self.tau)
        return {"velocity": velocity, "f": g[tuple(slice(1, -1) for _ in self.grid)].copy()}

    def assemble(self, params):
        A = convection_diffusion(self.grid, eps=self.eps, velocity=tuple(params["velocity"]))
        return A, params["f"].ravel().copy()

    def features(self, params):
        return np.asarray(params["velocity"], dtype=float)

    def config(self):
        return {"family": self.name, "grid": list(self.grid), "eps": self.eps, "speed": list(self.speed),
                "alpha": self.alpha, "tau": self.tau}
