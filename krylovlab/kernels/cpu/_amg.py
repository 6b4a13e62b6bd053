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
* ``f_off, f_val``                the finest matrix A_0 again in row-aligned diagonal
  storage (`krylovlab.kernels.cpu._dia`), or an empty ``f_off`` when A_0 is not
  banded or small: then CG's products and red–black sweeps fall back to CSR
* ``f_dm``                        2 × n_0: 1/a_ii on the rows of colour c (red 0,
  black 1) of a two-colouring of A_0's graph, zero elsewhere; no columns when
  A_0 has none (red–black sweeps then fall back to lexicographic ones)
* ``cl``                          coarse levels with red–black sweeps too (banded, two
  colours): their diagonals, values and scalings, ``(offsets, offset starts,
  values, value starts, scalings)`` (see `krylovlab.amg.precond._Packed`)
* ``tt``                          transfers of a grid hierarchy as tensor products of
  one-dimensional ones, ``(dims, off, col, wt, buf)`` (`tensor_transfers`), or
  with an empty ``dims`` (then P_l and R_l are applied from CSR)

Smoothing is Gauss–Seidel (ω = 1, serial, as pyamg's): symmetric sweeps use
the fused variant `_sgs_fused` below, one-directional sweeps the relaxation
family's `sor_sweep`; or damped Jacobi (threaded above the size threshold);
``sweep`` is 0 = symmetric (forward then backward), 1 = forward, 2 = backward,
3 = red–black on the finest level (`_rb_half`: red, black, red before and
after the coarse correction; symmetric lexicographic on the other levels).
Residuals, restriction, prolongation and the CG vector updates use ``prange``
on levels of at least ``PARALLEL_THRESHOLD`` unknowns.  With Gauss–Seidel the
cycle does the same arithmetic as pyamg's ``MultilevelSolver`` V-cycle with a
``'pinv'`` coarse solver, up to summation order.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

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
)
from ._blas import row_dot as _row_dot
from ._blas import spmv_rows_parallel as _spmv_rows_parallel
from ._blas import spmv_rows_serial as _spmv_rows_serial
from ._dia import _BLOCK as _DIA_BLOCK
from ._dia import _rows as _dia_rows
from ._dia import dia_spmv_dot_parallel, dia_spmv_dot_serial
from ._relax import sor_sweep

_jit = dict(nogil=True, cache=True)

# keep in sync with krylovlab._result.Status
_RTOL, _MAXITER, _INDEFINITE, _NANORINF, _PC_FAILED = 2, -3, -8, -9, -11

GAUSS_SEIDEL, JACOBI = 0, 1
SYMMETRIC, FORWARD, BACKWARD, RED_BLACK = 0, 1, 2, 3


# ------------------------------------------------------------------ level pieces
@nb.njit(**_jit)
def _residual_serial(indptr, indices, data, x, b, r):
    """r ← b − A x."""
    for i in range(b.shape[0]):
        r[i] = b[i] - _row_dot(data, indices, x, np.uint64(indptr[i]), np.uint64(indptr[i + 1]))


@nb.njit(parallel=True, **_jit)
def _residual_parallel(indptr, indices, data, x, b, r):
    """r ← b − A x (rows split over threads)."""
    for i in nb.prange(b.shape[0]):
        r[i] = b[i] - _row_dot(data, indices, x, np.uint64(indptr[i]), np.uint64(indptr[i + 1]))


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
    """One symmetric Gauss–Seidel sweep in place; s receives the lower sums.

    A sweep is a chain: x_i needs the x_{i∓1} just computed.  Each row
    therefore sums everything else first and takes the entry nearest the
    diagonal on the side just updated (the last of the lower part going
    forward, the first of the upper part going backward) last, as
    ``x_i = rest·d_i − (a_ij·d_i)·x_j`` with d_i = 1/a_ii: when j is the row
    just computed (i ∓ 1, as in every grid ordering), x_j is taken from a
    register instead of memory, so one row's store waits for the previous
    row's only through a multiply and a subtraction (3D Darcy 32³, finest
    level: 0.49 → 0.30 ms per sweep from zero, 0.49 → 0.38 ms otherwise).
    """
    n = x.shape[0]
    # forward: x_i ← (b_i − Σ_{j<i} a_ij x_j^new − Σ_{j>i} a_ij x_j^old) / a_ii
    xprev = 0.0 * b[0] if n > 0 else 0.0
    for i in range(n):
        k0 = np.uint64(indptr[i])
        k1 = np.uint64(lo[i])
        acc = b[i]
        d = dinv[i]
        if not from_zero:
            acc -= _row_dot(data, indices, x, np.uint64(up[i]), np.uint64(indptr[i + 1]))
        if k1 > k0:
            last = k1 - np.uint64(1)
            rest = _row_dot(data, indices, x, k0, last)
            j = np.int64(indices[last])
            xj = xprev if j == i - 1 else x[j]
            c = data[last]
            s[i] = rest + c * xj
            xi = (acc - rest) * d - (c * d) * xj
        else:
            s[i] = 0.0 * b[i]
            xi = acc * d
        x[i] = xi
        xprev = xi
    # backward: same formula in reverse order, lower sums reused from s
    xnext = xprev
    for i in range(n - 1, -1, -1):
        k0 = np.uint64(up[i])
        k1 = np.uint64(indptr[i + 1])
        acc = b[i] - s[i]
        d = dinv[i]
        if k1 > k0:
            acc -= _row_dot(data, indices, x, k0 + np.uint64(1), k1)
            j = np.int64(indices[k0])
            xj = xnext if j == i + 1 else x[j]
            xi = acc * d - (data[k0] * d) * xj
        else:
            xi = acc * d
        x[i] = xi
        xnext = xi


