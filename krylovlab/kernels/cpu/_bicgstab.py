"""BiCGSTAB kernels: fused SpMV-with-dots and vector updates, and the whole
right-preconditioned BiCGSTAB solve for CSR operators.

Each iteration moves A twice and the vectors a few times; fusing the dot
products into the passes that produce their operands keeps it to
five vector sweeps besides the two SpMVs:

* ``spmv_dot_with``:  v ← A p;  return r̃ᴴ v
* ``axpy_norm``:      s ← s − α v;  return ‖s‖²        (in place on r)
* ``spmv_dots2``:     t ← A s;  return (tᴴ s, tᴴ t)
* ``bicgstab_xr``:    x ← x + D(α p + ω s);  r ← s − ω t;  return (‖r‖², r̃ᴴ r)
* ``bicgstab_p``:     p ← r + β (p − ω v)

With Jacobi, D⁻¹ is folded into the matrix (A·D⁻¹), so p̂ = D p is never formed.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._blas import by_size, norm2_parallel, norm2_serial
from ._gmres import _residual_parallel, _residual_serial

_jit = dict(nogil=True, cache=True, fastmath=False)

# keep in sync with krylovlab._result.Status
_RTOL, _MAXITER, _BREAKDOWN, _NANORINF = 2, -3, -5, -9


@nb.njit(**_jit)
def spmv_dot_with_serial(indptr, indices, data, x, z, y):
    """y ← A x; return zᴴ y (one pass)."""
    n = indptr.shape[0] - 1
    s = y.dtype.type(0)
    for i in range(n):
        acc = y.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += data[k] * x[np.uint64(indices[k])]
        y[i] = acc
        s += np.conj(z[i]) * acc
    return s


@nb.njit(parallel=True, **_jit)
def spmv_dot_with_parallel(indptr, indices, data, x, z, y):
    n = indptr.shape[0] - 1
    s = y.dtype.type(0)
    for i in nb.prange(n):
        acc = y.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += data[k] * x[np.uint64(indices[k])]
        y[i] = acc
        s += np.conj(z[i]) * acc
    return s


@nb.njit(**_jit)
def spmv_dots2_serial(indptr, indices, data, x, y):
    """y ← A x; return (yᴴ x, ‖y‖²)."""
    n = indptr.shape[0] - 1
    s = y.dtype.type(0)
    tt = 0.0
    for i in range(n):
        acc = y.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += data[k] * x[np.uint64(indices[k])]
        y[i] = acc
        s += np.conj(acc) * x[i]
        tt += acc.real * acc.real + acc.imag * acc.imag
    return s, tt


@nb.njit(parallel=True, **_jit)
def spmv_dots2_parallel(indptr, indices, data, x, y):
    n = indptr.shape[0] - 1
    s = y.dtype.type(0)
    tt = 0.0
    for i in nb.prange(n):
        acc = y.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += data[k] * x[np.uint64(indices[k])]
        y[i] = acc
        s += np.conj(acc) * x[i]
        tt += acc.real * acc.real + acc.imag * acc.imag
    return s, tt


@nb.njit(**_jit)
def axpy_norm_serial(alpha, v, s):
    """s ← s − α v; return ‖s‖²."""
    ss = 0.0
    for i in range(s.shape[0]):
        si = s[i] - alpha * v[i]
        s[i] = si
        ss += si.real * si.real + si.imag * si.imag
    return ss


@nb.njit(parallel=True, **_jit)
def axpy_norm_parallel(alpha, v, s):
    ss = 0.0
    for i in nb.prange(s.shape[0]):
        si = s[i] - alpha * v[i]
        s[i] = si
        ss += si.real * si.real + si.imag * si.imag
    return ss


@nb.njit(**_jit)
def bicgstab_xr_serial(alpha, omega, p, t, rt, d, x, s):
    """x ← x + D(α p + ω s);  s ← s − ω t (becomes r);  return (‖r‖², r̃ᴴ r).

    D = diag(d), or the identity when d is empty.
    """
    scaled = d.shape[0] > 0
    rr = 0.0
    rho = s.dtype.type(0)
    for i in range(s.shape[0]):
        si = s[i]
        dx = alpha * p[i] + omega * si
        if scaled:
            dx = d[i] * dx
        x[i] += dx
        ri = si - omega * t[i]
        s[i] = ri
        rr += ri.real * ri.real + ri.imag * ri.imag
        rho += np.conj(rt[i]) * ri
    return rr, rho


@nb.njit(parallel=True, **_jit)
def bicgstab_xr_parallel(alpha, omega, p, t, rt, d, x, s):
    scaled = d.shape[0] > 0
    rr = 0.0
    rho = s.dtype.type(0)
    for i in nb.prange(s.shape[0]):
        si = s[i]
        dx = alpha * p[i] + omega * si
        if scaled:
            dx = d[i] * dx
        x[i] += dx
        ri = si - omega * t[i]
        s[i] = ri
        rr += ri.real * ri.real + ri.imag * ri.imag
        rho += np.conj(rt[i]) * ri
    return rr, rho


@nb.njit(**_jit)
def bicgstab_p_serial(beta, omega, r, v, p):
    """p ← r + β (p − ω v)."""
    for i in range(p.shape[0]):
        p[i] = r[i] + beta * (p[i] - omega * v[i])


@nb.njit(parallel=True, **_jit)
def bicgstab_p_parallel(beta, omega, r, v, p):
    for i in nb.prange(p.shape[0]):
        p[i] = r[i] + beta * (p[i] - omega * v[i])


@nb.njit(**_jit)
def _axpy_scaled(alpha, p, d, x, parallel):
    """x ← x + α D p (the half-step exit)."""
    scaled = d.shape[0] > 0
    for i in range(x.shape[0]):
        if scaled:
            x[i] += alpha * d[i] * p[i]
        else:
            x[i] += alpha * p[i]


@nb.njit(**_jit)
def bicgstab_csr(indptr, indices, data, data_pc, inv_diag, b, x, tol, maxiter, hist, x0_nonzero,
                 parallel, eps):
    """Right-preconditioned BiCGSTAB on CSR A (no preconditioner or Jacobi).

    ``data_pc`` holds A·D⁻¹ (``data`` itself without a preconditioner).
    ``hist`` (length maxiter + 1, or 0) receives ‖r_k‖ (recursive).  ``x`` is
    updated in place.  Returns ``(iterations, status, ‖r‖, nmatvec, kind)``
    where ``kind`` is 0, or 1 for a ρ breakdown, 2 for an ω breakdown and 3
    for r̃ᴴv = 0.
    """
    n = b.shape[0]
    record = hist.shape[0] > 0
    r = np.empty_like(b)
    nmv = 0
    if x0_nonzero:
        if parallel:
            rr = _residual_parallel(indptr, indices, data, b, x, r)
        else:
            rr = _residual_serial(indptr, indices, data, b, x, r)
        nmv += 1
        rn = np.sqrt(rr)
    else:
        r[:] = b
        rn = norm2_parallel(r) if parallel else norm2_serial(r)
    if record:
        hist[0] = rn
    if not np.isfinite(rn):
        return 0, _NANORINF, rn, nmv, 0
    if rn <= tol:
        return 0, _RTOL, rn, nmv, 0
    rt = r.copy()  # shadow residual r̃ = r₀
    rtn = rn
    p = r.copy()
    v = np.zeros_like(b)
    t = np.empty_like(b)
    rho = rt.dtype.type(rn * rn)  # r̃ᴴ r₀
    alpha = rho * 0
    omega = rho * 0 + 1
    rho_prev = rho
    tiny = eps * eps
    for it in range(1, maxiter + 1):
        if it > 1:
            beta = (rho / rho_prev) * (alpha / omega)
            # p ← r + β (p − ω v)
            if parallel:
                bicgstab_p_parallel(beta, omega, r, v, p)
            else:
                bicgstab_p_serial(beta, omega, r, v, p)
        # v ← A D p;  r̃ᴴ v
        if parallel:
            rv = spmv_dot_with_parallel(indptr, indices, data_pc, p, rt, v)
        else:
            rv = spmv_dot_with_serial(indptr, indices, data_pc, p, rt, v)
        nmv += 1
        if not np.isfinite(abs(rv)):
            return it - 1, _NANORINF, rn, nmv, 0
        if rv == 0:
            return it - 1, _BREAKDOWN, rn, nmv, 3
        alpha = rho / rv
        # s ← r − α v  (in r's storage)
        ss = axpy_norm_parallel(alpha, v, r) if parallel else axpy_norm_serial(alpha, v, r)
        sn = np.sqrt(ss)
        if not np.isfinite(sn):
            return it, _NANORINF, sn, nmv, 0
        if sn <= tol:
            # x ← x + α D p: converged at the half step
            _axpy_scaled(alpha, p, inv_diag, x, parallel)
            if record:
                hist[it] = sn
            return it, _RTOL, sn, nmv, 0
        # t ← A D s;  ω ← tᴴs / tᴴt
        if parallel:
            ts, tt = spmv_dots2_parallel(indptr, indices, data_pc, r, t)
        else:
            ts, tt = spmv_dots2_serial(indptr, indices, data_pc, r, t)
        nmv += 1
        if not (np.isfinite(tt) and np.isfinite(abs(ts))):
            return it, _NANORINF, sn, nmv, 0
        if tt == 0.0 or abs(ts) <= tiny * np.sqrt(tt) * sn:
            # ω = 0: the method cannot continue; keep the half-step progress
            _axpy_scaled(alpha, p, inv_diag, x, parallel)
            if record:
                hist[it] = sn
            return it, _BREAKDOWN, sn, nmv, 2
        omega = ts / tt
        # x ← x + D(α p + ω s);  r ← s − ω t;  ρ ← r̃ᴴ r
        if parallel:
            rr, rho_new = bicgstab_xr_parallel(alpha, omega, p, t, rt, inv_diag, x, r)
        else:
            rr, rho_new = bicgstab_xr_serial(alpha, omega, p, t, rt, inv_diag, x, r)
        rn = np.sqrt(rr)
        if record:
            hist[it] = rn
        if not np.isfinite(rn):
            return it, _NANORINF, rn, nmv, 0
        if rn <= tol:
            return it, _RTOL, rn, nmv, 0
        rho_prev = rho
        rho = rho_new
        if rho == 0 or abs(rho) <= tiny * rtn * rn:
            return it, _BREAKDOWN, rn, nmv, 1
    return maxiter, _MAXITER, rn, nmv, 0


# ------------------------------------------------------------- size dispatch
spmv_dot_with = by_size(spmv_dot_with_serial, spmv_dot_with_parallel, -1)
spmv_dots2 = by_size(spmv_dots2_serial, spmv_dots2_parallel, -1)
axpy_norm = by_size(axpy_norm_serial, axpy_norm_parallel, -1)
bicgstab_xr = by_size(bicgstab_xr_serial, bicgstab_xr_parallel, -1)
bicgstab_p = by_size(bicgstab_p_serial, bicgstab_p_parallel, -1)
