"""GPU kernels (CuPy) with the names and signatures of `krylovlab.kernels.cpu`.

=============  ============================================================
``spmv``       y ← A x, CSR; raw CUDA (``csr_kernels.cu``), one thread per
               row for short rows, one warp per row when rows average
               ≥ ``WARP_ROW_THRESHOLD`` entries (decided once per matrix)
``spmv_dot``   y ← A x and xᴴy fused in one pass (raw CUDA)
``dot``        xᴴy via cuBLAS (``cupy.vdot``)
``norm2``      ‖x‖₂ via a `cupy.ReductionKernel` (sum of squares in float64)
``axpby``      y ← a x + b y via a `cupy.ElementwiseKernel`
``cg_update``  x ← x + αp; r ← r − αq; ‖r‖² fused (raw CUDA)
``jacobi``     z ← D⁻¹r and rᴴz fused (raw CUDA)
``sor_sweep``  SOR sweep in row order, one GPU thread (from ``_relax``; see below)
=============  ============================================================

Conventions that differ from the CPU kernels, as the architecture asks
(no device→host copy inside an iteration):

* Reductions return **0-d CuPy arrays** on the device; call ``float()`` or
  ``complex()`` on them when the host needs the value.
* Scalars (``a``, ``b``, ``alpha``) may be Python/numpy numbers or 0-d CuPy
  arrays; device scalars stay on the device.
* Inputs must be 1-D contiguous CuPy arrays; ``data``, ``x`` and ``y`` must
  share one dtype (float32, float64, complex64 or complex128) and the index
  arrays one integer dtype (int32 or int64).  Nothing is converted silently:
  a mismatch raises `TypeError`.
* Reductions use atomics, so their last bits may change from run to run.

A sequential SOR sweep has no efficient GPU form: ``sor_sweep`` runs it
correctly on a single GPU thread (for tests and small problems); fast GPU
smoothing uses the multicolour sweeps (``sor_sweep_multicolor``,
``ssor_sweep_multicolor``) with the colouring from `krylovlab.relax`.

Importing this module needs neither CuPy nor a device; CuPy is imported on
the first kernel call and the CUDA source is compiled (NVRTC) on first use.

Examples
--------
>>> from krylovlab.kernels import gpu  # works without a GPU
>>> sorted(n for n in gpu.__all__ if not n.isupper())[:3]
['axpby', 'cg_update', 'dot']
"""

from __future__ import annotations

import functools

import numpy as np

from . import _raw

__all__ = [
    "WARP_ROW_THRESHOLD",
    "spmv",
    "spmv_dot",
    "dot",
    "norm2",
    "axpby",
    "cg_update",
    "jacobi",
    "sor_sweep",
]

#: mean entries per row from which the warp-per-row SpMV is used
WARP_ROW_THRESHOLD = 12
_MAX_BLOCKS = 65535
_DTYPES = tuple(_raw.CTYPES)


def _cupy():
    import cupy

    return cupy


def _check_vectors(*named):
    """All 1-D, C-contiguous CuPy arrays of one supported dtype; returns that dtype."""
    cp = _cupy()
    dtype = None
    for name, a in named:
        if not isinstance(a, cp.ndarray):
            raise TypeError(f"{name} must be a CuPy array, got {type(a).__name__}")
        if a.ndim != 1 or not a.flags.c_contiguous:
            raise ValueError(f"{name} must be a 1-D contiguous array, got shape {a.shape}")
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            raise TypeError(f"{name} has dtype {a.dtype}, expected {dtype} like the other vectors")
    if dtype not in _DTYPES:
        raise TypeError(f"GPU kernels support float32, float64, complex64 and complex128, not {dtype}")
    return dtype