@nb.njit(**_jit)
def _lower_residual_serial(indptr, indices, data, lo, x, s):
    """s ← s − (strictly lower part of A) x: the residual after `_sgs_fused`."""
    for i in range(x.shape[0]):
        s[i] -= _row_dot(data, indices, x, np.uint64(indptr[i]), np.uint64(lo[i]))


@nb.njit(parallel=True, **_jit)
def _lower_residual_parallel(indptr, indices, data, lo, x, s):
    """s ← s − (strictly lower part of A) x, rows split over threads."""
    for i in nb.prange(x.shape[0]):
        s[i] -= _row_dot(data, indices, x, np.uint64(indptr[i]), np.uint64(lo[i]))


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

# ------------------------------------------------ red–black Gauss–Seidel on diagonals
# On a grid stencil (5-point, 7-point) the graph is two-coloured by the parity of
# ix + iy + iz, and a Gauss–Seidel pass over one colour has no chain: each red
# row reads black neighbours only.  So a half sweep is a diagonal-storage product
# followed by x_i += dm_i (b_i − (A x)_i), with dm = 1/a_ii on the colour and 0
# off it — vectorised, unlike the lexicographic sweep whose rows wait for each
# other.  But it reads all of A's diagonals for half the rows (3D Darcy 32³,
# finest level, one thread: 0.135 ms per pass in double, 0.056 ms in single,
# against 0.43 ms for a whole symmetric lexicographic sweep in double), so a
# symmetric red–black sweep (three passes) pays in single precision, where the
# chained sweep gains nothing.  It runs in place block by block: a
# row of the colour reads only rows of the other colour, which this pass never
# changes, whatever block or thread wrote last; rows off the colour add 0.
@nb.njit(**_jit)
def _rb_block(offs, val, dm, x, b, y, lo, hi):
    _dia_rows(offs, val, x, y, lo, hi)
    for i in range(np.uint64(lo), np.uint64(hi)):
        x[i] += dm[i] * (b[i] - y[i])


@nb.njit(**_jit)
def _rb_half_serial(offs, val, dm, x, b, y):
    """One colour's Gauss–Seidel pass in place (``y``: n-sized scratch)."""
    n = x.shape[0]
    for lo in range(0, n, _DIA_BLOCK):
        _rb_block(offs, val, dm, x, b, y, lo, min(lo + _DIA_BLOCK, n))


@nb.njit(parallel=True, **_jit)
def _rb_half_parallel(offs, val, dm, x, b, y):
    """`_rb_half_serial` with row blocks over threads (no row of the colour reads a row of it)."""
    n = x.shape[0]
    nblk = (n + _DIA_BLOCK - 1) // _DIA_BLOCK
    for blk in nb.prange(nblk):
        lo = blk * _DIA_BLOCK
        _rb_block(offs, val, dm, x, b, y, lo, min(lo + _DIA_BLOCK, n))


@nb.njit(**_jit)
def _rb_half(offs, val, dm, x, b, y, par):
    if par:
        _rb_half_parallel(offs, val, dm, x, b, y)
    else:
        _rb_half_serial(offs, val, dm, x, b, y)


@nb.njit(**_jit)
def _dia_residual_block(offs, val, x, b, r, lo, hi):
    _dia_rows(offs, val, x, r, lo, hi)
    for i in range(np.uint64(lo), np.uint64(hi)):
        r[i] = b[i] - r[i]


@nb.njit(**_jit)
def _dia_residual_serial(offs, val, x, b, r):
    """r ← b − A x, A in diagonal storage."""
    n = x.shape[0]
    for lo in range(0, n, _DIA_BLOCK):
        _dia_residual_block(offs, val, x, b, r, lo, min(lo + _DIA_BLOCK, n))


@nb.njit(parallel=True, **_jit)
def _dia_residual_parallel(offs, val, x, b, r):
    n = x.shape[0]
    nblk = (n + _DIA_BLOCK - 1) // _DIA_BLOCK
    for blk in nb.prange(nblk):
        lo = blk * _DIA_BLOCK
        _dia_residual_block(offs, val, x, b, r, lo, min(lo + _DIA_BLOCK, n))


@nb.njit(**_jit)
def _rb_symmetric(offs, val, dm, x, b, y, sweeps, from_zero, par):
    """``sweeps`` symmetric red–black sweeps (red, black, red) in place; from x = 0 the first red pass is
    x = dm_red ∘ b."""
    for sw in range(sweeps):
        if sw == 0 and from_zero:
            dr = dm[0]
            for i in range(np.uint64(x.shape[0])):
                x[i] = dr[i] * b[i]
        else:
            _rb_half(offs, val, dm[0], x, b, y, par)
        _rb_half(offs, val, dm[1], x, b, y, par)
        _rb_half(offs, val, dm[0], x, b, y, par)


