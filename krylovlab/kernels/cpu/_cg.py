"""Whole-iteration CG loop for CSR operators with no or Jacobi preconditioning.

One call runs the entire solve inside numba, so there is no per-iteration
Python overhead (which dominates below ~10⁴ unknowns).  Each iteration is three
passes over memory, the fewest its two reductions (α needs pᴴAp, β needs ‖r‖²)
allow:

1. ``q ← A p`` fused with ``pᴴq``;
2. ``r ← r − α q`` fused with ``‖r‖²`` (and ``rᴴD⁻¹r`` for Jacobi);
3. ``x ← x + α p`` fused with ``p ← D⁻¹r + β p`` (x is updated one pass late,
   while p still holds the old direction; z = D⁻¹r is never stored).

That moves 12·nnz + 4·n bytes of matrix and 80·n bytes of vectors per
iteration in double precision (88·n for the textbook x/r-then-p order).

Status codes returned are the integer values of `krylovlab.Status`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._blas import (
    axpby_parallel,
    axpby_serial,
    jacobi_parallel,
    jacobi_serial,
    norm2_parallel,
    norm2_serial,
    spmv_dot_parallel,
    spmv_dot_serial,
    spmv_parallel,
    spmv_serial,
)
from ._dia import dia_spmv_dot_parallel, dia_spmv_dot_serial

_jit = dict(cache=True, nogil=True)
# the r update's two reductions may be reassociated (SIMD, several accumulators): with one scalar
# chain each, an add's latency bounds the loop once the vectors are in cache; no finite-math
# assumptions, so the NaN/Inf checks on the sums stay valid
_jit_reduce = dict(cache=True, nogil=True, fastmath={"reassoc"})

# keep in sync with krylovlab._result.Status
_RTOL, _MAXITER, _INDEFINITE, _NANORINF, _PC_FAILED = 2, -3, -8, -9, -11


@nb.njit(**_jit_reduce)
def r_update_serial(alpha, q, r, inv_diag):
    """r ← r − α q; return (‖r‖², rᴴD⁻¹r) (the second is 0 when inv_diag is empty)."""
    precond = inv_diag.shape[0] > 0
    ss = 0.0
    rho = r.dtype.type(0)
    for i in range(r.shape[0]):
        ri = r[i] - alpha * q[i]
        r[i] = ri
        ss += ri.real * ri.real + ri.imag * ri.imag
        if precond:
            rho += np.conj(ri) * (inv_diag[i] * ri)
    return ss, rho


@nb.njit(parallel=True, **_jit_reduce)
def r_update_parallel(alpha, q, r, inv_diag):
    precond = inv_diag.shape[0] > 0
    ss = 0.0
    rho = r.dtype.type(0)
    for i in nb.prange(r.shape[0]):
        ri = r[i] - alpha * q[i]
        r[i] = ri
        ss += ri.real * ri.real + ri.imag * ri.imag
        if precond:
            rho += np.conj(ri) * (inv_diag[i] * ri)
    return ss, rho


@nb.njit(**_jit)
def xp_update_serial(alpha, beta, r, inv_diag, x, p):
    """x ← x + α p, then p ← D⁻¹r + β p (D⁻¹ = I when inv_diag is empty)."""
    precond = inv_diag.shape[0] > 0
    for i in range(x.shape[0]):
        pi = p[i]
        x[i] += alpha * pi
        zi = inv_diag[i] * r[i] if precond else r[i]
        p[i] = zi + beta * pi


@nb.njit(parallel=True, **_jit)
def xp_update_parallel(alpha, beta, r, inv_diag, x, p):
    precond = inv_diag.shape[0] > 0
    for i in nb.prange(x.shape[0]):
        pi = p[i]
        x[i] += alpha * pi
        zi = inv_diag[i] * r[i] if precond else r[i]
        p[i] = zi + beta * pi


@nb.njit(**_jit)
def _finish_x(alpha, p, x, parallel):
    """The x update still owed by the last iteration: x ← x + α p."""
    if parallel:
        axpby_parallel(alpha, p, 1.0, x)
    else:
        axpby_serial(alpha, p, 1.0, x)


@nb.njit(**_jit)
def cg_csr(indptr, indices, data, inv_diag, b, x, tol, maxiter, hist, x0_nonzero, parallel, dia_off, dia_val):
    """Run (Jacobi-preconditioned) CG on CSR A; x is updated in place.

    ``inv_diag`` of length 0 means no preconditioner.  ``hist`` (length
    maxiter + 1, or 0 to skip) receives ‖r_k‖.  ``dia_off`` / ``dia_val``:
    A in row-aligned diagonal storage (`kernels.cpu._dia`), used for the
    products q = A p when ``dia_off`` is not empty (8 instead of 12 bytes per
    entry; the product is bitwise the CSR one, pᴴq is summed in row blocks).
    Returns
    ``(iterations, status, ‖r‖, nmatvec)``; ‖r‖ is the recursively updated
    residual norm.
    """
    n = b.shape[0]
    precond = inv_diag.shape[0] > 0
    record = hist.shape[0] > 0
    r = np.empty_like(b)
    q = np.empty_like(b)
    nmv = 0
    # r ← b − A x0
    if x0_nonzero:
        if parallel:
            spmv_parallel(indptr, indices, data, x, q)
        else:
            spmv_serial(indptr, indices, data, x, q)
        nmv += 1
        for i in range(n):
            r[i] = b[i] - q[i]
    else:
        r[:] = b
    rn = norm2_parallel(r) if parallel else norm2_serial(r)
    if record:
        hist[0] = rn
    if rn <= tol:
        return 0, _RTOL, rn, nmv
    # p ← z = M r;  ρ ← rᴴ z
    p = np.empty_like(b)
    if precond:
        rho = jacobi_parallel(inv_diag, r, p) if parallel else jacobi_serial(inv_diag, r, p)
    else:
        rho = rn * rn + r.dtype.type(0)
        p[:] = r
    rho_sign = 1.0 if rho.real > 0 else -1.0
    curv_sign = 0.0
    for it in range(1, maxiter + 1):
        # q ← A p;  pAp ← pᴴ q
        if dia_off.shape[0] > 0:
            if parallel:
                pap = dia_spmv_dot_parallel(dia_off, dia_val, p, q)
            else:
                pap = dia_spmv_dot_serial(dia_off, dia_val, p, q)
        elif parallel:
            pap = spmv_dot_parallel(indptr, indices, data, p, q)
        else:
            pap = spmv_dot_serial(indptr, indices, data, p, q)
        nmv += 1
        c = pap.real
        if not np.isfinite(c):
            return it, _NANORINF, rn, nmv
        if curv_sign == 0.0:
            curv_sign = 1.0 if c > 0 else -1.0
        if c == 0.0 or c * curv_sign < 0.0:
            return it - 1, _INDEFINITE, rn, nmv
        alpha = rho / pap
        # r ← r − α q;  ‖r‖², ρ' = rᴴD⁻¹r
        if parallel:
            rr, rho_pc = r_update_parallel(alpha, q, r, inv_diag)
        else:
            rr, rho_pc = r_update_serial(alpha, q, r, inv_diag)
        rn = np.sqrt(rr)
        if record:
            hist[it] = rn
        if not np.isfinite(rn):
            _finish_x(alpha, p, x, parallel)
            return it, _NANORINF, rn, nmv
        if rn <= tol:
            _finish_x(alpha, p, x, parallel)
            return it, _RTOL, rn, nmv
        if precond:
            rho_new = rho_pc
            if not (rho_new.real * rho_sign > 0.0):
                _finish_x(alpha, p, x, parallel)
                return it, _PC_FAILED, rn, nmv
        else:
            rho_new = rr + 0 * rho
        beta = rho_new / rho
        if it == maxiter:
            _finish_x(alpha, p, x, parallel)
            break
        # x ← x + α p;  p ← D⁻¹r + β p
        if parallel:
            xp_update_parallel(alpha, beta, r, inv_diag, x, p)
        else:
            xp_update_serial(alpha, beta, r, inv_diag, x, p)
        rho = rho_new
    return maxiter, _MAXITER, rn, nmv