def _check_csr(indptr, indices, data, x, y):
    dtype = _check_vectors(("data", data), ("x", x), ("y", y))
    cp = _cupy()
    for name, a in (("indptr", indptr), ("indices", indices)):
        if not isinstance(a, cp.ndarray) or a.ndim != 1 or not a.flags.c_contiguous:
            raise TypeError(f"{name} must be a 1-D contiguous CuPy integer array")
    if indptr.dtype != indices.dtype or indptr.dtype not in _raw.ITYPES:
        raise TypeError(f"indptr and indices must both be int32 or both int64, got {indptr.dtype} and {indices.dtype}")
    n = indptr.shape[0] - 1
    if y.shape[0] != n:
        raise ValueError(f"y has length {y.shape[0]}, but the matrix has {n} rows")
    return dtype, n


def _grid(threads_needed: int) -> tuple[int]:
    return (max(1, min(_MAX_BLOCKS, -(-threads_needed // _raw.BLOCK))),)


_ROW_KIND_CACHE: dict = {}


def _warp_rows(indptr, n) -> bool:
    """Warp-per-row or thread-per-row for this matrix.

    Reading nnz = indptr[-1] copies one integer to the host and synchronises,
    so the answer is cached per index array (keyed by device pointer and
    length); a stale entry after memory reuse can only cost speed, never
    correctness, because both kernels compute the same product.
    """
    if n == 0:
        return False
    key = (indptr.data.ptr, n, WARP_ROW_THRESHOLD)
    hit = _ROW_KIND_CACHE.get(key)
    if hit is None:
        if len(_ROW_KIND_CACHE) > 256:
            _ROW_KIND_CACHE.clear()
        hit = _ROW_KIND_CACHE[key] = int(indptr[-1]) >= WARP_ROW_THRESHOLD * n
    return hit


def spmv(indptr, indices, data, x, y):
    """y ← A x for CSR A on the GPU.

    Examples
    --------
    >>> import cupy, cupyx.scipy.sparse as csp          # doctest: +SKIP
    >>> A = csp.csr_matrix(cupy.eye(3)); x = cupy.ones(3); y = cupy.empty(3)  # doctest: +SKIP
    >>> spmv(A.indptr, A.indices, A.data, x, y)          # doctest: +SKIP
    """
    dtype, n = _check_csr(indptr, indices, data, x, y)
    if n == 0:
        return
    warp = _warp_rows(indptr, n)
    kern = _raw.function(_raw.spmv_name("spmv_warp" if warp else "spmv_row", dtype, indptr.dtype))
    # y_i ← Σ_k a_ik x_j(k)
    kern(_grid(n * (32 if warp else 1)), (_raw.BLOCK,), (np.int64(n), indptr, indices, data, x, y))


def spmv_dot(indptr, indices, data, x, y):
    """y ← A x; return xᴴ y as a 0-d device array (one fused pass)."""
    dtype, n = _check_csr(indptr, indices, data, x, y)
    cp = _cupy()
    out = cp.zeros(1, dtype=dtype)
    if n:
        warp = _warp_rows(indptr, n)
        kern = _raw.function(_raw.spmv_name("spmv_dot_warp" if warp else "spmv_dot_row", dtype, indptr.dtype))
        # y ← A x;  out ← Σ conj(x_i) y_i
        kern(_grid(n * (32 if warp else 1)), (_raw.BLOCK,), (np.int64(n), indptr, indices, data, x, y, out))
    return out[0]


def dot(x, y):
    """Return xᴴ y (cuBLAS dot/dotc through `cupy.vdot`) as a 0-d device array."""
    _check_vectors(("x", x), ("y", y))
    return _cupy().vdot(x, y)


_ABS2_PREAMBLE = r"""
__device__ double kl_abs2(float v) { return (double)v * (double)v; }
__device__ double kl_abs2(double v) { return v * v; }
__device__ double kl_abs2(complex<float> v) {
    return (double)v.real() * (double)v.real() + (double)v.imag() * (double)v.imag();
}
__device__ double kl_abs2(complex<double> v) { return v.real() * v.real() + v.imag() * v.imag(); }
"""


@functools.lru_cache(maxsize=None)
def _norm_sq_kernel():
    cp = _cupy()
    # Σ |x_i|², accumulated in float64 for every input precision
    return cp.ReductionKernel("T x", "float64 y", "kl_abs2(x)", "a + b", "y = a", "0",
                              "kl_norm_sq", preamble=_ABS2_PREAMBLE)


@functools.lru_cache(maxsize=None)
def _axpby_kernel():
    cp = _cupy()
    # y ← a x + b y (a, b broadcast as scalars or 0-d arrays, cast to T)
    return cp.ElementwiseKernel("T a, T x, T b", "T y", "y = a * x + b * y", "kl_axpby")


def norm2(x):
    """Return ‖x‖₂ as a 0-d float64 device array."""
    _check_vectors(("x", x))
    return _cupy().sqrt(_norm_sq_kernel()(x))


def _scalar(s, dtype):
    """A scalar as a 0-d device array of ``dtype`` (device scalars are not copied to the host)."""
    cp = _cupy()
    if isinstance(s, cp.ndarray):
        if s.size != 1:
            raise ValueError(f"expected a scalar, got an array of shape {s.shape}")
        if np.dtype(s.dtype).kind == "c" and np.dtype(dtype).kind != "c":
            raise TypeError(f"complex scalar used with real vectors of dtype {dtype}")
        return s.reshape(()).astype(dtype, copy=False)
    if isinstance(s, complex) or np.iscomplexobj(s):
        if np.dtype(dtype).kind != "c":
            if complex(s).imag != 0:
                raise TypeError(f"complex scalar {s!r} used with real vectors of dtype {dtype}")
            s = complex(s).real
    return cp.asarray(s, dtype=dtype)


def axpby(a, x, b, y):
    """y ← a·x + b·y."""
    dtype = _check_vectors(("x", x), ("y", y))
    _axpby_kernel()(_scalar(a, dtype), x, _scalar(b, dtype), y)


def cg_update(alpha, p, q, x, r):
    """x ← x + α p;  r ← r − α q;  return ‖r‖² as a 0-d float64 device array."""
    dtype = _check_vectors(("p", p), ("q", q), ("x", x), ("r", r))
    cp = _cupy()
    n = r.shape[0]
    rr = cp.zeros(1, dtype=np.float64)
    if n:
        a = _scalar(alpha, dtype).reshape(1)  # α stays on the device
        _raw.function(_raw.cg_update_name(dtype))(_grid(n), (_raw.BLOCK,), (np.int64(n), a, p, q, x, r, rr))
    return rr[0]


def jacobi(inv_diag, r, z):
    """z ← D⁻¹ r; return rᴴ z as a 0-d device array.

    ``inv_diag`` may be real (of r's precision) or have r's dtype.
    """
    dtype = _check_vectors(("r", r), ("z", z))
    cp = _cupy()
    if not isinstance(inv_diag, cp.ndarray) or inv_diag.ndim != 1 or not inv_diag.flags.c_contiguous:
        raise TypeError("inv_diag must be a 1-D contiguous CuPy array")
    real = _raw.REAL_OF[dtype]
    if inv_diag.dtype not in (real, dtype):
        raise TypeError(f"inv_diag must have dtype {real} or {dtype} for vectors of dtype {dtype}, "
                        f"got {inv_diag.dtype}")
    if inv_diag.shape[0] != r.shape[0]:
        raise ValueError(f"inv_diag has length {inv_diag.shape[0]}, r has {r.shape[0]}")
    n = r.shape[0]
    out = cp.zeros(1, dtype=dtype)
    if n:
        kern = _raw.function(_raw.jacobi_name(inv_diag.dtype, dtype))
        kern(_grid(n), (_raw.BLOCK,), (np.int64(n), inv_diag, r, z, out))  # z ← D⁻¹ r; out ← rᴴ z
    return out[0]


# relaxation family (krylovlab.relax): sweeps in row order and multicolour order
from ._relax import sor_sweep, sor_sweep_multicolor, ssor_apply, ssor_sweep, ssor_sweep_multicolor  # noqa: E402,F401
