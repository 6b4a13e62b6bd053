"""Darcy test sequences for the recycling benchmark and its docs figure.

A thin layer over `krylovlab.problems.Darcy` (−∇·(a∇u) = 1, a = exp(GRF) with
α = 2.5, τ = 7, conservative 5-point finite differences with harmonic-mean
faces, SPD), so the benchmark solves exactly the systems `krylovlab datagen`
produces.
"""

from __future__ import annotations

import numpy as np

from krylovlab.problems import Darcy, gaussian_random_field


def grf(size, rng, alpha=2.5, tau=7.0):
    """One FNO-style Gaussian random field on a size × size grid."""
    return gaussian_random_field((size, size), rng, alpha=alpha, tau=tau)


def darcy_sequence(s, count, seed=0):
    """``count`` Darcy systems on an s × s interior grid: (list of A, b, list of coefficient fields)."""
    fam = Darcy(grid=s)
    rng = np.random.default_rng(seed)
    mats, fields, b = [], [], None
    for _ in range(count):
        params = fam.sample(rng)
        A, b = fam.assemble(params)
        mats.append(A)
        fields.append(params["a"])
    return mats, b, fields
