"""Sketching and row-action kernels (numba, ``cache=True``).

What they compute (A is m × n, dense C-ordered or raw CSR arrays):

* ``sparse_sign_dense`` / ``sparse_sign_csr`` — ``out ← S A`` for a sparse
  sign sketch S (d × m) given column-wise: column i of S has ``s`` nonzeros
  ``signs[i, t]`` in rows ``rows[i, t]``.  CountSketch is the case s = 1.
* ``fwht_rows`` — in-place unnormalised Walsh–Hadamard transform along axis
  0 of an (M × n) array, M a power of two (the H of the SRHT).
* ``normal_dense`` / ``normal_csr`` — one pass over the rows of A that gives
  ``q ← A w`` (or ``q ← b − A w``) *and* ``t ← Aᵀ q``: each row is read once
  and used twice while it sits in cache.  This is the product the
  sketch-preconditioned CGLS iteration needs, at the memory cost of one
  matrix–vector product instead of two.
* ``kaczmarz_dense`` / ``kaczmarz_csr`` — one sweep of row projections
  ``x ← x + (b_i − a_i·x)/‖a_i‖² · a_iᵀ`` over a given row sequence.
* ``coordinate_dense`` / ``coordinate_csr`` — one sweep of randomized
  coordinate descent for SPD A, keeping ``r = b − A x`` up to date.

Rules followed (see shared/background/perf-baseline.md): unsigned casts on
CSR index reads, serial variants for small problems, ``cache=True``.  Dot
products inside the row loops may be reassociated (``fastmath={'reassoc'}``)
so LLVM can vectorise them; that changes rounding order only.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_jit = dict(nogil=True, cache=True)
_jit_fast = dict(nogil=True, cache=True, fastmath={"reassoc", "contract"})

#: rows × columns of A above which the threaded variants are used
PARALLEL_WORK = 400_000
_COL_BLOCK = 64


# --------------------------------------------------------------- sparse sign / CountSketch
@nb.njit(**_jit)
def _sparse_sign_dense_block(A, rows, signs, out, j0, j1):
    m = A.shape[0]
    s = rows.shape[1]
    for i in range(m):
        for t in range(s):
            r = np.uint64(rows[i, t])
            g = signs[i, t]
            for j in range(np.uint64(j0), np.uint64(j1)):  # unsigned: see _fwht_block
                out[r, j] += g * A[i, j]  # (S A)[r, :] += S[r, i] · A[i, :]


@nb.njit(**_jit)
def sparse_sign_dense_serial(A, rows, signs, out):
    """out ← out + S A for dense A (m × n) and a column-wise sparse sign S."""
    _sparse_sign_dense_block(A, rows, signs, out, 0, A.shape[1])


@nb.njit(parallel=True, **_jit)
def sparse_sign_dense_parallel(A, rows, signs, out):
    """Threaded over blocks of columns of A (no write conflicts, cache-sized output stripes)."""
    n = A.shape[1]
    nblk = (n + _COL_BLOCK - 1) // _COL_BLOCK
    for b in nb.prange(nblk):
        j0 = b * _COL_BLOCK
        j1 = min(n, j0 + _COL_BLOCK)
        _sparse_sign_dense_block(A, rows, signs, out, j0, j1)


def sparse_sign_dense(A, rows, signs, out):
    """out ← out + S A (dense A); picks the serial or threaded variant by size."""
    if A.shape[0] * A.shape[1] >= PARALLEL_WORK and A.shape[1] >= 2 * _COL_BLOCK:
        sparse_sign_dense_parallel(A, rows, signs, out)
    else:
        sparse_sign_dense_serial(A, rows, signs, out)


@nb.njit(**_jit_fast)
def _gather_rows_range(A, ptr, src, sgn, out, r0, r1):
    n = A.shape[1]
    for r in range(r0, r1):
        for t in range(np.uint64(ptr[r]), np.uint64(ptr[r + 1])):
            i = np.uint64(src[t])
            g = sgn[t]
            for j in range(n):
                out[r, j] += g * A[i, j]


@nb.njit(**_jit_fast)
def gather_rows_dense_serial(A, ptr, src, sgn, out):
    """out[r, :] += Σ_t sgn[t]·A[src[t], :] over t in [ptr[r], ptr[r+1]) — S A with S given row-wise.

    Each output row is built in cache from whole contiguous rows of A, so for
    a CountSketch (one entry per column of S) A is streamed exactly once and
    every output row written once; rows of ``out`` are independent.
    """
    _gather_rows_range(A, ptr, src, sgn, out, 0, out.shape[0])


@nb.njit(parallel=True, **_jit_fast)
def gather_rows_dense_parallel(A, ptr, src, sgn, out):
    d = out.shape[0]
    nblk = 64
    for b in nb.prange(nblk):
        _gather_rows_range(A, ptr, src, sgn, out, b * d // nblk, (b + 1) * d // nblk)


def gather_rows_dense(A, ptr, src, sgn, out):
    """out ← out + S A for dense A and S in row-wise (CSR-like) form; serial or threaded by size."""
    if A.shape[0] * A.shape[1] >= PARALLEL_WORK and out.shape[0] >= 64:
        gather_rows_dense_parallel(A, ptr, src, sgn, out)
    else:
        gather_rows_dense_serial(A, ptr, src, sgn, out)


@nb.njit(**_jit)
def _sparse_sign_csr_range(indptr, indices, data, rows, signs, out, i0, i1):
    s = rows.shape[1]
    for i in range(i0, i1):
        k0 = np.uint64(indptr[i])
        k1 = np.uint64(indptr[i + 1])
        for t in range(s):
            r = np.uint64(rows[i, t])
            g = signs[i, t]
            for k in range(k0, k1):
                out[r, np.uint64(indices[k])] += g * data[k]


@nb.njit(**_jit)
def sparse_sign_csr_serial(indptr, indices, data, rows, signs, out):
    """out ← out + S A for CSR A."""
    _sparse_sign_csr_range(indptr, indices, data, rows, signs, out, 0, indptr.shape[0] - 1)


@nb.njit(parallel=True, **_jit)
def sparse_sign_csr_parallel(indptr, indices, data, rows, signs, out, nch=2):
    """Threaded over ``nch`` row chunks, each into a private copy of out, then summed."""
    m = indptr.shape[0] - 1
    buf = np.zeros((nch, out.shape[0], out.shape[1]), dtype=out.dtype)
    for c in nb.prange(nch):
        _sparse_sign_csr_range(indptr, indices, data, rows, signs, buf[c], c * m // nch, (c + 1) * m // nch)
    for c in range(nch):
        out += buf[c]


def sparse_sign_csr(indptr, indices, data, rows, signs, out):
    """out ← out + S A (CSR A); serial or threaded by size."""
    if data.shape[0] * rows.shape[1] >= PARALLEL_WORK and out.size <= 64_000_000:
        sparse_sign_csr_parallel(indptr, indices, data, rows, signs, out, nb.get_num_threads())
    else:
        sparse_sign_csr_serial(indptr, indices, data, rows, signs, out)


# ------------------------------------------------------------------------- Walsh–Hadamard
@nb.njit(**_jit)
def _fwht_block(X, j0, j1):
    # the column loop runs on unsigned bounds: from a signed runtime start numba keeps a
    # negative-index test in the loop, and LLVM then does not vectorise it
    j0 = np.uint64(j0)
    j1 = np.uint64(j1)
    M = X.shape[0]
    h = 1
    while h < M:
        for i in range(0, M, 2 * h):
            for k in range(i, i + h):
                for j in range(j0, j1):
                    u = X[k, j]
                    v = X[k + h, j]
                    X[k, j] = u + v  # butterfly: (u, v) ← (u + v, u − v)
                    X[k + h, j] = u - v
        h *= 2


@nb.njit(**_jit)
def fwht_rows_serial(X):
    """X ← H X in place (H the unnormalised M × M Hadamard matrix, M = X.shape[0] a power of 2)."""
    _fwht_block(X, 0, X.shape[1])


@nb.njit(parallel=True, **_jit)
def fwht_rows_parallel(X, nblk=2):
    """`fwht_rows_serial` on ``nblk`` column stripes, one per thread: wide stripes keep each row's
    part contiguous (64-column stripes measured 2-3x slower than the serial transform)."""
    n = X.shape[1]
    for b in nb.prange(nblk):
        _fwht_block(X, b * n // nblk, (b + 1) * n // nblk)


def fwht_rows(X):
    """X ← H X along axis 0 (in place); X.shape[0] must be a power of two."""
    M = X.shape[0]
    if M & (M - 1):
        raise ValueError(f"fwht_rows needs a power-of-two number of rows, got {M}")
    threads = nb.get_num_threads()
    if X.size >= PARALLEL_WORK and X.shape[1] >= 2 * _COL_BLOCK and threads > 1:
        fwht_rows_parallel(X, min(threads, X.shape[1] // _COL_BLOCK))
    else:
        fwht_rows_serial(X)


# ------------------------------------------------------------ fused q = A w, t = Aᵀ q
@nb.njit(**_jit_fast)
def _normal_dense_range(A, w, b, residual, q, t, i0, i1):
    """Rows [i0, i1) of the fused pass, four rows at a time.

    Blocking by four halves the loads of w and t per entry of A (the row pair of
    loops reads w once per four dot products and updates t once per four rows),
    which is what kept the one-row version at ~13 GB/s against ~27 GB/s for a
    plain read of A on our machines; the four rows themselves are re-read from L1.
    """
    n = A.shape[1]
    i = i0
    while i + 4 <= i1:
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for j in range(n):
            wj = w[j]
            s0 += A[i, j] * wj
            s1 += A[i + 1, j] * wj
            s2 += A[i + 2, j] * wj
            s3 += A[i + 3, j] * wj
        if residual:
            s0 = b[i] - s0
            s1 = b[i + 1] - s1
            s2 = b[i + 2] - s2
            s3 = b[i + 3] - s3
        q[i] = s0
        q[i + 1] = s1
        q[i + 2] = s2
        q[i + 3] = s3
        for j in range(n):
            t[j] += s0 * A[i, j] + s1 * A[i + 1, j] + s2 * A[i + 2, j] + s3 * A[i + 3, j]
        i += 4
    while i < i1:
        s = 0.0
        for j in range(n):
            s += A[i, j] * w[j]  # q_i ← a_i · w
        if residual:
            s = b[i] - s  # q_i ← b_i − a_i · w
        q[i] = s
        for j in range(n):
            t[j] += s * A[i, j]  # t ← t + q_i a_iᵀ
        i += 1


@nb.njit(**_jit_fast)
def normal_dense_serial(A, w, b, residual, q, t):
    """q ← A w (or b − A w when ``residual``); t ← Aᵀ q.  One pass over dense A."""
    t[:] = 0.0
    _normal_dense_range(A, w, b, residual, q, t, 0, A.shape[0])


@nb.njit(parallel=True, **_jit_fast)
def normal_dense_parallel(A, w, b, residual, q, t, nch=2):
    m, n = A.shape
    buf = np.zeros((nch, n))
    for c in nb.prange(nch):
        _normal_dense_range(A, w, b, residual, q, buf[c], c * m // nch, (c + 1) * m // nch)
    t[:] = 0.0
    for c in range(nch):
        for j in range(n):
            t[j] += buf[c, j]


def normal_dense(A, w, b, residual, q, t):
    """q ← A w (or b − A w); t ← Aᵀ q, reading each row of A once."""
    if A.shape[0] * A.shape[1] >= PARALLEL_WORK:
        normal_dense_parallel(A, w, b, residual, q, t, nb.get_num_threads())
    else:
        normal_dense_serial(A, w, b, residual, q, t)


@nb.njit(**_jit_fast)
def _normal_csr_range(indptr, indices, data, w, b, residual, q, t, i0, i1):
    for i in range(i0, i1):
        k0 = np.uint64(indptr[i])
        k1 = np.uint64(indptr[i + 1])
        s = 0.0
        for k in range(k0, k1):
            s += data[k] * w[np.uint64(indices[k])]
        if residual:
            s = b[i] - s
        q[i] = s
        for k in range(k0, k1):
            t[np.uint64(indices[k])] += s * data[k]


@nb.njit(**_jit_fast)
def normal_csr_serial(indptr, indices, data, w, b, residual, q, t):
    """q ← A w (or b − A w); t ← Aᵀ q for CSR A, one pass."""
    t[:] = 0.0
    _normal_csr_range(indptr, indices, data, w, b, residual, q, t, 0, indptr.shape[0] - 1)


@nb.njit(parallel=True, **_jit_fast)
def normal_csr_parallel(indptr, indices, data, w, b, residual, q, t, nch=2):
    m = indptr.shape[0] - 1
    n = t.shape[0]
    buf = np.zeros((nch, n))
    for c in nb.prange(nch):
        _normal_csr_range(indptr, indices, data, w, b, residual, q, buf[c], c * m // nch, (c + 1) * m // nch)
    t[:] = 0.0
    for c in range(nch):
        for j in range(n):
            t[j] += buf[c, j]


def normal_csr(indptr, indices, data, w, b, residual, q, t):
    """q ← A w (or b − A w); t ← Aᵀ q for CSR A; serial or threaded by size."""
    if data.shape[0] >= PARALLEL_WORK:
        normal_csr_parallel(indptr, indices, data, w, b, residual, q, t, nb.get_num_threads())
    else:
        normal_csr_serial(indptr, indices, data, w, b, residual, q, t)


# ------------------------------------------------------------------ row-action sweeps
@nb.njit(**_jit_fast)
def kaczmarz_dense(A, b, x, order, inv_norm2):
    """For i in ``order``: x ← x + (b_i − a_i·x)·inv_norm2[i]·a_iᵀ (rows with inv_norm2 = 0 skipped)."""
    n = A.shape[1]
    for idx in range(order.shape[0]):
        i = np.uint64(order[idx])
        c = inv_norm2[i]
        if c == 0.0:
            continue
        s = 0.0
        for j in range(n):
            s += A[i, j] * x[j]
        g = (b[i] - s) * c  # step length along a_i
        for j in range(n):
            x[j] += g * A[i, j]


@nb.njit(**_jit_fast)
def kaczmarz_csr(indptr, indices, data, b, x, order, inv_norm2):
    """CSR version of `kaczmarz_dense`."""
    for idx in range(order.shape[0]):
        i = np.uint64(order[idx])
        c = inv_norm2[i]
        if c == 0.0:
            continue
        k0 = np.uint64(indptr[i])
        k1 = np.uint64(indptr[i + 1])
        s = 0.0
        for k in range(k0, k1):
            s += data[k] * x[np.uint64(indices[k])]
        g = (b[i] - s) * c
        for k in range(k0, k1):
            x[np.uint64(indices[k])] += g * data[k]


@nb.njit(**_jit_fast)
def coordinate_dense(A, x, r, order, inv_diag):
    """Randomized coordinate descent sweep for SPD A: x_j ← x_j + r_j/A_jj; r ← r − δ·A[:, j]."""
    n = A.shape[0]
    for idx in range(order.shape[0]):
        j = np.uint64(order[idx])
        d = r[j] * inv_diag[j]
        x[j] += d
        for i in range(n):
            r[i] -= d * A[j, i]  # A symmetric: column j = row j


@nb.njit(**_jit_fast)
def coordinate_csr(indptr, indices, data, x, r, order, inv_diag):
    """CSR version of `coordinate_dense` (A symmetric, so row j is column j)."""
    for idx in range(order.shape[0]):
        j = np.uint64(order[idx])
        d = r[j] * inv_diag[j]
        x[j] += d
        for k in range(np.uint64(indptr[j]), np.uint64(indptr[j + 1])):
            r[np.uint64(indices[k])] -= d * data[k]
