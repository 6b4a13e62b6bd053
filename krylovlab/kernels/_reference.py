"""Slow, obviously correct numpy versions of every kernel.

CPU and GPU kernels are tested against these.  They take the same arguments
and update outputs in place the same way.
"""

from __future__ import annotations

import numpy as np


def spmv(indptr, indices, data, x, y):
    """y ← A x."""
    for i in range(len(indptr) - 1):
        sl = slice(indptr[i], indptr[i + 1])
        y[i] = np.sum(data[sl] * x[indices[sl]])


def spmv_dot(indptr, indices, data, x, y):
    """y ← A x; return xᴴ y."""
    spmv(indptr, indices, data, x, y)
    return np.vdot(x, y)


def dot(x, y):
    """xᴴ y."""
    return np.vdot(x, y)


def norm2(x):
    return float(np.sqrt(np.sum(np.abs(x) ** 2)))


def axpby(a, x, b, y):
    """y ← a x + b y."""
    y[...] = a * x + b * y


def cg_update(alpha, p, q, x, r):
    """x ← x + α p; r ← r − α q; return ‖r‖²."""
    x += alpha * p
    r -= alpha * q
    return float(np.sum(np.abs(r) ** 2))


def jacobi(inv_diag, r, z):
    """z ← D⁻¹ r; return rᴴ z."""
    z[...] = inv_diag * r
    return np.vdot(r, z)


def sor_sweep(indptr, indices, data, x, b, omega, start, stop, step):
    """One SOR sweep over rows range(start, stop, step), x updated in place."""
    for i in range(start, stop, step):
        cols = indices[indptr[i]:indptr[i + 1]]
        vals = data[indptr[i]:indptr[i + 1]]
        diag = vals[cols == i].sum()
        off = np.sum(vals[cols != i] * x[cols[cols != i]])
        x[i] = (1 - omega) * x[i] + omega * (b[i] - off) / diag


# --------------------------------------------------------------------------- relaxation (relax/)
def ssor_sweep(indptr, indices, data, x, b, omega):
    """Forward then backward SOR sweep, x updated in place."""
    n = len(indptr) - 1
    sor_sweep(indptr, indices, data, x, b, omega, 0, n, 1)
    sor_sweep(indptr, indices, data, x, b, omega, n - 1, -1, -1)


def ssor_apply(indptr, indices, data, r, z, omega):
    """z ← M_SSOR⁻¹ r: one symmetric sweep from z = 0."""
    z[...] = 0
    ssor_sweep(indptr, indices, data, z, r, omega)


def sor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr, reverse):
    """Rows of each colour updated from the same (Jacobi-like) snapshot, colours in order.

    Within one colour rows share no entry, so updating them one at a time or
    all from a snapshot gives the same result; this reference uses the snapshot.
    """
    ncolors = len(color_ptr) - 1
    colors = range(ncolors - 1, -1, -1) if reverse else range(ncolors)
    for c in colors:
        rows = order[color_ptr[c]:color_ptr[c + 1]]
        snapshot = x.copy()
        for i in rows:
            cols = indices[indptr[i]:indptr[i + 1]]
            vals = data[indptr[i]:indptr[i + 1]]
            diag = vals[cols == i].sum()
            off = np.sum(vals[cols != i] * snapshot[cols[cols != i]])
            x[i] = (1 - omega) * snapshot[i] + omega * (b[i] - off) / diag


def ssor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr):
    """Multicolour symmetric sweep: colours 0..m−1 then m−1..0."""
    sor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr, False)
    sor_sweep_multicolor(indptr, indices, data, x, b, omega, order, color_ptr, True)


def greedy_coloring(indptr, indices):
    """First-fit colouring of a symmetric pattern, rows in natural order."""
    n = len(indptr) - 1
    colors = -np.ones(n, dtype=np.int32)
    for i in range(n):
        nbr = indices[indptr[i]:indptr[i + 1]]
        taken = {int(colors[j]) for j in nbr if j != i and colors[j] >= 0}
        c = 0
        while c in taken:
            c += 1
        colors[i] = c
    return colors


# --- GMRES kernels (kernels/cpu/_gmres.py) ---
def mgs(V, k, w, h, reverse=False):
    """Modified Gram–Schmidt of w against V[:k] (in place): h[q] ← V[q]ᴴ w, w ← w − h[q] V[q], q in
    order (or reversed); returns (‖w_in‖², ‖w_out‖²)."""
    h0sq = float(np.vdot(w, w).real)
    for q in (range(k - 1, -1, -1) if reverse else range(k)):
        h[q] = np.vdot(V[q], w)
        w -= h[q] * V[q]
    return h0sq, float(np.vdot(w, w).real)


def gs_combine(V, k, y, d, x):
    """x ← x + D (V[:k]ᵀ y), D = diag(d) or I when d is empty."""
    z = V[:k].T @ y[:k]
    x += d * z if len(d) else z


def givens(a, b):
    """(c, s, ρ) with c real and [c s; −s̄ c] [a; b] = [ρ; 0]."""
    t = np.hypot(abs(a), abs(b))
    if t == 0:
        return 1.0, 0.0 * a, a
    if a == 0:
        return 0.0, np.conj(b) / abs(b), abs(b) + 0 * b
    phase = a / abs(a)
    return abs(a) / t, phase * np.conj(b) / t, phase * t


def hessenberg_solve(H, g, k, y):
    """y[:k] ← R⁻¹ g[:k] for the upper triangle R of H (zero pivot → zero component)."""
    for i in range(k - 1, -1, -1):
        acc = g[i] - H[i, i + 1:k] @ y[i + 1:k]
        y[i] = 0 if H[i, i] == 0 else acc / H[i, i]


# --- BiCGSTAB kernels (kernels/cpu/_bicgstab.py) ---
def spmv_dot_with(indptr, indices, data, x, z, y):
    """y ← A x; return zᴴ y."""
    spmv(indptr, indices, data, x, y)
    return np.vdot(z, y)


def spmv_dots2(indptr, indices, data, x, y):
    """y ← A x; return (yᴴ x, ‖y‖²)."""
    spmv(indptr, indices, data, x, y)
    return np.vdot(y, x), float(np.sum(np.abs(y) ** 2))


def axpy_norm(alpha, v, s):
    """s ← s − α v; return ‖s‖²."""
    s -= alpha * v
    return float(np.sum(np.abs(s) ** 2))


def bicgstab_xr(alpha, omega, p, t, rt, d, x, s):
    """x ← x + D(α p + ω s); s ← s − ω t; return (‖s‖², r̃ᴴ s)."""
    dx = alpha * p + omega * s
    x += d * dx if len(d) else dx
    s -= omega * t
    return float(np.sum(np.abs(s) ** 2)), np.vdot(rt, s)


def bicgstab_p(beta, omega, r, v, p):
    """p ← r + β (p − ω v)."""
    p[...] = r + beta * (p - omega * v)
