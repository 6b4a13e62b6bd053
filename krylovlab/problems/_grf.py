"""Gaussian random fields in the FNO convention.

A periodic field on a uniform grid of the unit square/cube with covariance
operator σ²(−Δ + τ²I)^(−α): its Fourier coefficient at wavenumber k has
standard deviation ∝ σ (4π²|k|² + τ²)^(−α/2), with σ = τ^(α − d/2) and the
mean (k = 0) mode set to zero.  Larger α gives smoother fields, larger τ
shorter correlation lengths.  The defaults α = 2.5, τ = 7 are those of the
FNO/SKR Darcy datasets.
"""

from __future__ import annotations

import numpy as np


def gaussian_random_field(shape, rng, *, alpha: float = 2.5, tau: float = 7.0) -> np.ndarray:
    """Sample one real GRF on a grid of ``shape`` points (periodic, zero mean).

    Parameters
    ----------
    shape : tuple of int
        Points per dimension (1 to 3 dimensions).
    rng : numpy.random.Generator or int
    alpha, tau : float
        Smoothness and inverse correlation length.

    Examples
    --------
    >>> g = gaussian_random_field((32, 32), 0)
    >>> g.shape, abs(g.mean()) < 1e-12
    ((32, 32), True)
    """
    rng = np.random.default_rng(rng)
    shape = tuple(int(s) for s in shape)
    dim = len(shape)
    if not 1 <= dim <= 3 or min(shape) < 2:
        raise ValueError(f"gaussian_random_field: shape must have 1-3 sizes >= 2, got {shape}")
    if not (alpha > dim / 2 and tau > 0):
        raise ValueError("gaussian_random_field: need alpha > dim/2 and tau > 0")
    sigma = tau ** (alpha - dim / 2)
    k2 = np.zeros(shape)
    for axis, n in enumerate(shape):
        k = np.fft.fftfreq(n, d=1.0 / n)  # integer wavenumbers
        k2 = k2 + (k.reshape([-1 if a == axis else 1 for a in range(dim)]) ** 2)
    std = np.sqrt(2.0) * sigma * (4 * np.pi**2 * k2 + tau**2) ** (-alpha / 2)
    std.flat[0] = 0.0
    xi = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    # ifftn divides by N; multiplying by N makes the point variance grid-independent
    return np.fft.ifftn(std * xi).real * np.prod(shape)


def low_frequency_features(field: np.ndarray, kmax: int = 4) -> np.ndarray:
    """Real and imaginary parts of the lowest |k| ≤ kmax Fourier modes of ``field``.

    A short, grid-independent descriptor used to order samples so that
    neighbours have similar coefficient fields (Sorting Krylov Recycling).
    """
    spec = np.fft.fftn(field) / field.size
    idx = tuple(np.r_[0:kmax + 1, -kmax:0] if n > 2 * kmax + 1 else slice(None) for n in field.shape)
    block = spec[np.ix_(*[np.atleast_1d(np.arange(n)[i]) for n, i in zip(field.shape, idx)])]
    return np.concatenate([block.real.ravel(), block.imag.ravel()])
