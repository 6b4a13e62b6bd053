"""CSR SpMV and fused level-1 kernels (numba).

Rules measured on our machines (see shared/background/perf-baseline.md):

* CSR indices are read through an unsigned cast, which removes numba's
  negative-index wraparound check (1.5-1.7x on SpMV).
* Below ``PARALLEL_THRESHOLD`` unknowns a parallel region costs more than it
  gives, so every public kernel picks the serial or the ``prange`` variant by
  size.  Tests can force either through the ``_serial`` / ``_parallel`` names.
* Everything is ``cache=True``.

All kernels work for float32, float64, complex64 and complex128; dot products
conjugate their first argument (``dot(x, y) = xᴴ y``).
"""

from __future__ import annotations

import os
import time

import numba as nb
import numpy as np

PARALLEL_THRESHOLD = 20_000

_jit = dict(nogil=True, cache=True, fastmath=False)


# ------------------------------------------------------------------------- SpMV
@nb.njit(**_jit)
def spmv_serial(indptr, indices, data, x, y):
    """y ← A x for CSR A (serial)."""
    n = indptr.shape[0] - 1
    for i in range(n):
        acc = y.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += data[k] * x[np.uint64(indices[k])]
        y[i] = acc


@nb.njit(parallel=True, **_jit)
def spmv_parallel(indptr, indices, data, x, y):
    """y ← A x for CSR A (rows split over threads)."""
    n = indptr.shape[0] - 1
    for i in nb.prange(n):
        acc = y.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += data[k] * x[np.uint64(indices[k])]
        y[i] = acc


# ----------------------------------------------------- SpMV for long rows
# Row sums over four accumulators.  A single running sum is a chain of dependent additions, one
# per stored entry, and that latency, not memory, bounds rows as long as a smoothed-aggregation
# coarse level's (27 entries per row on 3D Darcy 32³) or a restriction's (28 per row on the finest
# level, 163 on the next): a level-1 product there took 118 µs with one sum and 76 µs with four
# (float32, one thread).  Rows of five or seven entries keep one chain of a few additions.
@nb.njit(**_jit)
def row_dot(data, indices, x, k0, k1):
    """Σ_{k0 ≤ k < k1} data[k]·x[indices[k]] (unsigned bounds), summed in four interleaved parts."""
    zero = data.dtype.type(0) * x.dtype.type(0)
    s0 = zero
    s1 = zero
    s2 = zero
    s3 = zero
    k = k0
    four = np.uint64(4)
    while k + four <= k1:
        s0 += data[k] * x[np.uint64(indices[k])]
        s1 += data[k + np.uint64(1)] * x[np.uint64(indices[k + np.uint64(1)])]
        s2 += data[k + np.uint64(2)] * x[np.uint64(indices[k + np.uint64(2)])]
        s3 += data[k + np.uint64(3)] * x[np.uint64(indices[k + np.uint64(3)])]
        k += four
    while k < k1:
        s0 += data[k] * x[np.uint64(indices[k])]
        k += np.uint64(1)
    return (s0 + s1) + (s2 + s3)


@nb.njit(**_jit)
def spmv_rows_serial(indptr, indices, data, x, y):
    """y ← A x with `row_dot` rows (for long rows: AMG restrictions and coarse levels, Galerkin plans)."""
    for i in range(y.shape[0]):
        y[i] = row_dot(data, indices, x, np.uint64(indptr[i]), np.uint64(indptr[i + 1]))


@nb.njit(parallel=True, **_jit)
def spmv_rows_parallel(indptr, indices, data, x, y):
    """y ← A x with `row_dot` rows, split over threads."""
    for i in nb.prange(y.shape[0]):
        y[i] = row_dot(data, indices, x, np.uint64(indptr[i]), np.uint64(indptr[i + 1]))


@nb.njit(**_jit)
def spmv_dot_serial(indptr, indices, data, x, y):
    """y ← A x and return xᴴ y (fused: one pass)."""
    n = indptr.shape[0] - 1
    s = y.dtype.type(0)
    for i in range(n):
        acc = y.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += data[k] * x[np.uint64(indices[k])]
        y[i] = acc
        s += np.conj(x[i]) * acc
    return s


@nb.njit(parallel=True, **_jit)
def spmv_dot_parallel(indptr, indices, data, x, y):
    """y ← A x and return xᴴ y (fused, threaded)."""
    n = indptr.shape[0] - 1
    s = y.dtype.type(0)
    for i in nb.prange(n):
        acc = y.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += data[k] * x[np.uint64(indices[k])]
        y[i] = acc
        s += np.conj(x[i]) * acc
    return s


# ------------------------------------------------------------------------ BLAS-1
@nb.njit(**_jit)
def dot_serial(x, y):
    """Return xᴴ y."""
    s = x.dtype.type(0) * y.dtype.type(0)
    for i in range(x.shape[0]):
        s += np.conj(x[i]) * y[i]
    return s


@nb.njit(parallel=True, **_jit)
def dot_parallel(x, y):
    s = x.dtype.type(0) * y.dtype.type(0)
    for i in nb.prange(x.shape[0]):
        s += np.conj(x[i]) * y[i]
    return s


@nb.njit(**_jit)
def norm2_serial(x):
    """Return ‖x‖₂ (scaled-free sum of squares; inputs are finite by contract)."""
    s = 0.0
    for i in range(x.shape[0]):
        s += (x[i].real * x[i].real + x[i].imag * x[i].imag)
    return np.sqrt(s)