# ---------------------------------------------------------- tensor-product transfers
# A grid hierarchy's P is P⁽⁰⁾ ⊗ P⁽¹⁾ ⊗ P⁽²⁾ (one factor per axis, at most two entries per row), R = Pᵀ.
# Applied one axis at a time, each pass streams rows that are contiguous in memory, where the CSR product
# gathers 8 scattered values per fine row in 3-D (3D 32³, float32, one thread: prolongation 227 µs and
# restriction 143 µs from CSR).  ``dims[l]`` holds level l's fine sizes (3, leading 1s in 2-D) then its
# coarse ones; ``col[off[l, a] + i]`` and ``wt[...]`` the two coarse indices and weights of fine index i along
# axis a (the second weight 0 when there is one); ``buf`` two scratch vectors of half the finest size.
@nb.njit(**_jit)
def _interp_axis(src, dst, outer, n_in, n_out, inner, col, wt, off, add):
    """Along the middle axis of (outer, n, inner) arrays: dst[o, i, :] (+)= Σ_k wt[i, k] src[o, col[i, k], :]."""
    inner_u = np.uint64(inner)
    for o in range(outer):
        sb = np.uint64(o * n_in * inner)
        db = np.uint64(o * n_out * inner)
        for i in range(n_out):
            a = sb + np.uint64(col[off + i, 0]) * inner_u
            b = sb + np.uint64(col[off + i, 1]) * inner_u
            d = db + np.uint64(i) * inner_u
            w0 = wt[off + i, 0]
            w1 = wt[off + i, 1]
            if add:
                for t in range(inner_u):
                    dst[d + t] += w0 * src[a + t] + w1 * src[b + t]
            else:
                for t in range(inner_u):
                    dst[d + t] = w0 * src[a + t] + w1 * src[b + t]


@nb.njit(**_jit)
def _restrict_axis(src, dst, outer, n_in, n_out, inner, col, wt, off):
    """The transpose of `_interp_axis` (fine ``n_in`` → coarse ``n_out``): dst[o, J, :] = Σ_i P[i, J] src[o, i, :]."""
    inner_u = np.uint64(inner)
    for t in range(np.uint64(outer * n_out * inner)):
        dst[t] = 0
    for o in range(outer):
        sb = np.uint64(o * n_in * inner)
        db = np.uint64(o * n_out * inner)
        for i in range(n_in):
            s = sb + np.uint64(i) * inner_u
            a = db + np.uint64(col[off + i, 0]) * inner_u
            b = db + np.uint64(col[off + i, 1]) * inner_u
            w0 = wt[off + i, 0]
            w1 = wt[off + i, 1]
            for t in range(inner_u):
                dst[a + t] += w0 * src[s + t]
            if w1 != 0:
                for t in range(inner_u):
                    dst[b + t] += w1 * src[s + t]


@nb.njit(**_jit)
def _around(dims, a):
    """(product of the sizes before axis a, product of those after it) of a 3-axis shape."""
    outer = 1
    for j in range(a):
        outer *= dims[j]
    inner = 1
    for j in range(a + 1, 3):
        inner *= dims[j]
    return outer, inner


@nb.njit(**_jit)
def _tensor_prolong_add(tt, lev, xc, x):
    """x ← x + P_lev x_c, P_lev as a tensor product, axes last to first (coarsened axes only)."""
    dims, off, col, wt, buf = tt
    cur = dims[lev, 3:].copy()
    last = -1
    for a in range(3):
        if dims[lev, a] != dims[lev, 3 + a]:
            last = a  # the first axis (in processing order 2, 1, 0) to be done last
            break
    k = 0
    src = xc
    for a in range(2, -1, -1):
        n_f = dims[lev, a]
        n_c = dims[lev, 3 + a]
        if n_f == n_c:
            continue
        outer, inner = _around(cur, a)
        dst = x if a == last else buf[k % 2]  # the last pass adds into x
        _interp_axis(src, dst, outer, n_c, n_f, inner, col, wt, off[lev, a], a == last)
        src = dst
        k += 1
        cur[a] = n_f


@nb.njit(**_jit)
def _tensor_restrict(tt, lev, r, bc):
    """b_c ← P_levᵀ r, axes first to last (coarsened axes only)."""
    dims, off, col, wt, buf = tt
    cur = dims[lev, :3].copy()
    last = -1
    for a in range(2, -1, -1):
        if dims[lev, a] != dims[lev, 3 + a]:
            last = a
            break
    k = 0
    src = r
    for a in range(3):
        n_f = dims[lev, a]
        n_c = dims[lev, 3 + a]
        if n_f == n_c:
            continue
        outer, inner = _around(cur, a)
        dst = bc if a == last else buf[k % 2]
        _restrict_axis(src, dst, outer, n_f, n_c, inner, col, wt, off[lev, a])
        src = dst
        k += 1
        cur[a] = n_c


@nb.njit(**_jit)
def _coarse_rb_level(cl, lev, n, vo):
    """Level ``lev``'s diagonals, values (diagonals × n) and red–black scalings (2 × n) from ``cl``."""
    offs, optr, vals, vptr, scal = cl
    o0, o1 = optr[lev], optr[lev + 1]
    v0 = vptr[lev]
    return (offs[o0:o1], vals[v0:v0 + (o1 - o0) * n].reshape((o1 - o0, n)),
            scal[2 * vo:2 * vo + 2 * n].reshape((2, n)))


