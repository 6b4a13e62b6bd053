"""Relaxation sweeps on raw CSR arrays (numba), pyamg-style row ranges.

``sor_sweep(indptr, indices, data, x, b, omega, start, stop, step)`` visits
rows ``range(start, stop, step)`` and, for each row i, sets

    x_i ← (1 − ω) x_i + ω (b_i − Σ_{j≠i} a_ij x_j) / a_ii

in place, using already-updated entries (Gauss–Seidel ordering).  A forward
sweep is ``(0, n, 1)``, a backward sweep ``(n−1, −1, −1)``.  ω = 1 is
Gauss–Seidel.  Algebraically a forward sweep solves

    (D/ω + L) x_new = b − ((1 − 1/ω) D + U) x_old

(D diagonal, L / U strict lower / upper parts of A).  The diagonal must be
nonzero: callers check once (`krylovlab.relax` does, with a clear error).

Other kernels here:

* ``ssor_sweep``: forward then backward sweep (symmetric SOR).
* ``ssor_apply``: z ← M_SSOR⁻¹ r from z = 0, the SSOR preconditioner; its
  forward half skips the upper triangle, which is known to multiply zeros.
* ``sor_sweep_multicolor`` / ``ssor_sweep_multicolor``: the same update with
  rows visited colour by colour (``order[color_ptr[c]:color_ptr[c+1]]`` are
  the rows of colour c, colours in increasing order, or decreasing when
  ``reverse``).  Rows of one colour share no matrix entry, so each colour is
  updated by all threads at once (``prange``); the result does not depend on
  the thread count.
* ``sor_solve`` / ``sor_solve_multicolor``: the whole stationary iteration
  in one call.  Each sweep also returns ‖b − A x‖ for the iterate *before*
  the sweep, computed inside the same row loop from a saved copy of that
  iterate; so the stopping test costs no extra SpMV and measures the true
  residual exactly as an SpMV would.  When the test passes the solver
  restores the saved iterate: the iterate returned is the one that met the
  tolerance (the cost is one sweep beyond it).

Every CSR index is read through an unsigned cast (see perf-baseline.md).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_jit = dict(nogil=True, cache=True)

# integer status codes shared with krylovlab.relax.sor (values of krylovlab.Status)
CODE_RTOL = 2
CODE_MAXITER = -3
CODE_NANORINF = -9
CODE_DIVERGED = -12

#: the residual may grow by this factor over the initial one before the
#: iteration is declared divergent
DIVERGENCE_FACTOR = 1e12


@nb.njit(nogil=True, inline="always")
def _row_sums(indptr, indices, data, x, i):
    """(Σ_{j≠i} a_ij x_j, a_ii) for row i (an unsigned index)."""
    diag = data.dtype.type(0)
    acc = x.dtype.type(0) * data.dtype.type(0)
    for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + np.uint64(1)])):
        j = np.uint64(indices[k])
        if j == i:  # both unsigned: no signed/unsigned promotion in the compare
            diag += data[k]
        else:
            acc += data[k] * x[j]
    return acc, diag


@nb.njit(**_jit)
def sor_sweep(indptr, indices, data, x, b, omega, start, stop, step):
    """One SOR sweep over rows range(start, stop, step), x updated in place."""
    if omega == 1:
        for i in range(start, stop, step):
            ii = np.uint64(i)
            acc, diag = _row_sums(indptr, indices, data, x, ii)
            x[ii] = (b[ii] - acc) / diag  # Gauss–Seidel: x_i ← (b_i − Σ_{j≠i} a_ij x_j) / a_ii
    else:
        for i in range(start, stop, step):
            ii = np.uint64(i)
            acc, diag = _row_sums(indptr, indices, data, x, ii)
            # x_i ← (1 − ω) x_i + ω (b_i − Σ_{j≠i} a_ij x_j) / a_ii
            x[ii] = (1 - omega) * x[ii] + omega * (b[ii] - acc) / diag


@nb.njit(**_jit)
def ssor_sweep(indptr, indices, data, x, b, omega):
    """One symmetric SOR sweep (forward, then backward), x updated in place."""
    n = indptr.shape[0] - 1
    sor_sweep(indptr, indices, data, x, b, omega, 0, n, 1)
    sor_sweep(indptr, indices, data, x, b, omega, n - 1, -1, -1)


@nb.njit(**_jit)
def ssor_apply(indptr, indices, data, r, z, omega):
    """z ← M⁻¹ r, M = ω/(2 − ω) · (D/ω + L) D⁻¹ (D/ω + U), the SSOR preconditioner.

    Equal to zeroing ``z`` and calling ``ssor_sweep(indptr, indices, data, z, r, omega)``.
    """
    n = indptr.shape[0] - 1
    # forward half from zero: z_i ← ω (r_i − Σ_{j<i} a_ij z_j) / a_ii  (entries j > i multiply zeros)
    for i in range(n):
        diag = data.dtype.type(0)
        acc = r.dtype.type(0) * z.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            j = np.uint64(indices[k])
            if j < i:
                acc += data[k] * z[j]
            elif j == i:
                diag += data[k]
        z[i] = omega * (r[i] - acc) / diag
    # backward half: an ordinary backward SOR sweep
    sor_sweep(indptr, indices, data, z, r, omega, n - 1, -1, -1)


@nb.njit(**_jit)
def ssor_apply_diag(indptr, indices, data, inv_diag, r, z, omega):
    """`ssor_apply` with the inverse diagonal precomputed (``inv_diag[i] = 1 / a_ii``).

    Each row's update depends on the row before it, so the latency of the
    division sits on the critical path of the sweep; a multiplication by a
    stored 1/a_ii made the SSOR application about 25% faster (n = 9 801).
    """
    n = indptr.shape[0] - 1
    for i in range(n):
        ii = np.uint64(i)
        acc = r.dtype.type(0) * z.dtype.type(0)
        for k in range(np.uint64(indptr[ii]), np.uint64(indptr[ii + np.uint64(1)])):
            j = np.uint64(indices[k])
            if j < ii:
                acc += data[k] * z[j]
        z[ii] = omega * (r[ii] - acc) * inv_diag[ii]  # z_i ← ω (r_i − Σ_{j<i} a_ij z_j) / a_ii
    for i in range(n - 1, -1, -1):
        ii = np.uint64(i)
        acc = r.dtype.type(0) * z.dtype.type(0)
        for k in range(np.uint64(indptr[ii]), np.uint64(indptr[ii + np.uint64(1)])):
            j = np.uint64(indices[k])
            if j != ii:
                acc += data[k] * z[j]
        # z_i ← (1 − ω) z_i + ω (r_i − Σ_{j≠i} a_ij z_j) / a_ii   (backward)
        z[ii] = (1 - omega) * z[ii] + omega * (r[ii] - acc) * inv_diag[ii]


# ----------------------------------------------------------------------- fused sweep + residual
@nb.njit(**_jit)
def _sweep_residual(indptr, indices, data, x, b, omega, xprev, start, stop, step):
    """SOR sweep over range(start, stop, step); return ‖b − A xprev‖², xprev = x on entry.

    The caller has copied x into xprev.  Row i reads the current x (already
    updated rows j before i) for the update and xprev for the residual.
    """
    rr = 0.0
    for i in range(start, stop, step):
        diag = data.dtype.type(0)
        acc = b.dtype.type(0) * x.dtype.type(0)
        ax_prev = b.dtype.type(0) * x.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            j = np.uint64(indices[k])
            a = data[k]
            ax_prev += a * xprev[j]
            if j == i:
                diag += a
            else:
                acc += a * x[j]
        ri = b[i] - ax_prev  # r_i ← (b − A x_prev)_i
        rr += ri.real * ri.real + ri.imag * ri.imag
        x[i] = (1 - omega) * x[i] + omega * (b[i] - acc) / diag
    return rr


@nb.njit(**_jit)
def _residual_sq(indptr, indices, data, x, b):
    """‖b − A x‖² (one SpMV pass, no storage)."""
    n = indptr.shape[0] - 1
    rr = 0.0
    for i in range(n):
        acc = b.dtype.type(0) * x.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += data[k] * x[np.uint64(indices[k])]
        ri = b[i] - acc
        rr += ri.real * ri.real + ri.imag * ri.imag
    return rr


@nb.njit(**_jit)
def sor_solve(indptr, indices, data, x, b, omega, tol, maxiter, sweep, hist, xprev):
    """Stationary SOR iteration from x (in place) until ‖b − A x‖ ≤ tol or ``maxiter`` sweeps.

    Parameters
    ----------
    sweep : int
        0 forward, 1 backward, 2 symmetric (forward + backward per iteration).
    hist : float64 array of length 0 (no history) or ≥ maxiter + 1
        ``hist[k] = ‖b − A x_k‖``.
    xprev : work array like x.

    Returns
    -------
    (iterations, code, rnorm, sweeps): the returned x is x_iterations; code
    is one of the ``CODE_*`` values; ``sweeps`` counts the sweeps done
    (``iterations + 1`` on convergence, the extra one carried the test).
    """
    n = indptr.shape[0] - 1
    record = hist.shape[0] > 0
    r0 = -1.0
    it = 0
    sweeps = 0
    while it < maxiter:
        xprev[:] = x  # x_prev ← x_it
        if sweep == 1:
            rr = _sweep_residual(indptr, indices, data, x, b, omega, xprev, n - 1, -1, -1)
        else:
            rr = _sweep_residual(indptr, indices, data, x, b, omega, xprev, 0, n, 1)
            if sweep == 2:
                sor_sweep(indptr, indices, data, x, b, omega, n - 1, -1, -1)
        sweeps += 1
        rn = np.sqrt(rr)  # ‖b − A x_it‖
        if record:
            hist[it] = rn
        if not np.isfinite(rn):
            x[:] = xprev
            return it, CODE_NANORINF, rn, sweeps
        if rn <= tol:
            x[:] = xprev  # x ← x_it, the iterate that met the test
            return it, CODE_RTOL, rn, sweeps
        if r0 < 0.0:
            r0 = rn
        elif rn > DIVERGENCE_FACTOR * r0:
            x[:] = xprev
            return it, CODE_DIVERGED, rn, sweeps
        it += 1
    rn = np.sqrt(_residual_sq(indptr, indices, data, x, b))  # ‖b − A x_maxiter‖ (one SpMV)
    if record:
        hist[it] = rn
    if not np.isfinite(rn):
        return it, CODE_NANORINF, rn, sweeps
    return it, (CODE_RTOL if rn <= tol else CODE_MAXITER), rn, sweeps


# --------------------------------------------------------------------------------- multicolour
@nb.njit(parallel=True, **_jit)
def _color_pass(indptr, indices, data, x, b, omega, order, lo, hi):
    for t in nb.prange(lo, hi):
        i = np.uint64(order[t])
        diag = data.dtype.type(0)
        acc = b.dtype.type(0) * x.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            j = np.uint64(indices[k])
            if j == i:
                diag += data[k]
            else:
                acc += data[k] * x[j]
        x[i] = (1 - omega) * x[i] + omega * (b[i] - acc) / diag


@nb.njit(parallel=True, **_jit)
def _color_pass_residual(indptr, indices, data, x, b, omega, xprev, order, lo, hi):
    rr = 0.0
    for t in nb.prange(lo, hi):
        i = np.uint64(order[t])
        diag = data.dtype.type(0)
        acc = b.dtype.type(0) * x.dtype.type(0)
        ax_prev = b.dtype.type(0) * x.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            j = np.uint64(indices[k])
            a = data[k]
            ax_prev += a * xprev[j]
            if j == i:
                diag += a
            else:
                acc += a * x[j]
        ri = b[i] - ax_prev
        rr += ri.real * ri.real + ri.imag * ri.imag
        x[i] = (1 - omega) * x[i] + omega * (b[i] - acc) / diag
    return rr


@nb.njit(**_jit)
def sor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr, reverse):
    """One multicolour SOR sweep: colours in increasing order (decreasing if ``reverse``), rows of a colour in parallel."""
    ncolors = color_ptr.shape[0] - 1
    for c in range(ncolors):
        cc = ncolors - 1 - c if reverse else c
        _color_pass(indptr, indices, data, x, b, omega, order, color_ptr[cc], color_ptr[cc + 1])


@nb.njit(**_jit)
def ssor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr):
    """Symmetric multicolour sweep: colours 0..m−1, then m−1..0."""
    sor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr, False)
    sor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr, True)


@nb.njit(parallel=True, **_jit)
def _copy(src, dst):
    for i in nb.prange(src.shape[0]):
        dst[i] = src[i]


@nb.njit(parallel=True, **_jit)
def _residual_sq_parallel(indptr, indices, data, x, b):
    n = indptr.shape[0] - 1
    rr = 0.0
    for i in nb.prange(n):
        acc = b.dtype.type(0) * x.dtype.type(0)
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += data[k] * x[np.uint64(indices[k])]
        ri = b[i] - acc
        rr += ri.real * ri.real + ri.imag * ri.imag
    return rr


@nb.njit(**_jit)
def sor_solve_multicolor(indptr, indices, data, x, b, omega, tol, maxiter, sweep, hist, xprev, order,
                         color_ptr):
    """`sor_solve` with the multicolour ordering (``sweep``: 0 forward, 1 backward, 2 symmetric)."""
    ncolors = color_ptr.shape[0] - 1
    record = hist.shape[0] > 0
    r0 = -1.0
    it = 0
    sweeps = 0
    while it < maxiter:
        _copy(x, xprev)  # x_prev ← x_it
        rr = 0.0
        for c in range(ncolors):
            cc = ncolors - 1 - c if sweep == 1 else c
            rr += _color_pass_residual(indptr, indices, data, x, b, omega, xprev, order, color_ptr[cc],
                                       color_ptr[cc + 1])
        if sweep == 2:
            sor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr, True)
        sweeps += 1
        rn = np.sqrt(rr)
        if record:
            hist[it] = rn
        if not np.isfinite(rn):
            _copy(xprev, x)
            return it, CODE_NANORINF, rn, sweeps
        if rn <= tol:
            _copy(xprev, x)
            return it, CODE_RTOL, rn, sweeps
        if r0 < 0.0:
            r0 = rn
        elif rn > DIVERGENCE_FACTOR * r0:
            _copy(xprev, x)
            return it, CODE_DIVERGED, rn, sweeps
        it += 1
    rn = np.sqrt(_residual_sq_parallel(indptr, indices, data, x, b))
    if record:
        hist[it] = rn
    if not np.isfinite(rn):
        return it, CODE_NANORINF, rn, sweeps
    return it, (CODE_RTOL if rn <= tol else CODE_MAXITER), rn, sweeps


# ------------------------------------------------------------------------------------ colouring
@nb.njit(**_jit)
def greedy_coloring(indptr, indices):
    """Greedy (first-fit) colouring of the graph of a *symmetric* CSR pattern, rows in natural order.

    Returns an int32 array of colours 0..m−1 such that no two adjacent rows
    share a colour (self-loops are ignored).  m ≤ max degree + 1.
    """
    n = indptr.shape[0] - 1
    colors = np.full(n, -1, dtype=np.int32)
    mark = np.full(n + 1, -1, dtype=np.int64)  # mark[c] == i: colour c is taken by a neighbour of i
    for i in range(n):
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            j = np.uint64(indices[k])
            c = colors[j]
            if j != i and c >= 0:
                mark[c] = i
        c = 0
        while mark[c] == i:
            c += 1
        colors[i] = c
    return colors
