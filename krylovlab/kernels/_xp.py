"""The kernel contract written only with Python array API standard calls.

For array types that have neither numba nor CuPy kernels (anything with an
``__array_namespace__``: array-api-strict, torch via array-api-compat, …) and
as a second, independent reference for the numba and CuPy kernels.  Every
function takes the same arguments as its `krylovlab.kernels.cpu` namesake and
finds the namespace from the arrays themselves.

Differences from the CPU kernels, all allowed by the contract:

* Reductions (`dot`, `norm2`, `spmv_dot`, `cg_update`, `jacobi`) return 0-d
  arrays of the input namespace rather than Python/numpy scalars, so nothing
  is copied to the host until the caller asks (``float(r)``).
* Outputs are written with ``__setitem__``, so the namespace must have
  mutable arrays (array-api-strict, numpy, CuPy and torch do; JAX does not).
* The CSR product is evaluated row block by row block on a padded
  (rows × longest row) gather, which is exact (no cumulative-sum
  cancellation) and needs no scatter-add (the standard has none); blocks keep
  the padded buffer under about 4 million entries.  Matrices with one very
  long row are slow here.

Scalars (``a``, ``b``, ``alpha``) may be Python numbers, numpy scalars or 0-d
arrays of the namespace.
"""

from __future__ import annotations

import numbers

__all__ = ["spmv", "spmv_dot", "dot", "norm2", "axpby", "cg_update", "jacobi", "sor_sweep"]

_BLOCK_ELEMS = 1 << 22


def _ns(*arrays):
    for a in arrays:
        if hasattr(a, "__array_namespace__"):
            return a.__array_namespace__()
    raise TypeError("krylovlab.kernels._xp needs arrays that implement __array_namespace__")


def _is_complex(xp, a) -> bool:
    return xp.isdtype(a.dtype, "complex floating")


def _conj(xp, a):
    return xp.conj(a) if _is_complex(xp, a) else a


def _abs2(xp, a):
    """|a|² elementwise, in the real dtype of a."""
    if _is_complex(xp, a):
        re, im = xp.real(a), xp.imag(a)
        return re * re + im * im
    return a * a


def _scalar(xp, s, like):
    """A scalar argument as something the namespace combines with ``like``."""
    if not isinstance(s, numbers.Number) and hasattr(s, "__array_namespace__"):
        return s  # a 0-d array of the namespace (kept on its device)
    if isinstance(s, numbers.Complex) and not isinstance(s, numbers.Real):
        c = complex(s)
        if _is_complex(xp, like):
            return c
        if c.imag != 0:
            raise TypeError(f"complex scalar {s!r} used with a real array of dtype {like.dtype}")
        return c.real
    if isinstance(s, numbers.Real):
        return float(s)
    raise TypeError(f"expected a scalar, got {type(s).__name__}")


def spmv(indptr, indices, data, x, y):
    """y ← A x for CSR A (padded row-block gather)."""
    xp = _ns(y, x, data)
    n = y.shape[0]
    if n == 0:
        return
    lens = indptr[1:] - indptr[:-1]
    longest = int(xp.max(lens))
    if longest == 0:
        y[...] = xp.zeros_like(y)
        return
    cols = xp.arange(longest, dtype=indptr.dtype)
    block = max(1, _BLOCK_ELEMS // longest)
    for s in range(0, n, block):
        e = min(n, s + block)
        start = xp.expand_dims(indptr[s:e], axis=1)               # (m, 1)
        mask = xp.expand_dims(cols, axis=0) < xp.expand_dims(lens[s:e], axis=1)  # (m, L)
        pos = xp.where(mask, start + xp.expand_dims(cols, axis=0), xp.zeros_like(start))
        flat = xp.reshape(pos, (-1,))
        # a_ik · x_{j(k)} for every stored entry k of rows s..e-1 (padding masked to 0)
        prod = xp.take(data, flat) * xp.take(x, xp.take(indices, flat))
        prod = xp.reshape(prod, ((e - s), longest))
        prod = xp.where(mask, prod, xp.zeros_like(prod))
        y[s:e] = xp.sum(prod, axis=1, dtype=y.dtype)


def spmv_dot(indptr, indices, data, x, y):
    """y ← A x; return xᴴ y (0-d array)."""
    spmv(indptr, indices, data, x, y)
    return dot(x, y)


def dot(x, y):
    """Return xᴴ y as a 0-d array (``vecdot`` conjugates its first argument)."""
    xp = _ns(x, y)
    return xp.vecdot(x, y)


def norm2(x):
    """Return ‖x‖₂ as a 0-d real array."""
    xp = _ns(x)
    return xp.sqrt(xp.sum(_abs2(xp, x)))


def axpby(a, x, b, y):
    """y ← a·x + b·y."""
    xp = _ns(y, x)
    y[...] = _scalar(xp, a, y) * x + _scalar(xp, b, y) * y


def cg_update(alpha, p, q, x, r):
    """x ← x + α p;  r ← r − α q;  return ‖r‖² (0-d real array)."""
    xp = _ns(r, x)
    alpha = _scalar(xp, alpha, r)
    x[...] = x + alpha * p  # x ← x + α p
    r[...] = r - alpha * q  # r ← r − α q
    return xp.sum(_abs2(xp, r))


def jacobi(inv_diag, r, z):
    """z ← D⁻¹ r; return rᴴ z (0-d array)."""
    xp = _ns(z, r)
    z[...] = inv_diag * r
    return xp.vecdot(r, z)


def sor_sweep(indptr, indices, data, x, b, omega, start, stop, step):
    """One SOR sweep over rows range(start, stop, step).

    Gauss–Seidel ordering is inherently sequential, so this is a row loop of
    small array operations: correct everywhere, fast nowhere.  Use it as a
    reference only.
    """
    xp = _ns(x, b, data)
    omega = _scalar(xp, omega, x)
    for i in range(start, stop, step):
        lo, hi = int(indptr[i]), int(indptr[i + 1])
        cols = indices[lo:hi]
        vals = data[lo:hi]
        on_diag = cols == i
        diag = xp.sum(xp.where(on_diag, vals, xp.zeros_like(vals)))
        off = xp.sum(xp.where(on_diag, xp.zeros_like(vals), vals) * xp.take(x, cols))
        x[i] = (1 - omega) * x[i] + omega * (b[i] - off) / diag
