"""One implicit time step of the heat equation u_t = ∇·(κ∇u), u = 0 on the boundary.

θ-scheme in time (θ = 1 implicit Euler, θ = ½ Crank–Nicolson) with the
conservative finite-difference diffusion operator K(κ) in space:

    (I + θ·dt·K) uⁿ⁺¹ = (I − (1 − θ)·dt·K) uⁿ

A sample draws a diffusivity field κ = κ₀·exp(g) (g a GRF) and a previous
state uⁿ (a smooth GRF); the system is symmetric positive definite.
`time_sequence` produces the systems of a whole run with a diffusivity that
varies in time, the sequence a time-stepping code solves.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._base import ProblemFamily
from ._fd import diffusion
from ._grf import gaussian_random_field, low_frequency_features


class Heat(ProblemFamily):
    """Heat-equation time steps with a random diffusivity.

    Parameters
    ----------
    scheme : {"crank-nicolson", "euler"}
    dt : float
        Time step.
    kappa0 : float
        Mean diffusivity scale.
    """

    name = "heat"

    def __init__(self, grid=64, *, dim=None, scheme="crank-nicolson", dt=1e-3, kappa0=1.0, alpha=2.5, tau=7.0):
        super().__init__(grid, dim=dim)
        if scheme not in ("crank-nicolson", "euler"):
            raise ValueError(f"scheme must be 'crank-nicolson' or 'euler', got {scheme!r}")
        if not dt > 0 or not kappa0 > 0:
            raise ValueError("dt and kappa0 must be positive")
        self.scheme, self.dt, self.kappa0 = scheme, float(dt), float(kappa0)
        self.alpha, self.tau = float(alpha), float(tau)

    @property
    def theta(self) -> float:
        return 0.5 if self.scheme == "crank-nicolson" else 1.0

    def _grf(self, rng):
        return gaussian_random_field(self.node_shape(), rng, alpha=self.alpha, tau=self.tau)

    def sample(self, rng):
        rng = np.random.default_rng(rng)
        kappa = self.kappa0 * np.exp(self._grf(rng))
        u_prev = self._grf(rng)[tuple(slice(1, -1) for _ in self.grid)].copy()
        return {"kappa": kappa, "u_prev": u_prev}

    def _matrices(self, kappa):
        """K(κ) and A = I + θ·dt·K."""
        K = diffusion(kappa)
        A = (sp.identity(K.shape[0], format="csr") + self.theta * self.dt * K).tocsr()
        A.sort_indices()
        return A, K

    def _rhs(self, K, u_prev):
        """b = (I − (1 − θ)·dt·K) uⁿ."""
        u = np.asarray(u_prev, dtype=float).ravel()
        return u - (1 - self.theta) * self.dt * (K @ u) if self.theta < 1 else u.copy()

    def step_system(self, kappa, u_prev):
        """(A, b) of one θ-step from ``u_prev`` with node diffusivity ``kappa``."""
        A, K = self._matrices(kappa)
        return A, self._rhs(K, u_prev)

    def assemble(self, params):
        return self.step_system(params["kappa"], params["u_prev"])

    def features(self, params):
        return low_frequency_features(np.log(params["kappa"]))

    def time_sequence(self, params, nsteps: int, *, variation: float = 0.5, period: float | None = None):
        """Yield ``(A_k, b_fn)`` for ``nsteps`` steps with κ(t) = κ·(1 + variation·sin(2πt/period)).

        ``b_fn(u)`` builds the right-hand side from the current state, so a
        caller can step ``u ← solve(A_k, b_fn(u))``.
        """
        period = period or nsteps * self.dt
        for k in range(int(nsteps)):
            t = (k + 0.5) * self.dt
            kappa = params["kappa"] * (1.0 + variation * np.sin(2 * np.pi * t / period))
            A, K = self._matrices(kappa)
            yield A, (lambda u, K=K: self._rhs(K, u))

    def config(self):
        return {"family": self.name, "grid": list(self.grid), "scheme": self.scheme, "dt": self.dt,
                "kappa0": self.kappa0, "alpha": self.alpha, "tau": self.tau}
