"""GPU (CuPy) relaxation sweeps with the names and signatures of `krylovlab.kernels.cpu._relax`.

=========================  ==================================================
``sor_sweep``              rows range(start, stop, step) one after another:
                           inherently sequential, so it runs on **one GPU
                           thread** — correct (the reference for the others)
                           but slow; use the multicolour sweep for speed
``ssor_sweep``             forward then backward `sor_sweep`
``ssor_apply``             z ← M_SSOR⁻¹ r (z = 0, then a symmetric sweep)
``sor_sweep_multicolor``   one launch per colour, one thread per row of the
                           colour; colours in increasing order (decreasing
                           when ``reverse``) — the ordering of the CPU kernel,
                           with the same result to rounding
``ssor_sweep_multicolor``  colours 0..m−1, then m−1..0
=========================  ==================================================

``order`` and ``color_ptr`` come from `krylovlab.relax.coloring.multicolor_ordering`;
``order`` must be on the device, ``color_ptr`` is read on the host to size
the launches (pass the numpy array to avoid a device→host copy per sweep).
Supported: float32 and float64 values, int32 and int64 indices, all of one
kind per call (a mismatch raises `TypeError`; nothing is converted silently).

Importing this module needs neither CuPy nor a device; the CUDA source below
is compiled by NVRTC on first use, and by nvcc in the tests when nvcc is on
PATH (so it is checked on machines without a GPU).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["sor_sweep", "ssor_sweep", "ssor_apply", "sor_sweep_multicolor", "ssor_sweep_multicolor",
           "RELAX_SOURCE", "relax_name_expressions"]

BLOCK = 256

RELAX_SOURCE = r"""
// krylovlab relaxation kernels (SOR sweeps on CSR matrices).
// T: float or double; I: int or long long.

// x_i <- (1 - w) x_i + w (b_i - sum_{j != i} a_ij x_j) / a_ii
template <typename T, typename I>
__device__ __forceinline__ void kl_relax_row(I i, const I* indptr, const I* indices, const T* data,
                                             T* x, const T* b, T w) {
    T diag = T(0);
    T acc = T(0);
    for (I k = indptr[i]; k < indptr[i + 1]; ++k) {
        I j = indices[k];
        if (j == i) {
            diag += data[k];
        } else {
            acc += data[k] * x[j];
        }
    }
    x[i] = (T(1) - w) * x[i] + w * (b[i] - acc) / diag;
}

// Sequential sweep over rows start, start + step, ... (stop excluded); launch with one thread.
template <typename T, typename I>
__global__ void kl_sor_serial(long long start, long long stop, long long step, const I* indptr,
                              const I* indices, const T* data, T* x, const T* b, T w) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    for (long long i = start; step > 0 ? i < stop : i > stop; i += step) {
        kl_relax_row<T, I>((I)i, indptr, indices, data, x, b, w);
    }
}

// All rows order[lo..hi) of one colour at once (they share no matrix entry).
template <typename T, typename I>
__global__ void kl_sor_color(long long lo, long long hi, const long long* order, const I* indptr,
                             const I* indices, const T* data, T* x, const T* b, T w) {
    for (long long t = lo + (long long)blockIdx.x * blockDim.x + threadIdx.x; t < hi;
         t += (long long)gridDim.x * blockDim.x) {
        kl_relax_row<T, I>((I)order[t], indptr, indices, data, x, b, w);
    }
}
"""

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_ITYPES = {np.dtype(np.int32): "int", np.dtype(np.int64): "long long"}
_MAX_BLOCKS = 65535


def _name(kind, dtype, itype):
    return f"kl_{kind}<{_CTYPES[np.dtype(dtype)]}, {_ITYPES[np.dtype(itype)]}>"


def relax_name_expressions() -> list[str]:
    """Every template instance launched from Python."""
    return [_name(k, d, i) for k in ("sor_serial", "sor_color") for d in _CTYPES for i in _ITYPES]


@functools.lru_cache(maxsize=None)
def _module():
    import cupy

    return cupy.RawModule(code=RELAX_SOURCE, options=("-std=c++14",), name_expressions=relax_name_expressions())


def _check(indptr, indices, data, x, b):
    import cupy

    for name, a in (("indptr", indptr), ("indices", indices), ("data", data), ("x", x), ("b", b)):
        if not isinstance(a, cupy.ndarray) or a.ndim != 1 or not a.flags.c_contiguous:
            raise TypeError(f"{name} must be a 1-D contiguous CuPy array")
    if data.dtype not in _CTYPES or x.dtype != data.dtype or b.dtype != data.dtype:
        raise TypeError(f"GPU SOR kernels need data, x and b of one dtype, float32 or float64; got "
                        f"{data.dtype}, {x.dtype}, {b.dtype}")
    if indptr.dtype != indices.dtype or indptr.dtype not in _ITYPES:
        raise TypeError(f"indptr and indices must both be int32 or both int64, got {indptr.dtype}, {indices.dtype}")
    n = indptr.shape[0] - 1
    if x.shape[0] != n or b.shape[0] != n:
        raise ValueError(f"x and b must have length {n}")
    return n


def sor_sweep(indptr, indices, data, x, b, omega, start, stop, step):
    """One SOR sweep over rows range(start, stop, step), x updated in place (one GPU thread)."""
    _check(indptr, indices, data, x, b)
    if step == 0:
        raise ValueError("step must not be zero")
    kern = _module().get_function(_name("sor_serial", data.dtype, indptr.dtype))
    w = data.dtype.type(omega)
    kern((1,), (1,), (np.int64(start), np.int64(stop), np.int64(step), indptr, indices, data, x, b, w))


def ssor_sweep(indptr, indices, data, x, b, omega):
    """Forward then backward SOR sweep."""
    n = indptr.shape[0] - 1
    sor_sweep(indptr, indices, data, x, b, omega, 0, n, 1)
    sor_sweep(indptr, indices, data, x, b, omega, n - 1, -1, -1)


def ssor_apply(indptr, indices, data, r, z, omega):
    """z ← M⁻¹ r for the SSOR preconditioner (z = 0, then one symmetric sweep)."""
    z.fill(0)
    ssor_sweep(indptr, indices, data, z, r, omega)


def sor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr, reverse):
    """Multicolour SOR sweep: one launch per colour, one thread per row of that colour."""
    import cupy

    _check(indptr, indices, data, x, b)
    if not isinstance(order, cupy.ndarray) or order.dtype != np.int64:
        raise TypeError("order must be an int64 CuPy array (from multicolor_ordering)")
    ptr = color_ptr.get() if isinstance(color_ptr, cupy.ndarray) else np.asarray(color_ptr)
    kern = _module().get_function(_name("sor_color", data.dtype, indptr.dtype))
    w = data.dtype.type(omega)
    m = ptr.shape[0] - 1
    for c in (range(m - 1, -1, -1) if reverse else range(m)):
        lo, hi = int(ptr[c]), int(ptr[c + 1])
        if hi > lo:
            blocks = max(1, min(_MAX_BLOCKS, -(-(hi - lo) // BLOCK)))
            # x_i ← (1 − ω) x_i + ω (b_i − Σ_{j≠i} a_ij x_j) / a_ii for every row i of colour c
            kern((blocks,), (BLOCK,), (np.int64(lo), np.int64(hi), order, indptr, indices, data, x, b, w))


def ssor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr):
    """Symmetric multicolour sweep: colours 0..m−1, then m−1..0."""
    sor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr, False)
    sor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr, True)
