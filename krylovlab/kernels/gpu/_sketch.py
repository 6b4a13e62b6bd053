"""Sketch kernels on the GPU (CuPy).

Same operators as `krylovlab.kernels.cpu._sketch`; the random draws (rows,
signs, samples) are made on the host by `krylovlab.sketch.sketches` and copied
once, so a seed gives the same S on both devices.

* ``sparse_sign_apply(A, rows, signs, d)`` — S A for a sparse sign sketch
  given column-wise (CountSketch when s = 1): S is built as a cuSPARSE CSR
  matrix and multiplied with dense or sparse A.
* ``fwht_rows(X)`` — in-place unnormalised Walsh–Hadamard transform along
  axis 0 (a raw CUDA butterfly kernel, one launch per level).
* ``srht_apply(A, signs, sample, scale, M, transform)`` — rows ``sample`` of
  scale·F·D·A with F the orthonormal DCT-II (cupyx.scipy.fft) or H/√M.

CuPy is imported when a function is first called, never at import time.
"""

from __future__ import annotations

import math

_FWHT_SRC = r"""
extern "C" __global__
void fwht_level(double* X, const long long M, const long long n, const long long h) {
    // one butterfly (u, v) -> (u + v, u - v) per (pair, column)
    long long tid = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    long long pairs = (M / 2) * n;
    if (tid >= pairs) return;
    long long j = tid % n;
    long long p = tid / n;
    long long i = (p / h) * 2 * h + (p % h);
    double u = X[i * n + j];
    double v = X[(i + h) * n + j];
    X[i * n + j] = u + v;
    X[(i + h) * n + j] = u - v;
}
"""

_kernels = {}


def _fwht_kernel():
    import cupy

    if "fwht" not in _kernels:
        _kernels["fwht"] = cupy.RawKernel(_FWHT_SRC, "fwht_level")
    return _kernels["fwht"]


def _sign_matrix(rows, signs, d):
    """S (d × m) as a cupyx CSC matrix from its column-wise host description."""
    import cupy
    import cupyx.scipy.sparse as csp
    import numpy as np

    m, s = rows.shape
    indptr = np.arange(0, m * s + 1, s)
    return csp.csc_matrix(
        (cupy.asarray(signs.ravel()), cupy.asarray(rows.ravel()), cupy.asarray(indptr)), shape=(d, m)
    ).tocsr()


def sparse_sign_apply(A, rows, signs, d):
    """S A on the device (dense result)."""
    import cupyx.scipy.sparse as csp

    S = _sign_matrix(rows, signs, d)
    if A.ndim == 1:
        return S @ A
    out = S @ A
    return out.toarray() if csp.issparse(out) else out


def fwht_rows(X):
    """X ← H X along axis 0, in place (float64, C-ordered, power-of-two rows)."""
    import cupy

    M, n = X.shape
    if M & (M - 1):
        raise ValueError(f"fwht_rows needs a power-of-two number of rows, got {M}")
    if X.dtype != cupy.float64 or not X.flags.c_contiguous:
        raise TypeError("fwht_rows needs a C-ordered float64 array")
    k = _fwht_kernel()
    pairs = (M // 2) * n
    threads = 256
    blocks = (pairs + threads - 1) // threads
    h = 1
    while h < M:
        k((blocks,), (threads,), (X, cupy.int64(M), cupy.int64(n), cupy.int64(h)))
        h *= 2
    return X


def srht_apply(A, signs, sample, scale, M, transform):
    """Rows ``sample`` of scale · F · D · A on the device (dense result)."""
    import cupy
    import cupyx.scipy.sparse as csp

    vec = A.ndim == 1
    X = A.toarray() if csp.issparse(A) else A
    X = cupy.asarray(X, dtype=cupy.float64).reshape(X.shape[0], -1)
    X = X * cupy.asarray(signs)[:, None]  # D A
    if transform == "dct":
        import cupyx.scipy.fft as cfft

        Y = cfft.dct(X, type=2, norm="ortho", axis=0)
        out = Y[cupy.asarray(sample)] * scale
    else:
        Y = cupy.zeros((M, X.shape[1]), dtype=cupy.float64)
        Y[: X.shape[0]] = X
        fwht_rows(Y)
        out = Y[cupy.asarray(sample)] * (scale / math.sqrt(M))
    return out.reshape(-1) if vec else out
