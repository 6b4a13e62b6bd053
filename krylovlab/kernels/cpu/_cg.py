"""Whole-iteration CG loop for CSR operators with no or Jacobi preconditioning.

One call runs the entire solve inside numba, so there is no per-iteration
Python overhead (which dominates below ~10⁴ unknowns).  The loop fuses
``q ← A p`` with ``pᴴq``, and the x/r updates with ``‖r‖²``; with two threads
and large n it runs close to the memory-bandwidth bound.

Status codes returned are the integer values of `krylovlab.Status`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._blas import (
    axpby_parallel,
    axpby_serial,
    cg_update_parallel,
    cg_update_serial,
    jacobi_parallel,
    jacobi_serial,
    norm2_parallel,
    norm2_serial,
    spmv_dot_parallel,
    spmv_dot_serial,
    spmv_parallel,
    spmv_serial,
)

# keep in sync with krylovlab._result.Status
_RTOL, _MAXITER, _INDEFINITE, _NANORINF, _PC_FAILED = 2, -3, -8, -9, -11


@nb.njit(cache=True, nogil=True)
def cg_csr(indptr, indices, data, inv_diag, b, x, tol, maxiter, hist, x0_nonzero, parallel):
    """Run (Jacobi-preconditioned) CG on CSR A; x is updated in place.

    ``inv_diag`` of length 0 means no preconditioner.  ``hist`` (length
    maxiter + 1, or 0 to skip) receives ‖r_k‖.  Returns
    ``(iterations, status, ‖r‖, nmatvec)``; ‖r‖ is the recursively updated
    residual norm.
    """
    n = b.shape[0]
    precond = inv_diag.shape[0] > 0
    record = hist.shape[0] > 0
    r = np.empty_like(b)
    q = np.empty_like(b)
    z = np.empty_like(b) if precond else r
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
    # z ← M r;  ρ ← rᴴ z
    if precond:
        rho = jacobi_parallel(inv_diag, r, z) if parallel else jacobi_serial(inv_diag, r, z)
    else:
        rho = rn * rn + r.dtype.type(0)
    p = z.copy()
    rho_sign = 1.0 if rho.real > 0 else -1.0
    curv_sign = 0.0
    for it in range(1, maxiter + 1):
        # q ← A p;  pAp ← pᴴ q
        if parallel:
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
        # x ← x + α p;  r ← r − α q
        if parallel:
            rr = cg_update_parallel(alpha, p, q, x, r)
        else:
            rr = cg_update_serial(alpha, p, q, x, r)
        rn = np.sqrt(rr)
        if record:
            hist[it] = rn
        if not np.isfinite(rn):
            return it, _NANORINF, rn, nmv
        if rn <= tol:
            return it, _RTOL, rn, nmv
        if precond:
            rho_new = jacobi_parallel(inv_diag, r, z) if parallel else jacobi_serial(inv_diag, r, z)
            if not (rho_new.real * rho_sign > 0.0):
                return it, _PC_FAILED, rn, nmv
        else:
            rho_new = rr + 0 * rho
        beta = rho_new / rho
        # p ← z + β p
        if parallel:
            axpby_parallel(1.0, z, beta, p)
        else:
            axpby_serial(1.0, z, beta, p)
        rho = rho_new
    return maxiter, _MAXITER, rn, nmv
