"""Algebraic-multigrid kernels (numba): a whole V-cycle, AMG-preconditioned CG,
and the compatible weighted matching used by bootstrap AMG.

The hierarchy is passed as *packed* raw CSR arrays, so one jitted call can walk
every level without returning to Python:

* ``nl[l]``                       size of level l (l = 0 … L−1; L−1 is the coarsest)
* ``a_ptr, a_idx, a_dat``         the level matrices A_0 … A_{L−2}, concatenated;
  level l's ``indptr`` is ``a_ptr[po[l] : po[l] + nl[l] + 1]`` (local offsets) and its
  ``indices``/``data`` start at ``ao[l]``
* ``p_*`` / ``r_*``               prolongations P_l (n_l × n_{l+1}) and restrictions
  R_l (n_{l+1} × n_l), packed the same way with offsets ``pp, po_`` / ``rp, ro``
* ``dinv``                        1 / diag(A_l), all levels concatenated at ``vo[l]``
* ``lo, up``                      per row, where the strictly lower part ends and the
  strictly upper part starts (`split_diagonal`), concatenated at ``vo[l]``
* ``cinv``                        dense pseudo-inverse of the coarsest matrix (row major)
* ``xw, bw, rw``                  work vectors, level l at ``vo[l]``

Smoothing is Gauss–Seidel (ω = 1, serial, as pyamg's): symmetric sweeps use
the fused variant `_sgs_fused` below, one-directional sweeps the relaxation
family's `sor_sweep`; or damped Jacobi (threaded above the size threshold);
``sweep`` is 0 = symmetric (forward then backward), 1 = forward, 2 = backward.
Residuals, restriction, prolongation and the CG vector updates use ``prange``
on levels of at least ``PARALLEL_THRESHOLD`` unknowns.  With Gauss–Seidel the
cycle does the same arithmetic as pyamg's ``MultilevelSolver`` V-cycle with a
``'pinv'`` coarse solver, up to summation order.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._blas import (
    axpby_parallel,
    axpby_serial,
    cg_update_parallel,
    cg_update_serial,
    dot_parallel,
    dot_serial,
    norm2_parallel,
    norm2_serial,
    spmv_dot_parallel,
    spmv_dot_serial,
    spmv_parallel,
    spmv_serial,
)
from ._relax import sor_sweep

_jit = dict(nogil=True, cache=True)

# keep in sync with krylovlab._result.Status
_RTOL, _MAXITER, _INDEFINITE, _NANORINF, _PC_FAILED = 2, -3, -8, -9, -11

GAUSS_SEIDEL, JACOBI = 0, 1
SYMMETRIC, FORWARD, BACKWARD = 0, 1, 2


# ------------------------------------------------------------------ level pieces
@nb.njit(**_jit)
def _residual_serial(indptr, indices, data, x, b, r):
    """r ← b − A x."""
    for i in range(b.shape[0]):
        acc = b[i]
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc -= data[k] * x[np.uint64(indices[k])]
        r[i] = acc


@nb.njit(parallel=True, **_jit)
def _residual_parallel(indptr, indices, data, x, b, r):
    """r ← b − A x (rows split over threads)."""
    for i in nb.prange(b.shape[0]):
        acc = b[i]
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc -= data[k] * x[np.uint64(indices[k])]
        r[i] = acc


@nb.njit(**_jit)
def _spmv_add_serial(indptr, indices, data, xc, x):
    """x ← x + P xc."""
    for i in range(x.shape[0]):
        acc = x[i]
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += data[k] * xc[np.uint64(indices[k])]
        x[i] = acc


@nb.njit(parallel=True, **_jit)
def _spmv_add_parallel(indptr, indices, data, xc, x):
    """x ← x + P xc (rows split over threads)."""
    for i in nb.prange(x.shape[0]):
        acc = x[i]
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += data[k] * xc[np.uint64(indices[k])]
        x[i] = acc


@nb.njit(**_jit)
def _jacobi_sweep_serial(indptr, indices, data, dinv, omega, x, b, tmp):
    """x ← x + ω D⁻¹ (b − A x)  (tmp holds the residual)."""
    _residual_serial(indptr, indices, data, x, b, tmp)
    for i in range(x.shape[0]):
        x[i] += omega * dinv[i] * tmp[i]


@nb.njit(parallel=True, **_jit)
def _jacobi_sweep_parallel(indptr, indices, data, dinv, omega, x, b, tmp):
    """x ← x + ω D⁻¹ (b − A x), threaded."""
    _residual_parallel(indptr, indices, data, x, b, tmp)
    for i in nb.prange(x.shape[0]):
        x[i] += omega * dinv[i] * tmp[i]


@nb.njit(**_jit)
def _smooth(indptr, indices, data, dinv, x, b, tmp, kind, sweep, iters, omega, reverse, parallel):
    """Apply ``iters`` smoothing steps in place.

    ``reverse`` flips forward/backward so the post-smoother is the adjoint of
    the pre-smoother (this keeps the V-cycle symmetric for one-directional
    Gauss–Seidel too).
    """
    n = x.shape[0]
    for _ in range(iters):
        if kind == GAUSS_SEIDEL:
            s = sweep
            if reverse and s == FORWARD:
                s = BACKWARD
            elif reverse and s == BACKWARD:
                s = FORWARD
            if s == SYMMETRIC or s == FORWARD:
                sor_sweep(indptr, indices, data, x, b, 1.0, 0, n, 1)  # x ← GS forward
            if s == SYMMETRIC or s == BACKWARD:
                sor_sweep(indptr, indices, data, x, b, 1.0, n - 1, -1, -1)  # x ← GS backward
        else:
            if parallel:
                _jacobi_sweep_parallel(indptr, indices, data, dinv, omega, x, b, tmp)
            else:
                _jacobi_sweep_serial(indptr, indices, data, dinv, omega, x, b, tmp)



# ------------------------------------------- fused symmetric Gauss–Seidel (own variant)
# A symmetric sweep is a forward sweep followed by a backward sweep.  At row i
# the backward sweep sees the same x_j (j < i) as the forward sweep did (rows
# below i are revisited only later), so the forward sweep stores the lower sum
# s_i = Σ_{j<i} a_ij x_j and the backward sweep reads only the upper part of
# the row.  After the backward sweep, the residual is
#     r_i = b_i − Σ_j a_ij x_j = s_i − Σ_{j<i} a_ij x_j   (x final),
# one more pass over the lower part only, which threads well.  A sweep from
# x = 0 reads only the lower part in its forward half.  Altogether pre-smoothing
# and residual cost 1.5 passes over A instead of 3, post-smoothing 1.5 instead
# of 2.  ``lo[i]`` is where row i's strictly-upper part ends its lower part
# (first k with column ≥ i) and ``up[i]`` where its strictly-upper part starts.
@nb.njit(**_jit)
def _sgs_fused(indptr, indices, data, dinv, lo, up, x, b, s, from_zero):
    """One symmetric Gauss–Seidel sweep in place; s receives the lower sums."""
    n = x.shape[0]
    # forward: x_i ← (b_i − Σ_{j<i} a_ij x_j^new − Σ_{j>i} a_ij x_j^old) / a_ii
    for i in range(n):
        lower = 0.0 * b[i]
        for k in range(np.uint64(indptr[i]), np.uint64(lo[i])):
            lower += data[k] * x[np.uint64(indices[k])]
        s[i] = lower
        if from_zero:
            x[i] = (b[i] - lower) * dinv[i]
        else:
            upper = 0.0 * b[i]
            for k in range(np.uint64(up[i]), np.uint64(indptr[i + 1])):
                upper += data[k] * x[np.uint64(indices[k])]
            x[i] = (b[i] - lower - upper) * dinv[i]
    # backward: same formula in reverse order, lower sums reused from s
    for i in range(n - 1, -1, -1):
        upper = 0.0 * b[i]
        for k in range(np.uint64(up[i]), np.uint64(indptr[i + 1])):
            upper += data[k] * x[np.uint64(indices[k])]
        x[i] = (b[i] - s[i] - upper) * dinv[i]


@nb.njit(**_jit)
def _lower_residual_serial(indptr, indices, data, lo, x, s):
    """s ← s − (strictly lower part of A) x: the residual after `_sgs_fused`."""
    for i in range(x.shape[0]):
        acc = s[i]
        for k in range(np.uint64(indptr[i]), np.uint64(lo[i])):
            acc -= data[k] * x[np.uint64(indices[k])]
        s[i] = acc


@nb.njit(parallel=True, **_jit)
def _lower_residual_parallel(indptr, indices, data, lo, x, s):
    """s ← s − (strictly lower part of A) x, rows split over threads."""
    for i in nb.prange(x.shape[0]):
        acc = s[i]
        for k in range(np.uint64(indptr[i]), np.uint64(lo[i])):
            acc -= data[k] * x[np.uint64(indices[k])]
        s[i] = acc


@nb.njit(**_jit)
def split_diagonal(indptr, indices):
    """For sorted CSR rows: (lo, up) with lo[i] the first k with column ≥ i and
    up[i] the first k with column > i."""
    n = indptr.shape[0] - 1
    lo = np.empty(n, dtype=np.int64)
    up = np.empty(n, dtype=np.int64)
    for i in range(n):
        k = np.int64(indptr[i])
        end = np.int64(indptr[i + 1])
        while k < end and indices[k] < i:
            k += 1
        lo[i] = k
        if k < end and indices[k] == i:
            k += 1
        up[i] = k
    return lo, up

# -------------------------------------------------------------------- V-cycle
@nb.njit(**_jit)
def vcycle(nl, vo, a_ptr, a_idx, a_dat, po, ao, p_ptr, p_idx, p_dat, ppo, pao,
           r_ptr, r_idx, r_dat, rpo, rao, dinv, lo, up, cinv, xw, bw, rw,
           kind, sweep, pre, post, omega, b, x, threshold):
    """One V-cycle for A x = b from x = 0: x ← B b (B the multigrid operator).

    ``b`` and ``x`` are the finest-level vectors (x is overwritten).  See the
    module docstring for the packed hierarchy layout.
    """
    L = nl.shape[0]
    # ---------------------------------------------------------- down the V
    for lev in range(L - 1):
        n = nl[lev]
        nc = nl[lev + 1]
        par = n >= threshold
        Ai = a_ptr[po[lev]: po[lev] + n + 1]
        Aj = a_idx[ao[lev]: ao[lev] + Ai[n]]
        Av = a_dat[ao[lev]: ao[lev] + Ai[n]]
        xl = x if lev == 0 else xw[vo[lev]: vo[lev] + n]
        bl = b if lev == 0 else bw[vo[lev]: vo[lev] + n]
        rl = rw[vo[lev]: vo[lev] + n]
        dl = dinv[vo[lev]: vo[lev] + n]
        xl[:] = 0.0
        if kind == GAUSS_SEIDEL and sweep == SYMMETRIC and pre > 0:
            lol = lo[vo[lev]: vo[lev] + n]
            upl = up[vo[lev]: vo[lev] + n]
            # x ← S_pre(0, b): symmetric Gauss–Seidel, lower sums kept in r
            for sw in range(pre):
                _sgs_fused(Ai, Aj, Av, dl, lol, upl, xl, bl, rl, sw == 0)
            # r ← b − A x  =  s − L x
            if par:
                _lower_residual_parallel(Ai, Aj, Av, lol, xl, rl)
            else:
                _lower_residual_serial(Ai, Aj, Av, lol, xl, rl)
        else:
            # x ← S_pre(x, b)
            _smooth(Ai, Aj, Av, dl, xl, bl, rl, kind, sweep, pre, omega, False, par)
            # r ← b − A x
            if par:
                _residual_parallel(Ai, Aj, Av, xl, bl, rl)
            else:
                _residual_serial(Ai, Aj, Av, xl, bl, rl)
        # b_c ← R r
        Ri = r_ptr[rpo[lev]: rpo[lev] + nc + 1]
        Rj = r_idx[rao[lev]: rao[lev] + Ri[nc]]
        Rv = r_dat[rao[lev]: rao[lev] + Ri[nc]]
        bc = bw[vo[lev + 1]: vo[lev + 1] + nc]
        if nc >= threshold:
            spmv_parallel(Ri, Rj, Rv, rl, bc)
        else:
            spmv_serial(Ri, Rj, Rv, rl, bc)
    # ------------------------------------------------- coarsest: x_c ← A_c⁺ b_c
    nc = nl[L - 1]
    xc = x if L == 1 else xw[vo[L - 1]: vo[L - 1] + nc]
    bc = b if L == 1 else bw[vo[L - 1]: vo[L - 1] + nc]
    for i in range(nc):
        acc = 0.0 * bc[0]
        for j in range(nc):
            acc += cinv[i * nc + j] * bc[j]
        xc[i] = acc
    # ------------------------------------------------------------ up the V
    for lev in range(L - 2, -1, -1):
        n = nl[lev]
        par = n >= threshold
        Ai = a_ptr[po[lev]: po[lev] + n + 1]
        Aj = a_idx[ao[lev]: ao[lev] + Ai[n]]
        Av = a_dat[ao[lev]: ao[lev] + Ai[n]]
        Pi = p_ptr[ppo[lev]: ppo[lev] + n + 1]
        Pj = p_idx[pao[lev]: pao[lev] + Pi[n]]
        Pv = p_dat[pao[lev]: pao[lev] + Pi[n]]
        xl = x if lev == 0 else xw[vo[lev]: vo[lev] + n]
        bl = b if lev == 0 else bw[vo[lev]: vo[lev] + n]
        rl = rw[vo[lev]: vo[lev] + n]
        dl = dinv[vo[lev]: vo[lev] + n]
        xcl = xw[vo[lev + 1]: vo[lev + 1] + nl[lev + 1]]
        # x ← x + P x_c
        if par:
            _spmv_add_parallel(Pi, Pj, Pv, xcl, xl)
        else:
            _spmv_add_serial(Pi, Pj, Pv, xcl, xl)
        # x ← S_post(x, b)
        if kind == GAUSS_SEIDEL and sweep == SYMMETRIC:
            lol = lo[vo[lev]: vo[lev] + n]
            upl = up[vo[lev]: vo[lev] + n]
            for sw in range(post):
                _sgs_fused(Ai, Aj, Av, dl, lol, upl, xl, bl, rl, False)
        else:
            _smooth(Ai, Aj, Av, dl, xl, bl, rl, kind, sweep, post, omega, True, par)


# ------------------------------------------------------------ AMG-preconditioned CG
@nb.njit(**_jit)
def amg_pcg(nl, vo, a_ptr, a_idx, a_dat, po, ao, p_ptr, p_idx, p_dat, ppo, pao,
            r_ptr, r_idx, r_dat, rpo, rao, dinv, lo, up, cinv, xw, bw, rw,
            kind, sweep, pre, post, omega, threshold,
            b, x, tol, maxiter, hist, x0_nonzero):
    """Preconditioned CG on A_0 with one V-cycle as M; x is updated in place.

    Returns ``(iterations, status, ‖r‖, nmatvec, nprec)`` where ‖r‖ is the
    recursively updated residual norm and status the `Status` integer.
    """
    n = b.shape[0]
    par = n >= threshold
    Ai = a_ptr[0: n + 1]
    Aj = a_idx[0: Ai[n]]
    Av = a_dat[0: Ai[n]]
    r = np.empty_like(b)
    q = np.empty_like(b)
    z = np.empty_like(b)
    record = hist.shape[0] > 0
    nmv = 0
    nprec = 0
    # r ← b − A x0
    if x0_nonzero:
        if par:
            _residual_parallel(Ai, Aj, Av, x, b, r)
        else:
            _residual_serial(Ai, Aj, Av, x, b, r)
        nmv += 1
    else:
        r[:] = b
    rn = norm2_parallel(r) if par else norm2_serial(r)
    if record:
        hist[0] = rn
    if rn <= tol:
        return 0, _RTOL, rn, nmv, nprec
    # z ← B r;  ρ ← rᵀ z
    vcycle(nl, vo, a_ptr, a_idx, a_dat, po, ao, p_ptr, p_idx, p_dat, ppo, pao,
           r_ptr, r_idx, r_dat, rpo, rao, dinv, lo, up, cinv, xw, bw, rw,
           kind, sweep, pre, post, omega, r, z, threshold)
    nprec += 1
    rho = dot_parallel(r, z) if par else dot_serial(r, z)
    if not (np.isfinite(rho) and rho > 0.0):
        return 0, _PC_FAILED, rn, nmv, nprec
    p = z.copy()
    for it in range(1, maxiter + 1):
        # q ← A p;  pAp ← pᵀ q
        if par:
            pap = spmv_dot_parallel(Ai, Aj, Av, p, q)
        else:
            pap = spmv_dot_serial(Ai, Aj, Av, p, q)
        nmv += 1
        if not np.isfinite(pap):
            return it, _NANORINF, rn, nmv, nprec
        if pap <= 0.0:
            return it - 1, _INDEFINITE, rn, nmv, nprec
        alpha = rho / pap
        # x ← x + α p;  r ← r − α q
        if par:
            rr = cg_update_parallel(alpha, p, q, x, r)
        else:
            rr = cg_update_serial(alpha, p, q, x, r)
        rn = np.sqrt(rr)
        if record:
            hist[it] = rn
        if not np.isfinite(rn):
            return it, _NANORINF, rn, nmv, nprec
        if rn <= tol:
            return it, _RTOL, rn, nmv, nprec
        # z ← B r
        vcycle(nl, vo, a_ptr, a_idx, a_dat, po, ao, p_ptr, p_idx, p_dat, ppo, pao,
               r_ptr, r_idx, r_dat, rpo, rao, dinv, lo, up, cinv, xw, bw, rw,
               kind, sweep, pre, post, omega, r, z, threshold)
        nprec += 1
        rho_new = dot_parallel(r, z) if par else dot_serial(r, z)
        if not (np.isfinite(rho_new) and rho_new > 0.0):
            return it, _PC_FAILED, rn, nmv, nprec
        beta = rho_new / rho
        # p ← z + β p
        if par:
            axpby_parallel(1.0, z, beta, p)
        else:
            axpby_serial(1.0, z, beta, p)
        rho = rho_new
    return maxiter, _MAXITER, rn, nmv, nprec


# ------------------------------------------------- compatible weighted matching
@nb.njit(**_jit)
def compatible_matching(indptr, indices, data, w):
    """Greedy compatible weighted matching of the graph of symmetric A.

    The weight of edge (i, j) is ``1 − 2 a_ij w_i w_j / (a_ii w_i² + a_jj w_j²)``
    (D'Ambra & Vassilevski): large when i and j are strongly coupled *and*
    the vector w is locally smooth across the edge.  Vertices are visited in
    order; each unmatched vertex is paired with its unmatched neighbour of
    largest positive weight.  Linear time (a ½-approximation would sort the
    edges first).

    Returns ``agg`` (length n): the aggregate number of every vertex, and the
    number of aggregates.  Unmatched vertices become singletons.
    """
    n = indptr.shape[0] - 1
    diag = np.zeros(n)
    for i in range(n):
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            if np.uint64(indices[k]) == i:
                diag[i] += data[k]
    agg = -np.ones(n, dtype=np.int64)
    nagg = 0
    for i in range(n):
        if agg[i] >= 0:
            continue
        best = -1
        bestw = 0.0
        di = diag[i] * w[i] * w[i]
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            j = np.int64(indices[k])
            if j == i or agg[j] >= 0:
                continue
            den = di + diag[j] * w[j] * w[j]
            if den <= 0.0:
                continue
            wt = 1.0 - 2.0 * data[k] * w[i] * w[j] / den
            if wt > bestw:
                bestw = wt
                best = j
        agg[i] = nagg
        if best >= 0:
            agg[best] = nagg
        nagg += 1
    return agg, nagg