# -------------------------------------------------------------------- V-cycle
@nb.njit(**_jit)
def vcycle(nl, vo, a_ptr, a_idx, a_dat, po, ao, p_ptr, p_idx, p_dat, ppo, pao,
           r_ptr, r_idx, r_dat, rpo, rao, dinv, lo, up, cinv, xw, bw, rw, f_off, f_val, f_dm, tt, cl,
           kind, sweep, pre, post, omega, b, x, threshold):
    """One V-cycle for A x = b from x = 0: x ← B b (B the multigrid operator).

    ``b`` and ``x`` are the finest-level vectors (x is overwritten).  See the
    module docstring for the packed hierarchy layout.
    """
    L = nl.shape[0]
    # red–black sweeps on the finest level when it has diagonals and two colours
    rb = kind == GAUSS_SEIDEL and sweep == RED_BLACK and f_off.shape[0] > 0 and f_dm.shape[1] == nl[0]
    lex_symmetric = sweep == SYMMETRIC or sweep == RED_BLACK
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
        if lev == 0 and rb:
            # x ← S_pre(0, b) by red–black sweeps (bw's unused finest slot as scratch); r ← b − A x
            _rb_symmetric(f_off, f_val, f_dm, xl, bl, bw[:n], pre, True, par)
            if par:
                _dia_residual_parallel(f_off, f_val, xl, bl, rl)
            else:
                _dia_residual_serial(f_off, f_val, xl, bl, rl)
        elif lev > 0 and rb and cl[1][lev + 1] > cl[1][lev]:
            # the same on a coarse level with diagonals and two colours (r as scratch until it is formed)
            c_off, c_val, c_dm = _coarse_rb_level(cl, lev, n, vo[lev])
            _rb_symmetric(c_off, c_val, c_dm, xl, bl, rl, pre, True, par)
            _dia_residual_serial(c_off, c_val, xl, bl, rl)
        elif kind == GAUSS_SEIDEL and lex_symmetric and pre > 0:
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
        if tt[0].shape[0] > 0:
            _tensor_restrict(tt, lev, rl, bc)
        elif nc >= threshold:
            _spmv_rows_parallel(Ri, Rj, Rv, rl, bc)
        else:
            _spmv_rows_serial(Ri, Rj, Rv, rl, bc)
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
        if tt[0].shape[0] > 0:
            _tensor_prolong_add(tt, lev, xcl, xl)
        elif par:
            _spmv_add_parallel(Pi, Pj, Pv, xcl, xl)
        else:
            _spmv_add_serial(Pi, Pj, Pv, xcl, xl)
        # x ← S_post(x, b)
        if lev == 0 and rb:
            _rb_symmetric(f_off, f_val, f_dm, xl, bl, bw[:n], post, False, par)
        elif lev > 0 and rb and cl[1][lev + 1] > cl[1][lev]:
            c_off, c_val, c_dm = _coarse_rb_level(cl, lev, n, vo[lev])
            _rb_symmetric(c_off, c_val, c_dm, xl, bl, rl, post, False, par)
        elif kind == GAUSS_SEIDEL and lex_symmetric:
            lol = lo[vo[lev]: vo[lev] + n]
            upl = up[vo[lev]: vo[lev] + n]
            for sw in range(post):
                _sgs_fused(Ai, Aj, Av, dl, lol, upl, xl, bl, rl, False)
        else:
            _smooth(Ai, Aj, Av, dl, xl, bl, rl, kind, sweep, post, omega, True, par)


# ------------------------------------------------------------ AMG-preconditioned CG
# A single-precision cycle inside double-precision CG goes through cycle-precision copies of r and z;
# when the precisions agree the buffers are None and these compile to nothing (the choice is made per
# argument type, so numba never types a cycle call with mismatched vectors).
def _cycle_vector(v, buf):
    """``buf``, or ``v`` itself when ``buf`` is None."""


def _copy_unless_none(dst, src, buf):
    """``dst ← src`` unless ``buf`` is None."""


@overload(_cycle_vector)
def _cycle_vector_impl(v, buf):
    if isinstance(buf, types.NoneType):
        return lambda v, buf: v
    return lambda v, buf: buf


@overload(_copy_unless_none)
def _copy_unless_none_impl(dst, src, buf):
    if isinstance(buf, types.NoneType):
        return lambda dst, src, buf: None

    def impl(dst, src, buf):
        for i in range(dst.shape[0]):
            dst[i] = src[i]
    return impl


@nb.njit(**_jit)
def _precondition(nl, vo, a_ptr, a_idx, a_dat, po, ao, p_ptr, p_idx, p_dat, ppo, pao,
                  r_ptr, r_idx, r_dat, rpo, rao, dinv, lo, up, cinv, xw, bw, rw, f_off, f_val, f_dm, tt, cl,
                  kind, sweep, pre, post, omega, r, z, rc, zc, threshold):
    """z ← B r, through the cycle-precision vectors ``rc, zc`` unless they are None."""
    rin = _cycle_vector(r, rc)
    zout = _cycle_vector(z, zc)
    _copy_unless_none(rin, r, rc)  # rc ← r
    vcycle(nl, vo, a_ptr, a_idx, a_dat, po, ao, p_ptr, p_idx, p_dat, ppo, pao,
           r_ptr, r_idx, r_dat, rpo, rao, dinv, lo, up, cinv, xw, bw, rw, f_off, f_val, f_dm, tt, cl,
           kind, sweep, pre, post, omega, rin, zout, threshold)
    _copy_unless_none(z, zout, zc)  # z ← zc