@nb.njit(parallel=True, **_jit)
def norm2_parallel(x):
    s = 0.0
    for i in nb.prange(x.shape[0]):
        s += (x[i].real * x[i].real + x[i].imag * x[i].imag)
    return np.sqrt(s)


@nb.njit(**_jit)
def axpby_serial(a, x, b, y):
    """y ← a·x + b·y."""
    for i in range(x.shape[0]):
        y[i] = a * x[i] + b * y[i]


@nb.njit(parallel=True, **_jit)
def axpby_parallel(a, x, b, y):
    for i in nb.prange(x.shape[0]):
        y[i] = a * x[i] + b * y[i]


@nb.njit(**_jit)
def cg_update_serial(alpha, p, q, x, r):
    """x ← x + α p;  r ← r − α q;  return ‖r‖² (the fused CG update)."""
    s = 0.0
    for i in range(x.shape[0]):
        x[i] += alpha * p[i]
        ri = r[i] - alpha * q[i]
        r[i] = ri
        s += ri.real * ri.real + ri.imag * ri.imag
    return s


@nb.njit(parallel=True, **_jit)
def cg_update_parallel(alpha, p, q, x, r):
    s = 0.0
    for i in nb.prange(x.shape[0]):
        x[i] += alpha * p[i]
        ri = r[i] - alpha * q[i]
        r[i] = ri
        s += ri.real * ri.real + ri.imag * ri.imag
    return s


@nb.njit(**_jit)
def jacobi_serial(inv_diag, r, z):
    """z ← D⁻¹ r; return rᴴ z."""
    s = r.dtype.type(0) * z.dtype.type(0)
    for i in range(r.shape[0]):
        zi = inv_diag[i] * r[i]
        z[i] = zi
        s += np.conj(r[i]) * zi
    return s


@nb.njit(parallel=True, **_jit)
def jacobi_parallel(inv_diag, r, z):
    s = r.dtype.type(0) * z.dtype.type(0)
    for i in nb.prange(r.shape[0]):
        zi = inv_diag[i] * r[i]
        z[i] = zi
        s += np.conj(r[i]) * zi
    return s


# Reassociation lets the sum vectorise (one add per 4 cycles otherwise: 122 instead of ~35 ms for
# 10⁸ entries on 2 threads); without the no-NaN/no-Inf/no-signed-zero flags x·0 cannot be folded to 0.
_jit_reassoc = dict(nogil=True, cache=True, fastmath={"reassoc"})


@nb.njit(**_jit_reassoc)
def all_finite_serial(x):
    """True when the real 1-D array x holds no NaN or Inf (one streaming pass, no temporaries).

    Σ x_i·0 is 0 for finite data and NaN as soon as one entry is NaN or ±Inf
    (0·Inf = NaN), so the test is a plain vectorisable reduction.
    """
    acc = 0.0
    for i in range(x.shape[0]):
        acc += x[i] * 0.0
    return acc == 0.0


@nb.njit(parallel=True, **_jit_reassoc)
def all_finite_parallel(x):
    acc = 0.0
    for i in nb.prange(x.shape[0]):
        acc += x[i] * 0.0
    return acc == 0.0


# ------------------------------------------------------------- size dispatch
_busy_cache = {"t": -1e9, "busy": False}


def machine_busy() -> bool:
    """True when the 1-minute load exceeds the core count by more than half a core.

    Threaded kernels wait for every thread at each parallel region; when other
    processes hold the cores those waits stretch a ~1 ms kernel to tens of ms
    (measured on our shared 2-core machines), so the threaded variants are
    used only when the cores are ours.  Cached for half a second.
    """
    now = time.monotonic()
    if now - _busy_cache["t"] > 0.5:
        try:
            _busy_cache["busy"] = os.getloadavg()[0] > (os.cpu_count() or 1) + 0.5
        except OSError:  # platforms without getloadavg
            _busy_cache["busy"] = False
        _busy_cache["t"] = now
    return _busy_cache["busy"]


def use_parallel(n: int) -> bool:
    """Whether a kernel over ``n`` entries should run threaded (size, thread count, machine load)."""
    return n >= PARALLEL_THRESHOLD and nb.get_num_threads() > 1 and not machine_busy()


def by_size(serial, parallel, vec_arg: int = -1):
    """A public kernel that picks ``serial`` or ``parallel`` by `use_parallel` on argument ``vec_arg``'s length."""

    def kernel(*args):
        return (parallel if use_parallel(args[vec_arg].shape[0]) else serial)(*args)

    kernel.__name__ = serial.__name__.replace("_serial", "")
    kernel.__doc__ = serial.__doc__
    kernel.serial = serial
    kernel.parallel = parallel
    return kernel


_pick = by_size


spmv = _pick(spmv_serial, spmv_parallel)
spmv_dot = _pick(spmv_dot_serial, spmv_dot_parallel)
dot = _pick(dot_serial, dot_parallel)
norm2 = _pick(norm2_serial, norm2_parallel)
axpby = _pick(axpby_serial, axpby_parallel)
cg_update = _pick(cg_update_serial, cg_update_parallel)
jacobi = _pick(jacobi_serial, jacobi_parallel)
all_finite = _pick(all_finite_serial, all_finite_parallel)
