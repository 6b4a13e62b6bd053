"""Shared helpers of the recycled Krylov solvers: argument checks and state
handling (pickling, backups of learned state)."""

from __future__ import annotations


def check_dim(value, name: str, minimum: int) -> int:
    """A non-negative integer parameter (bools rejected)."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_space(U, xp, limit: int, n, name: str = "U"):
    """A user-given basis (n × j, 1 ≤ j ≤ ``limit``; a vector is one column): returned as an array of ``xp``.

    ``n`` is the operator's size, or None when no operator is set yet.  Raises
    ValueError for a wrong shape or non-finite entries, TypeError for a
    non-floating dtype.
    """
    U = xp.asarray(U)
    if U.ndim == 1:
        U = U[:, None]
    if U.ndim != 2 or U.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty n × j array, got shape {U.shape}")
    if U.shape[1] > limit:
        raise ValueError(f"{name} has {U.shape[1]} columns, more than recycle_dim = {limit}")
    if n is not None and U.shape[0] != n:
        raise ValueError(f"{name} has {U.shape[0]} rows, the operator has {n}")
    if U.dtype.kind not in "fc":
        raise TypeError(f"{name} must be a float or complex array, got dtype {U.dtype}")
    if not bool(xp.all(xp.isfinite(U))):
        raise ValueError(f"{name} contains NaN or Inf")
    return U