@nb.njit(**_jit)
def amg_pcg(nl, vo, a_ptr, a_idx, a_dat, po, ao, p_ptr, p_idx, p_dat, ppo, pao,
            r_ptr, r_idx, r_dat, rpo, rao, dinv, lo, up, cinv, xw, bw, rw, f_off, f_val, f_dm, tt, cl,
            kind, sweep, pre, post, omega, threshold,
            o_ptr, o_idx, o_dat, o_off, o_val, rc, zc,
            b, x, tol, maxiter, hist, x0_nonzero):
    """Preconditioned CG on A with one V-cycle as M; x is updated in place.

    ``o_ptr, o_idx, o_dat`` is A in CSR in the precision of ``b`` (the
    hierarchy's finest level is A too, but perhaps in single precision),
    ``o_off, o_val`` A in diagonal storage or an empty ``o_off``.  ``rc, zc``
    are vectors in the hierarchy's precision when it differs from ``b``'s
    (the cycle then maps ``rc ← r`` to ``zc`` and z ← zc), else None.

    Returns ``(iterations, status, ‖r‖, nmatvec, nprec)`` where ‖r‖ is the
    recursively updated residual norm and status the `Status` integer.
    """
    n = b.shape[0]
    par = n >= threshold
    Ai, Aj, Av = o_ptr, o_idx, o_dat
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
    _precondition(nl, vo, a_ptr, a_idx, a_dat, po, ao, p_ptr, p_idx, p_dat, ppo, pao,
                  r_ptr, r_idx, r_dat, rpo, rao, dinv, lo, up, cinv, xw, bw, rw, f_off, f_val, f_dm, tt, cl,
                  kind, sweep, pre, post, omega, r, z, rc, zc, threshold)
    nprec += 1
    rho = dot_parallel(r, z) if par else dot_serial(r, z)
    if not (np.isfinite(rho) and rho > 0.0):
        return 0, _PC_FAILED, rn, nmv, nprec
    p = z.copy()
    for it in range(1, maxiter + 1):
        # q ← A p;  pAp ← pᵀ q  (from the diagonals when A has them: no column indices to read)
        if o_off.shape[0] > 0:
            pap = dia_spmv_dot_parallel(o_off, o_val, p, q) if par else dia_spmv_dot_serial(o_off, o_val, p, q)
        elif par:
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
        _precondition(nl, vo, a_ptr, a_idx, a_dat, po, ao, p_ptr, p_idx, p_dat, ppo, pao,
                      r_ptr, r_idx, r_dat, rpo, rao, dinv, lo, up, cinv, xw, bw, rw, f_off, f_val, f_dm, tt, cl,
                      kind, sweep, pre, post, omega, r, z, rc, zc, threshold)
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


@nb.njit(**_jit)
def galerkin_one_per_row(indptr, indices, data, agg, vals, nagg):
    """Pᵀ A P for P with one nonzero per row (P[i, agg[i]] = vals[i]), as sorted CSR
    arrays (cptr, cidx, cdat) with duplicates summed: coarse row I gathers the rows of
    its members with a dense marker (sparse accumulator); two transposes sort the rows.
    O(nnz(A) + nnz(PᵀAP))."""
    n = agg.shape[0]
    start = np.zeros(nagg + 1, dtype=np.int64)
    for i in range(n):
        start[agg[i] + 1] += 1
    for a in range(nagg):
        start[a + 1] += start[a]
    fill = start[:-1].copy()
    members = np.empty(n, dtype=np.int64)
    for i in range(n):
        members[fill[agg[i]]] = i
        fill[agg[i]] += 1
    marker = -np.ones(nagg, dtype=np.int64)
    cptr = np.zeros(nagg + 1, dtype=np.int64)
    for a in range(nagg):
        c = 0
        for t in range(start[a], start[a + 1]):
            i = members[t]
            for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
                b = agg[np.uint64(indices[k])]
                if marker[b] != a:
                    marker[b] = a
                    c += 1
        cptr[a + 1] = cptr[a] + c
    cidx = np.empty(cptr[nagg], dtype=np.int64)
    cdat = np.zeros(cptr[nagg])
    pos = np.empty(nagg, dtype=np.int64)
    marker[:] = -1
    for a in range(nagg):
        c = cptr[a]
        for t in range(start[a], start[a + 1]):
            i = members[t]
            vi = vals[i]
            for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
                j = np.uint64(indices[k])
                b = agg[j]
                if marker[b] != a:
                    marker[b] = a
                    pos[b] = c
                    cidx[c] = b
                    c += 1
                cdat[pos[b]] += vi * data[k] * vals[j]
    # sort the rows: transposing (a counting sort by column) twice
    tptr, tidx, tdat = _csr_transpose(cptr, cidx, cdat, nagg)
    return _csr_transpose(tptr, tidx, tdat, nagg)


@nb.njit(**_jit)
def _csr_transpose(ptr, idx, dat, ncols):
    """Transpose of CSR (ptr, idx, dat) with ``ncols`` columns; its rows come out sorted."""
    nrows = ptr.shape[0] - 1
    tptr = np.zeros(ncols + 1, dtype=np.int64)
    for k in range(idx.shape[0]):
        tptr[idx[k] + 1] += 1
    for j in range(ncols):
        tptr[j + 1] += tptr[j]
    fill = tptr[:-1].copy()
    tidx = np.empty(idx.shape[0], dtype=np.int64)
    tdat = np.empty(idx.shape[0])
    for i in range(nrows):
        for k in range(ptr[i], ptr[i + 1]):
            j = idx[k]
            tidx[fill[j]] = i
            tdat[fill[j]] = dat[k]
            fill[j] += 1
    return tptr, tidx, tdat


