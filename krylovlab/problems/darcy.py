"""Darcy flow −∇·(a∇u) = f on the unit square/cube, u = 0 on the boundary.

Discretisation: conservative 5-point (2D) / 7-point (3D) finite differences
on the interior nodes of a uniform grid, face coefficients the harmonic mean
of the two node values (`krylovlab.problems._fd.diffusion`); second-order
accurate for smooth a; A is symmetric positive definite.

Coefficient (FNO convention): a = exp(g) with g a Gaussian random field
(α = 2.5, τ = 7), or the two-phase field a = 12 where g ≥ 0 and 3 elsewhere
(``field="two-phase"``).  Right-hand side f ≡ 1.
"""

from __future__ import annotations

import numpy as np

from ._base import ProblemFamily
from ._fd import diffusion
from ._grf import gaussian_random_field, low_frequency_features


class Darcy(ProblemFamily):
    """Darcy flow with a random log-normal or two-phase permeability.

    Parameters
    ----------
    grid : int or tuple
        Interior points per axis (an int with ``dim``).
    dim : {2, 3}
    field : {"lognormal", "two-phase"}
    alpha, tau : float
        GRF smoothness and inverse correlation length.
    f : float
        Constant source.

    Examples
    --------
    >>> from krylovlab.problems import Darcy
    >>> fam = Darcy(grid=16)
    >>> A, b = fam.assemble(fam.sample(0))
    >>> A.shape, bool(abs(A - A.T).max() == 0)
    ((256, 256), True)
    """

    name = "darcy"

    def __init__(self, grid=64, *, dim=None, field="lognormal", alpha=2.5, tau=7.0, f=1.0):
        super().__init__(grid, dim=dim)
        if field not in ("lognormal", "two-phase"):
            raise ValueError(f"field must be 'lognormal' or 'two-phase', got {field!r}")
        self.field, self.alpha, self.tau, self.f = field, float(alpha), float(tau), float(f)

    def coefficient(self, g: np.ndarray) -> np.ndarray:
        return np.exp(g) if self.field == "lognormal" else np.where(g >= 0, 12.0, 3.0)

    def sample(self, rng):
        g = gaussian_random_field(self.node_shape(), rng, alpha=self.alpha, tau=self.tau)
        return {"a": self.coefficient(g)}

    def assemble(self, params):
        A = diffusion(params["a"])
        return A, np.full(A.shape[0], self.f)

    def features(self, params):
        return low_frequency_features(np.log(params["a"]))

    def config(self):
        return {"family": self.name, "grid": list(self.grid), "field": self.field,
                "alpha": self.alpha, "tau": self.tau, "f": self.f}
