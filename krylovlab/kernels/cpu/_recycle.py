"""Kernels for the recycled Krylov methods (numba, ``cache=True``, serial).

Basis vectors are stored as the *rows* of C-contiguous 2-D arrays, so every
basis vector is contiguous and a block operation against ``j`` vectors is one
sweep over a ``j × n`` array.  The block passes work on chunks of
``_CHUNK`` entries that stay in L1 while all rows stream past them.

* `orth_cgs2` — classical Gram–Schmidt applied twice against a block of rows,
  fused into three sweeps (coefficients; first update + second coefficients;
  second update + norm) instead of the four of a textbook CGS2.  Used once
  per solve, to project the residual onto the complement of C.
* `arnoldi_finish_step`, `gcro_cycle_csr` — one (deflated) Arnoldi step /
  whole cycle on a CSR operator with optional diagonal right
  preconditioning: SpMV (from diagonal storage for stencils), orthogonalisation against ``[C; V]`` by the fused
  modified Gram–Schmidt of the GMRES kernels (`mgs_serial`, one read of the
  block per step; measured 1.5× faster than CGS2 as four BLAS gemv calls),
  Givens rotations and the residual estimate, all in one call.
* `gram` — ``G[i, j] = ⟨X_i, Y_j⟩`` for two blocks of rows.
* `defcg_csr` — the deflated CG loop used by RCG: the sweeps of the plain CG
  kernel plus two gemv calls with AW per iteration, returning to the caller
  every time its harvest window is full.

Both loops take the operator also in row-aligned diagonal storage
(``dia_off``, ``dia_val`` from `kernels.cpu.dia_for_solver`; empty offsets:
CSR), as the CG and GMRES kernels do.

Reductions use ``fastmath={"reassoc", "contract"}`` so they vectorise; no
flag that assumes finite values is set, so NaN/Inf still propagate and are
detected by the callers.

Status codes are the integer values of `krylovlab.Status`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._blas import spmv_dot_serial, spmv_serial
from ._dia import dia_spmv_dot_serial, dia_spmv_serial
from ._gmres import mgs_serial

_RTOL, _HAPPY, _MAXITER, _BREAKDOWN, _INDEFINITE, _NANORINF, _PC_FAILED = 2, 5, -3, -5, -8, -9, -11
#: returned by `defcg_csr` when its harvest window is full (not a Status)
WINDOW_FULL = 100

_CHUNK = 1024
_fm = {"reassoc", "contract"}
_jit = dict(nogil=True, cache=True, fastmath=_fm)


# ------------------------------------------------------------------ block Gram–Schmidt
@nb.njit(inline="always", **_jit)
def _ubounds(c0, c1):
    """Loop bounds as unsigned integers.  With a signed start that is not a compile-time 0, numba keeps
    the negative-index wraparound test inside ``for t in range(c0, c1): W[i, t]`` and LLVM does not
    vectorise the loop (the chunked sweeps below ran 2-6x slower for it)."""
    return np.uint64(c0), np.uint64(c1)


@nb.njit(inline="always", **_jit)
def _dots(W, nrows, w, c0, c1, h):
    """h[i] += Σ_{c0≤t<c1} conj(W[i, t]) w[t] for i < nrows, four rows at a time (w read once per 4 rows)."""
    c0, c1 = _ubounds(c0, c1)
    i = 0
    while i + 4 <= nrows:
        a0 = h.dtype.type(0)
        a1 = h.dtype.type(0)
        a2 = h.dtype.type(0)
        a3 = h.dtype.type(0)
        for t in range(c0, c1):
            wt = w[t]
            a0 += np.conj(W[i, t]) * wt
            a1 += np.conj(W[i + 1, t]) * wt
            a2 += np.conj(W[i + 2, t]) * wt
            a3 += np.conj(W[i + 3, t]) * wt
        h[i] += a0
        h[i + 1] += a1
        h[i + 2] += a2
        h[i + 3] += a3
        i += 4
    while i < nrows:
        acc = h.dtype.type(0)
        for t in range(c0, c1):
            acc += np.conj(W[i, t]) * w[t]
        h[i] += acc
        i += 1


@nb.njit(inline="always", **_jit)
def _axpys(W, nrows, w, c0, c1, h, sign):
    """w[t] += sign · Σ_i W[i, t] h[i] on c0 ≤ t < c1, four rows at a time."""
    c0, c1 = _ubounds(c0, c1)
    i = 0
    while i + 4 <= nrows:
        h0 = sign * h[i]
        h1 = sign * h[i + 1]
        h2 = sign * h[i + 2]
        h3 = sign * h[i + 3]
        for t in range(c0, c1):
            w[t] += W[i, t] * h0 + W[i + 1, t] * h1 + W[i + 2, t] * h2 + W[i + 3, t] * h3
        i += 4
    while i < nrows:
        hi = sign * h[i]
        for t in range(c0, c1):
            w[t] += W[i, t] * hi
        i += 1


@nb.njit(**_jit)
def orth_cgs2(W, nrows, w, h):
    """Orthogonalise ``w`` against rows ``W[:nrows]`` (orthonormal) by CGS2.

    On return ``w ← (I − WᴴW)² w`` and ``h[:nrows]`` holds the total
    coefficients ``Wᴴ w`` (first plus second pass).  Returns ‖w‖₂ after
    orthogonalisation.  Three sweeps over the block.
    """
    n = w.shape[0]
    h1 = np.zeros(nrows, dtype=h.dtype)
    h2 = np.zeros(nrows, dtype=h.dtype)
    # sweep 1: h1 ← Wᴴ w
    for c0 in range(0, n, _CHUNK):
        c1 = min(c0 + _CHUNK, n)
        _dots(W, nrows, w, c0, c1, h1)
    # sweep 2: w ← w − W h1 ;  h2 ← Wᴴ w   (per chunk, so W is read once)
    for c0 in range(0, n, _CHUNK):
        c1 = min(c0 + _CHUNK, n)
        _axpys(W, nrows, w, c0, c1, h1, -1.0)
        _dots(W, nrows, w, c0, c1, h2)
    # sweep 3: w ← w − W h2 ;  ‖w‖²
    s = 0.0
    for c0 in range(0, n, _CHUNK):
        c1 = min(c0 + _CHUNK, n)
        _axpys(W, nrows, w, c0, c1, h2, -1.0)
        for t in range(np.uint64(c0), np.uint64(c1)):
            s += w[t].real * w[t].real + w[t].imag * w[t].imag
    for i in range(nrows):
        h[i] = h1[i] + h2[i]
    return np.sqrt(s)


@nb.njit(**_jit)
def gram(X, nx, Y, ny, G):
    """``G[i, j] ← ⟨X_i, Y_j⟩ = X_iᴴ Y_j`` for rows ``i < nx``, ``j < ny`` (chunked sweep)."""
    n = X.shape[1]
    col = np.zeros(nx, dtype=G.dtype)
    for j in range(ny):
        col[:] = 0
        for c0 in range(0, n, _CHUNK):
            c1 = min(c0 + _CHUNK, n)
            _dots(X, nx, Y[j], c0, c1, col)
        for i in range(nx):
            G[i, j] = col[i]


@nb.njit(**_jit)
def combine(W, coef, nrows, out, beta):
    """``out ← β·out + Σ_{i<nrows} coef[i]·W_i`` (one sweep over the block)."""
    n = out.shape[0]
    for c0 in range(0, n, _CHUNK):
        c1 = min(c0 + _CHUNK, n)
        if beta == 0:
            out[c0:c1] = 0
        elif beta != 1:
            for t in range(np.uint64(c0), np.uint64(c1)):
                out[t] *= beta
        _axpys(W, nrows, out, c0, c1, coef, 1.0)


# ------------------------------------------------------------------------- SpMV
# no fastmath here: with reassociation LLVM vectorises the short row loops
# with gathers, which was measured 15-20% slower on 5-point stencils
@nb.njit(nogil=True, cache=True)
def _spmv_scaled(indptr, indices, data, d, x, y):
    """y ← A·diag(d)·x, or y ← A x when d is empty."""
    n = indptr.shape[0] - 1
    if d.shape[0] > 0:
        for i in range(n):
            acc = y.dtype.type(0)
            for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
                j = np.uint64(indices[k])
                acc += data[k] * (d[j] * x[j])
            y[i] = acc
    else:
        for i in range(n):
            acc = y.dtype.type(0)
            for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
                acc += data[k] * x[np.uint64(indices[k])]
            y[i] = acc


@nb.njit(**_jit)
def apply_op_rows(indptr, indices, data, d, X, nrows, Y):
    """``Y_i ← A·diag(d)·X_i`` for the first ``nrows`` rows (d empty: no scaling)."""
    for i in range(nrows):
        _spmv_scaled(indptr, indices, data, d, X[i], Y[i])


# --------------------------------------------------------------- Arnoldi cycle
@nb.njit(**_jit)
def arnoldi_finish_step(W, kc, j, w, hcol, R, g, cs, sn, h2):
    """Second half of Arnoldi step j, after ``w = B v_j`` was formed.

    Orthogonalises ``w`` against ``W[:kc+j+1]`` by modified Gram–Schmidt
    (`mgs_serial`: one read of the block per step; a second pass, into the
    scratch ``h2`` of at least ``kc + j + 1`` entries, only when less than
    10⁻⁶ of ‖w‖ survives, as in GMRES — near an invariant subspace that
    remainder is rounding, not a new direction).  ``hcol[:kc]`` = Cᴴ B v_j,
    ``hcol[kc:kc+j+2]`` = Hessenberg column j; the new unit vector becomes
    ``W[kc+j+1]``.  Then the
    previous Givens rotations are applied to the column and a new one zeroes
    its subdiagonal (``R``, ``g``, ``cs``, ``sn``).  Returns ``(|g[j+1]|,
    happy)``: the residual norm of the minimiser after this step, and whether
    the space became invariant.  A zero rotation denominator returns
    ``(-1, True)``.  Even steps visit the block from C onwards, odd steps
    backwards, so each pass starts on rows the previous one left in cache.
    """
    nrows = kc + j + 1
    h0sq, hsq = mgs_serial(W, nrows, w, hcol, j % 2 == 1)
    if hsq <= 1e-12 * h0sq:
        _, hsq = mgs_serial(W, nrows, w, h2, j % 2 == 1)
        for i in range(nrows):
            hcol[i] += h2[i]
    hn = np.sqrt(hsq)
    if not np.isfinite(hn):
        hcol[kc + j + 1] = hn
        return np.inf, False
    happy = hn <= 1e-14 * abs(hcol[kc + j]) or hn == 0.0
    if not happy:
        inv = 1.0 / hn
        for t in range(w.shape[0]):
            W[kc + j + 1, t] = w[t] * inv
    return arnoldi_rotate(hcol, kc, j, hn, R, g, cs, sn), happy


@nb.njit(**_jit)
def arnoldi_rotate(hcol, kc, j, hn, R, g, cs, sn):
    """Givens part of Arnoldi step j: ``hcol[kc+j+1]`` ← hn; the previous rotations applied to the
    Hessenberg column ``hcol[kc:kc+j+2]`` (into ``R[:, j]``), then a new one zeroing its subdiagonal
    (``cs``, ``sn``, ``g`` updated).  Returns |g[j+1]|, the residual norm of the minimiser after this
    step, or −1 for a zero rotation denominator."""
    hcol[kc + j + 1] = hn
    # R[:, j] ← Q_{j−1}ᴴ H[:, j]  (previous rotations)
    for i in range(j + 1):
        R[i, j] = hcol[kc + i]
    R[j + 1, j] = hn
    for i in range(j):
        a = R[i, j]
        b = R[i + 1, j]
        R[i, j] = cs[i] * a + sn[i] * b
        R[i + 1, j] = -np.conj(sn[i]) * a + cs[i] * b
    # new rotation G_j zeroing R[j+1, j];  g ← G_j g
    a = R[j, j]
    b = R[j + 1, j]
    den = np.sqrt(abs(a) ** 2 + abs(b) ** 2)
    if den == 0.0 or not np.isfinite(den):
        return -1.0
    if abs(a) == 0.0:
        c = 0.0
        s = np.conj(b) / abs(b)
    else:
        c = abs(a) / den
        s = (a / abs(a)) * np.conj(b) / den
    cs[j] = c
    sn[j] = s
    R[j, j] = c * a + s * b
    R[j + 1, j] = 0
    gj = g[j]
    g[j] = c * gj
    g[j + 1] = -np.conj(s) * gj
    return abs(g[j + 1])


@nb.njit(**_jit)
def gcro_cycle_csr(indptr, indices, data, d, W, kc, smax, tol, Ht, R, g, cs, sn, hist, hist_pos, w, dia_off,
                   dia_val_pc):
    """One deflated Arnoldi cycle of GCRO-DR on ``B = A·diag(d)`` (d empty: B = A).

    With ``dia_off`` not empty, ``B`` itself (A's values times ``d`` of their
    columns) is read from diagonal storage ``(dia_off, dia_val_pc)`` instead.

    ``W[:kc]`` holds C (orthonormal, C = B U); ``W[kc]`` the unit start vector
    v₁ ⊥ C.  Each step forms ``w = B v_j`` and calls `arnoldi_finish_step`
    with ``hcol = Ht[j]`` (so row j of ``Ht`` is column j of the coefficient
    matrix ``[B; H̄]``).  ``g[0] = β`` on entry.  ``hist[hist_pos + j]``
    receives the residual estimate when ``hist`` is long enough.

    Returns ``(steps, code, residual estimate)`` with code RTOL (estimate ≤
    tol), HAPPY_BREAKDOWN (invariant subspace), MAXITER (smax steps done),
    BREAKDOWN or NANORINF.
    """
    res = abs(g[0])
    h2 = np.zeros(W.shape[0], dtype=W.dtype)
    for j in range(smax):
        # w ← B v_j
        if dia_off.shape[0] > 0:
            dia_spmv_serial(dia_off, dia_val_pc, W[kc + j], w)
        else:
            _spmv_scaled(indptr, indices, data, d, W[kc + j], w)
        # w ← w orthogonalised against [C; V] (MGS), Hessenberg column, Givens
        res, happy = arnoldi_finish_step(W, kc, j, w, Ht[j], R, g, cs, sn, h2)
        if res < 0:
            return j, _BREAKDOWN, abs(g[j])
        if hist_pos + j < hist.shape[0]:
            hist[hist_pos + j] = res
        if not np.isfinite(res):
            return j + 1, _NANORINF, res
        if res <= tol:
            return j + 1, _RTOL, res
        if happy:
            return j + 1, _HAPPY, res
    return smax, _MAXITER, res


# ----------------------------------------------------------------- deflated CG
@nb.njit(inline="always", **_jit)
def _cg_step_range(alpha, xt, pt, q, r, z, d, precond, lo, hi):
    """On [lo, hi): x̃ += α p̃; r −= α q; z ← D r (z is r itself without D); returns (‖r‖², rᴴz) there."""
    rr = 0.0
    rho = q.dtype.type(0)
    if precond:
        for i in range(np.uint64(lo), np.uint64(hi)):
            xt[i] += alpha * pt[i]
            ri = r[i] - alpha * q[i]
            r[i] = ri
            rr += ri.real * ri.real + ri.imag * ri.imag
            zi = d[i] * ri
            z[i] = zi
            rho += np.conj(ri) * zi
    else:
        for i in range(np.uint64(lo), np.uint64(hi)):
            xt[i] += alpha * pt[i]
            ri = r[i] - alpha * q[i]
            r[i] = ri
            rr += ri.real * ri.real + ri.imag * ri.imag
        rho += rr
    return rr, rho


@nb.njit(**_jit)
def defcg_csr(indptr, indices, data, d, AW, k, xt, xi, r, z, pt, nu, tv, q, scal, it0, maxiter, tol,
              hist, Pw, APw, nwin, rpq, rbeta, rrho, rmu, dia_off, dia_val):
    """Deflated (preconditioned) CG iterations on CSR A, resumable.

    The deflation space W (A-orthonormal: W A Wᴴ = I) enters only through
    the rows of ``AW`` (k × n), because the search direction is kept as
    ``p = p̃ − W ν`` and the iterate as ``x = x̃ − W ξ``; the caller forms x
    at the end.  ``tv`` carries t = (AW)ᴴ p̃ by the recurrence
    t ← μ + β t, so that pᴴAp = p̃ᴴAp̃ − νᵀ conj(t) comes out of the fused
    SpMV-dot.  Per iteration AW is used twice, A p = A p̃ − AWᵀ ν and
    μ = (AW)ᴴ z, both in the chunked x/r/z update sweep, so AW is read once
    per iteration (measured here against two BLAS gemv calls: 44.6 against
    48.8 ms per system on the n = 10⁴ Darcy sequence).
    ``d`` is the Jacobi preconditioner (empty: none; then ``z`` must be
    ``r`` itself).  With ``dia_off`` not empty, A p̃ is formed from the
    diagonal storage ``(dia_off, dia_val)`` instead of CSR.  ``scal = [ρ, ‖r‖]`` carries rᴴz between calls.

    The vector sweeps mirror `kernels.cpu.cg_csr` (SpMV+dot, one fused
    x/r update, p̃ ← z + β p̃), so with k = 0 and no harvest an iteration
    costs what a CG iteration costs.

    Harvest window: while ``nwin < Pw.shape[0]`` each iteration stores p̃ and
    A p̃ in ``Pw[nwin]``, ``APw[nwin]`` and the scalars of that step —
    ``rpq`` = pᴴAp, ``rbeta`` = β, ``rrho`` = rᴴz, ``rmu`` = μ = (AW)ᴴ z of
    the new residual — so that the caller can do a Rayleigh–Ritz step on the
    window without any inner product of its own.  The call returns
    WINDOW_FULL when the window is full.

    Returns ``(iterations done in total, code, nwin)``.
    """
    n = r.shape[0]
    precond = d.shape[0] > 0
    rho = scal[0]
    s_k = np.zeros(k, dtype=nu.dtype)
    curv_sign = 0.0
    L = Pw.shape[0]
    for it in range(it0 + 1, maxiter + 1):
        slot = nwin
        store = slot < L
        # q ← A p̃ ;  pᴴAp = p̃ᴴAp̃ − Σ_j ν_j conj(t_j)   (Wᴴ A p = 0)
        if dia_off.shape[0] > 0:
            pqa = dia_spmv_dot_serial(dia_off, dia_val, pt, q)
        else:
            pqa = spmv_dot_serial(indptr, indices, data, pt, q)
        pq = pqa
        for j in range(k):
            pq -= nu[j] * np.conj(tv[j])
        if store:
            nwin += 1
            rpq[slot] = pq.real
            for i in range(n):
                Pw[slot, i] = pt[i]
                APw[slot, i] = q[i]
        c = pq.real
        if not np.isfinite(c):
            scal[0] = rho
            return it, _NANORINF, nwin
        if curv_sign == 0.0:
            curv_sign = 1.0 if c > 0 else -1.0
        if c == 0.0 or c * curv_sign < 0.0:
            scal[0] = rho
            return it - 1, _INDEFINITE, nwin
        alpha = rho / pq
        for j in range(k):
            xi[j] += alpha * nu[j]  # ξ ← ξ + α ν
        # q ← A p̃ − AWᵀ ν = A p ;  x̃ ← x̃ + α p̃ ;  r ← r − α q ;  z ← M r ;  ρ' ← rᴴz ;  μ ← (AW)ᴴ z,
        # in one chunked sweep: each chunk of AW is read once, for both of its products, while the
        # chunk of q, r and z is in cache
        rr = 0.0
        rho_new = q.dtype.type(0)
        for j in range(k):
            s_k[j] = 0
        for c0 in range(0, n, _CHUNK):
            c1 = min(c0 + _CHUNK, n)
            if k > 0:
                _axpys(AW, k, q, c0, c1, nu, -1.0)
            a, b = _cg_step_range(alpha, xt, pt, q, r, z, d, precond, c0, c1)
            rr += a
            rho_new += b
            if k > 0:
                _dots(AW, k, z, c0, c1, s_k)
        rn = np.sqrt(rr)
        scal[1] = rn
        if hist.shape[0] > it:
            hist[it] = rn
        if not np.isfinite(rn):
            scal[0] = rho
            return it, _NANORINF, nwin
        if rn <= tol:
            scal[0] = rho_new
            return it, _RTOL, nwin
        if precond and not (rho_new.real > 0.0):
            scal[0] = rho
            return it, _PC_FAILED, nwin
        beta = rho_new / rho
        rho = rho_new
        if store:
            rbeta[slot] = beta
            rrho[slot] = rho_new.real
            for j in range(k):
                rmu[slot, j] = s_k[j]
        # ν ← μ + β ν ;  t ← μ + β t ;  p̃ ← z + β p̃
        for j in range(k):
            nu[j] = s_k[j] + beta * nu[j]
            tv[j] = s_k[j] + beta * tv[j]
        for i in range(n):
            pt[i] = z[i] + beta * pt[i]
        if L > 0 and nwin >= L:
            scal[0] = rho
            return it, WINDOW_FULL, nwin
    scal[0] = rho
    return maxiter, _MAXITER, nwin