# =====================================================================================
# Spectral-clustering kernels (used by `krylovlab.amg.cluster`): a block SpMM fused
# with the Chebyshev three-term recurrence, k-means (k-means++ seeding and Lloyd
# iterations) on a few columns, modularity in O(nnz), and an O(nnz) symmetry test.
# Blocks are (n, m) C-ordered arrays (a row of the block is contiguous).  Threaded
# variants split the rows in contiguous chunks; every chunk writes its own rows or
# its own partial sums, so results do not depend on the schedule except for the
# summation order of reductions.
# =====================================================================================
@intrinsic
def _prefetch_row(typingctx, arr, row):
    """Hint the CPU to fetch element ``row`` of a 1-D array, or row ``row`` of a 2-D
    C-ordered array (llvm.prefetch: read, high locality).  A prefetch never faults and
    does not change any value; no bounds check is made."""
    if not (isinstance(arr, types.Array) and arr.ndim in (1, 2) and isinstance(row, types.Integer)):
        return None
    sig = types.void(arr, row)

    def codegen(context, builder, signature, args):
        aryty, rowty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        r = context.cast(builder, args[1], rowty, types.intp)
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer2(context, builder, data=ary.data,
                                        shape=cgutils.unpack_tuple(builder, ary.shape),
                                        strides=cgutils.unpack_tuple(builder, ary.strides),
                                        layout=aryty.layout, inds=[r] + [zero] * (aryty.ndim - 1),
                                        wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


# How many stored entries ahead the block product prefetches its gather Y[col, :].  On
# graphs without locality every gather misses the caches once Y outgrows them (about
# 10⁵ rows of 8 doubles on the project machine); the out-of-order core overlaps only a
# few of those misses by itself.  Prefetching 16 entries ahead made the product 2.3-2.5x
# faster on planted-partition graphs at 10⁵ and 10⁶ vertices (bench note in
# docs/amg.md); at 32-64 entries the gain dropped again at 10⁶.
PREFETCH_DISTANCE = 16
# Row chunks of the threaded clustering kernels (a constant: calling nb.get_num_threads()
# inside a kernel would stop numba from caching it).
_CHUNKS = 64


@nb.njit(**_jit)
def _cheb_rows(indptr, indices, data, Y, Z, a, b, c, lo, hi, acc):
    m = Y.shape[1]
    nnz = np.uint64(indices.shape[0])
    dist = np.uint64(PREFETCH_DISTANCE)
    for i in range(lo, hi):
        for j in range(m):
            acc[j] = 0.0
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            if k + dist < nnz:
                _prefetch_row(Y, np.uint64(indices[k + dist]))
            v = data[k]
            col = np.uint64(indices[k])
            for j in range(m):
                acc[j] += v * Y[col, j]
        if c == 0.0:  # Z may be uninitialised
            for j in range(m):
                Z[i, j] = a * acc[j] + b * Y[i, j]
        else:
            for j in range(m):
                Z[i, j] = a * acc[j] + b * Y[i, j] + c * Z[i, j]


@nb.njit(**_jit)
def block_recurrence_serial(indptr, indices, data, Y, Z, a, b, c):
    """Z ← a·(A Y) + b·Y + c·Z for an (n, m) block (Z may hold the previous term).

    With c = 0 this is a scaled, shifted block SpMM; with c = −1 one step of the
    Chebyshev recurrence T_{j+1} = 2x T_j − T_{j−1}.  Z must not alias Y.
    """
    acc = np.empty(Y.shape[1])
    _cheb_rows(indptr, indices, data, Y, Z, a, b, c, 0, Y.shape[0], acc)


@nb.njit(parallel=True, **_jit)
def block_recurrence_parallel(indptr, indices, data, Y, Z, a, b, c):
    """`block_recurrence_serial` with the rows split over threads."""
    n = Y.shape[0]
    nch = _CHUNKS
    step = (n + nch - 1) // nch
    for t in nb.prange(nch):
        acc = np.empty(Y.shape[1])
        _cheb_rows(indptr, indices, data, Y, Z, a, b, c, t * step, min(n, (t + 1) * step), acc)


@nb.njit(**_jit)
def _sym_rows(indptr, indices, data, thr, lo_row, hi_row):
    """Symmetry test of rows lo_row:hi_row: (all upper entries matched, #lower, #upper)."""
    nnz = indices.shape[0]
    n_upper = 0
    n_lower = 0
    d1 = PREFETCH_DISTANCE
    d2 = 2 * PREFETCH_DISTANCE
    for i in range(lo_row, hi_row):
        for k in range(np.int64(indptr[i]), np.int64(indptr[i + 1])):
            if k + d2 < nnz:
                _prefetch_row(indptr, np.uint64(indices[k + d2]))
            if k + d1 < nnz:
                p = np.uint64(indptr[np.uint64(indices[k + d1])])
                _prefetch_row(indices, p)
                _prefetch_row(data, p)
            j = np.int64(indices[k])
            if j < i:
                n_lower += 1
                continue
            if j == i:
                continue
            n_upper += 1
            lo = np.int64(indptr[j])
            hi = np.int64(indptr[j + 1])
            while lo < hi:  # first position with column >= i in row j
                mid = (lo + hi) // 2
                if indices[mid] < i:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < indptr[j + 1] and indices[lo] == i:
                if abs(data[lo] - data[k]) > thr:
                    return False, n_lower, n_upper
            elif abs(data[k]) > thr:
                return False, n_lower, n_upper
    return True, n_lower, n_upper


@nb.njit(**_jit)
def _absmax(data):
    amax = 0.0
    for k in range(data.shape[0]):
        amax = max(amax, abs(data[k]))
    return amax


@nb.njit(**_jit)
def csr_is_symmetric_serial(indptr, indices, data, rtol):
    """True if the CSR matrix with *sorted* rows equals its transpose up to ``rtol``·max|a|.

    Every strictly-upper entry (i, j) looks up (j, i) by bisection in row j and
    compares the values; the matrix is symmetric iff all are found and the
    strictly-lower part has as many entries as the strictly-upper part.
    O(nnz·log(row length)); the rows looked up are prefetched ahead.
    """
    ok, n_lower, n_upper = _sym_rows(indptr, indices, data, rtol * _absmax(data), 0, indptr.shape[0] - 1)
    return ok and n_lower == n_upper


@nb.njit(parallel=True, **_jit)
def csr_is_symmetric_parallel(indptr, indices, data, rtol):
    """`csr_is_symmetric_serial` with the rows split over threads."""
    n = indptr.shape[0] - 1
    thr = rtol * _absmax(data)
    step = (n + _CHUNKS - 1) // _CHUNKS
    oks = np.zeros(_CHUNKS, dtype=np.bool_)
    cnt = np.zeros((_CHUNKS, 2), dtype=np.int64)
    for t in nb.prange(_CHUNKS):
        ok, nl, nu = _sym_rows(indptr, indices, data, thr, min(n, t * step), min(n, (t + 1) * step))
        oks[t] = ok
        cnt[t, 0] = nl
        cnt[t, 1] = nu
    return oks.all() and cnt[:, 0].sum() == cnt[:, 1].sum()


@nb.njit(**_jit)
def count_diagonal_or_zero(indptr, indices, data):
    """Number of stored entries that are on the diagonal or equal to zero."""
    c = 0
    for i in range(indptr.shape[0] - 1):
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            if np.int64(indices[k]) == i or data[k] == 0.0:
                c += 1
    return c


@nb.njit(**_jit)
def scale_symmetric(indptr, indices, data, s):
    """Stored entries of diag(s)·A·diag(s): out[k] = s_i a_ij s_j."""
    n = indptr.shape[0] - 1
    nnz = np.uint64(indices.shape[0])
    dist = np.uint64(PREFETCH_DISTANCE)
    out = np.empty(data.shape[0])
    for i in range(n):
        si = s[i]
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            if k + dist < nnz:
                _prefetch_row(s, np.uint64(indices[k + dist]))
            out[k] = si * data[k] * s[np.uint64(indices[k])]
    return out


@nb.njit(**_jit)
def connected_components(indptr, indices):
    """Connected components of the graph of a structurally symmetric CSR matrix
    (breadth-first search).  Returns (number of components, component of each vertex)."""
    n = indptr.shape[0] - 1
    comp = -np.ones(n, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    nc = 0
    for s in range(n):
        if comp[s] >= 0:
            continue
        comp[s] = nc
        head = 0
        tail = 1
        queue[0] = s
        while head < tail:
            v = queue[head]
            head += 1
            for k in range(np.uint64(indptr[v]), np.uint64(indptr[v + 1])):
                u = np.uint64(indices[k])
                if comp[u] < 0:
                    comp[u] = nc
                    queue[tail] = u
                    tail += 1
        nc += 1
    return nc, comp


@nb.njit(**_jit)
def modularity_inside(indptr, indices, data, labels):
    """Σ over stored entries (i, j) with labels[i] == labels[j] ≥ 0 of a_ij."""
    n = indptr.shape[0] - 1
    nnz = np.uint64(indices.shape[0])
    dist = np.uint64(PREFETCH_DISTANCE)
    s = 0.0
    for i in range(n):
        li = labels[i]
        if li < 0:
            continue
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            if k + dist < nnz:
                _prefetch_row(labels, np.uint64(indices[k + dist]))
            if labels[np.uint64(indices[k])] == li:
                s += data[k]
    return s


@nb.njit(**_jit)
def modularity_inside_delta(indptr, indices, data, old, new, changed, is_changed):
    """Change of `modularity_inside` when the labels go from ``old`` to ``new``, which
    differ only at the vertices ``changed`` (``is_changed`` their indicator); A must be
    symmetric.  An entry (i, j) with only i changed is also stored as (j, i), which is
    not visited, so it counts twice; with both ends changed both copies are visited."""
    s = 0.0
    for t in range(changed.shape[0]):
        i = changed[t]
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            j = np.uint64(indices[k])
            d = np.int64(new[i] == new[j]) - np.int64(old[i] == old[j])
            if d != 0:
                s += data[k] * d * (1.0 if is_changed[j] else 2.0)
    return s


@nb.njit(**_jit)
def _sqdist(X, i, C, c):
    d = 0.0
    for j in range(X.shape[1]):
        t = X[i, j] - C[c, j]
        d += t * t
    return d


@nb.njit(**_jit)
def kmeans_plusplus(X, k, first, u, n_trials):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii; several candidates per step).

    ``first`` is the index of the first centre; ``u`` holds (k−1)·n_trials
    uniform numbers in [0, 1) that drive the D²-sampling, so the result is a
    function of the inputs only.  Each step draws ``n_trials`` candidates with
    probability ∝ squared distance to the nearest chosen centre and keeps the one
    that lowers the total most.  Returns the (k, d) centres.
    """
    n, d = X.shape
    C = np.empty((k, d))
    C[0, :] = X[first, :]
    d2 = np.empty(n)
    for i in range(n):
        d2[i] = _sqdist(X, i, C, 0)
    cum = np.empty(n)
    best_d2 = np.empty(n)
    cand_d2 = np.empty(n)
    for c in range(1, k):
        tot = 0.0
        for i in range(n):
            tot += d2[i]
            cum[i] = tot
        best_pot = np.inf
        best = -1
        for t in range(n_trials):
            r = u[(c - 1) * n_trials + t] * tot
            # first i with cum[i] > r
            lo, hi = 0, n - 1
            while lo < hi:
                mid = (lo + hi) // 2
                if cum[mid] > r:
                    hi = mid
                else:
                    lo = mid + 1
            cand = lo
            pot = 0.0
            for i in range(n):
                e = 0.0
                for j in range(d):
                    q = X[i, j] - X[cand, j]
                    e += q * q
                v = min(d2[i], e)
                cand_d2[i] = v
                pot += v
            if pot < best_pot:
                best_pot = pot
                best = cand
                best_d2[:] = cand_d2
        C[c, :] = X[best, :]
        d2[:] = best_d2
    return C


@nb.njit(**_jit)
def _assign_rows(X, C, labels, sums, counts, lo, hi):
    """Nearest centre of rows lo:hi; accumulate their sums/counts; return (changes, inertia)."""
    k, d = C.shape
    changed = 0
    inertia = 0.0
    for i in range(lo, hi):
        best = 0
        bd = np.inf
        for c in range(k):
            e = 0.0
            for j in range(d):
                q = X[i, j] - C[c, j]
                e += q * q
            if e < bd:
                bd = e
                best = c
        if labels[i] != best:
            changed += 1
            labels[i] = best
        inertia += bd
        counts[best] += 1
        for j in range(d):
            sums[best, j] += X[i, j]
    return changed, inertia


@nb.njit(parallel=True, **_jit)
def _assign_chunks_parallel(X, C, labels, psum, pcnt, pch, pin):
    n = X.shape[0]
    nch = psum.shape[0]
    step = (n + nch - 1) // nch
    for t in nb.prange(nch):
        ch, ine = _assign_rows(X, C, labels, psum[t], pcnt[t], min(n, t * step), min(n, (t + 1) * step))
        pch[t] = ch
        pin[t] = ine


@nb.njit(**_jit)
def _assign_chunks_serial(X, C, labels, psum, pcnt, pch, pin):
    n = X.shape[0]
    nch = psum.shape[0]
    step = (n + nch - 1) // nch
    for t in range(nch):
        ch, ine = _assign_rows(X, C, labels, psum[t], pcnt[t], min(n, t * step), min(n, (t + 1) * step))
        pch[t] = ch
        pin[t] = ine


@nb.njit(**_jit)
def _assign(X, C, labels, sums, counts, parallel):
    """Assignment step over fixed row chunks whose partial sums are added in chunk order,
    so the serial and threaded variants give bitwise the same centres."""
    k, d = C.shape
    psum = np.zeros((_CHUNKS, k, d))
    pcnt = np.zeros((_CHUNKS, k), dtype=np.int64)
    pch = np.zeros(_CHUNKS, dtype=np.int64)
    pin = np.zeros(_CHUNKS)
    if parallel:
        _assign_chunks_parallel(X, C, labels, psum, pcnt, pch, pin)
    else:
        _assign_chunks_serial(X, C, labels, psum, pcnt, pch, pin)
    changed = 0
    inertia = 0.0
    for t in range(_CHUNKS):
        for c in range(k):
            counts[c] += pcnt[t, c]
            for j in range(d):
                sums[c, j] += psum[t, c, j]
        changed += pch[t]
        inertia += pin[t]
    return changed, inertia


@nb.njit(**_jit)
def _lloyd(X, C, labels, max_iter, tol, parallel):
    n, d = X.shape
    k = C.shape[0]
    labels[:] = -1
    sums = np.zeros((k, d))
    counts = np.zeros(k, dtype=np.int64)
    it = 0
    inertia = 0.0
    while True:
        sums[:] = 0.0
        counts[:] = 0
        changed, inertia = _assign(X, C, labels, sums, counts, parallel)
        it += 1
        if changed == 0 or it > max_iter:
            break
        # an empty cluster takes the point farthest from its centre
        for c in range(k):
            if counts[c] == 0:
                far = 0
                fd = -1.0
                for i in range(n):
                    if counts[labels[i]] > 1:
                        e = _sqdist(X, i, C, labels[i])
                        if e > fd:
                            fd = e
                            far = i
                old = labels[far]
                counts[old] -= 1
                for j in range(d):
                    sums[old, j] -= X[far, j]
                    sums[c, j] = X[far, j]
                counts[c] = 1
                labels[far] = c
        shift = 0.0
        for c in range(k):
            for j in range(d):
                v = sums[c, j] / counts[c]
                shift += (v - C[c, j]) ** 2
                C[c, j] = v
        if shift <= tol:
            # centres have settled: final assignment to the settled centres
            sums[:] = 0.0
            counts[:] = 0
            changed, inertia = _assign(X, C, labels, sums, counts, parallel)
            break
    return inertia, it


@nb.njit(**_jit)
def lloyd_serial(X, C, labels, max_iter, tol):
    """Lloyd's k-means from centres C (updated in place); labels (n,) int64 are written.

    Stops when no label changes, the squared centre shift is ≤ ``tol``, or
    after ``max_iter`` iterations.  Returns (inertia, iterations).
    """
    return _lloyd(X, C, labels, max_iter, tol, False)


@nb.njit(**_jit)
def lloyd_parallel(X, C, labels, max_iter, tol):
    """`lloyd_serial` with the assignment step split over threads (same result, bitwise)."""
    return _lloyd(X, C, labels, max_iter, tol, True)
