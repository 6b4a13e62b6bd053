"""Relaxation kernels (kernels/cpu/_relax.py) against kernels/_reference.py and a dense gold solve.

Gold for a forward sweep: (D/ω + L) x_new = b − ((1 − 1/ω) D + U) x_old; a
backward sweep swaps L and U.  Matrices are tiny, so the dense solves are exact
to rounding.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from krylovlab.gallery import poisson
from krylovlab.kernels import _reference as ref
from krylovlab.kernels.cpu import _relax as K
from krylovlab.relax.coloring import multicolor_ordering


def _nonsym(n=12, seed=0):
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=0.3, random_state=seed, format="csr")
    a = a + sp.diags(4.0 + rng.random(n))
    a = sp.csr_matrix(a)
    a.sort_indices()
    return a


MATS = {
    "poisson2d": lambda: poisson((5, 4)),
    "nonsymmetric": _nonsym,
    "poisson1d": lambda: poisson((7,)),
}


def _parts(a):
    d = np.diag(a.diagonal())
    return d, np.tril(a.toarray(), -1), np.triu(a.toarray(), 1)


def gold_forward(a, x, b, w):
    D, L, U = _parts(a)
    return np.linalg.solve(D / w + L, b - ((1 - 1 / w) * D + U) @ x)


def gold_backward(a, x, b, w):
    D, L, U = _parts(a)
    return np.linalg.solve(D / w + U, b - ((1 - 1 / w) * D + L) @ x)


def _arrays(a):
    return a.indptr, a.indices, a.data


@pytest.mark.parametrize("mname", list(MATS))
@pytest.mark.parametrize("omega", [0.6, 1.0, 1.7])
def test_sor_sweep_matches_gold_and_reference(mname, omega):
    a = MATS[mname]()
    n = a.shape[0]
    rng = np.random.default_rng(1)
    b, x0 = rng.standard_normal(n), rng.standard_normal(n)
    for (start, stop, step), gold in (((0, n, 1), gold_forward), ((n - 1, -1, -1), gold_backward)):
        x = x0.copy()
        K.sor_sweep(*_arrays(a), x, b, omega, start, stop, step)
        xr = x0.copy()
        ref.sor_sweep(*_arrays(a), xr, b, omega, start, stop, step)
        np.testing.assert_allclose(x, gold(a, x0, b, omega), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(x, xr, rtol=1e-13, atol=1e-13)


def test_sor_sweep_partial_ranges_and_complex():
    a = _nonsym(15, 3)
    n = a.shape[0]
    rng = np.random.default_rng(2)
    b = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    data = a.data * (1 + 0.3j)
    for rows in ((2, 11, 3), (n - 2, 0, -2), (4, 4, 1)):
        x = rng.standard_normal(n) + 0j
        xr = x.copy()
        K.sor_sweep(a.indptr, a.indices, data, x, b, 1.3, *rows)
        ref.sor_sweep(a.indptr, a.indices, data, xr, b, 1.3, *rows)
        np.testing.assert_allclose(x, xr, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("mname", list(MATS))
def test_ssor_sweep_and_apply(mname):
    a = MATS[mname]()
    n = a.shape[0]
    rng = np.random.default_rng(4)
    b, x0 = rng.standard_normal(n), rng.standard_normal(n)
    w = 1.4
    x = x0.copy()
    K.ssor_sweep(*_arrays(a), x, b, w)
    np.testing.assert_allclose(x, gold_backward(a, gold_forward(a, x0, b, w), b, w), rtol=1e-12, atol=1e-12)
    xr = x0.copy()
    ref.ssor_sweep(*_arrays(a), xr, b, w)
    np.testing.assert_allclose(x, xr, rtol=1e-13, atol=1e-13)
    # preconditioner: z = M⁻¹ r with M = ω/(2 − ω) (D/ω + L) D⁻¹ (D/ω + U)
    z = np.full(n, np.nan)
    K.ssor_apply(*_arrays(a), b, z, w)
    D, L, U = _parts(a)
    M = w / (2 - w) * (D / w + L) @ np.linalg.inv(D) @ (D / w + U)
    np.testing.assert_allclose(z, np.linalg.solve(M, b), rtol=1e-11, atol=1e-12)
    zr = np.empty(n)
    ref.ssor_apply(*_arrays(a), b, zr, w)
    np.testing.assert_allclose(z, zr, rtol=1e-13, atol=1e-13)
    zd = np.full(n, np.nan)
    K.ssor_apply_diag(*_arrays(a), 1.0 / a.diagonal(), b, zd, w)
    np.testing.assert_allclose(zd, zr, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("mname", list(MATS))
def test_coloring_is_proper_and_matches_reference(mname):
    a = MATS[mname]()
    col = multicolor_ordering(a)
    s = (abs(a) + abs(a).T).tocoo()
    off = s.row != s.col
    assert not np.any(col.colors[s.row[off]] == col.colors[s.col[off]])
    sym = (abs(a) + abs(a).T).tocsr()
    sym.sort_indices()
    np.testing.assert_array_equal(col.colors, ref.greedy_coloring(sym.indptr, sym.indices))
    assert sorted(col.order) == list(range(a.shape[0]))
    assert col.color_ptr[-1] == a.shape[0]
    if mname == "poisson2d":
        assert col.ncolors == 2  # red-black


@pytest.mark.parametrize("mname", list(MATS))
@pytest.mark.parametrize("reverse", [False, True])
def test_multicolor_sweep_is_sor_in_colour_order(mname, reverse):
    a = MATS[mname]()
    n = a.shape[0]
    col = multicolor_ordering(a)
    rng = np.random.default_rng(5)
    b, x0 = rng.standard_normal(n), rng.standard_normal(n)
    w = 1.25
    x = x0.copy()
    K.sor_sweep_multicolor(*_arrays(a), x, b, w, col.order, col.color_ptr, reverse)
    xr = x0.copy()
    ref.sor_sweep_multicolor(*_arrays(a), xr, b, w, col.order, col.color_ptr, reverse)
    np.testing.assert_allclose(x, xr, rtol=1e-13, atol=1e-13)
    # dense gold: a natural-order sweep on P A Pᵀ, P the colour ordering
    p = col.order
    ap = a[p][:, p]
    gold = (gold_backward if reverse else gold_forward)(ap, x0[p], b[p], w)
    np.testing.assert_allclose(x[p], gold, rtol=1e-12, atol=1e-12)
    # symmetric multicolour sweep = forward then reverse
    x = x0.copy()
    K.ssor_sweep_multicolor(*_arrays(a), x, b, w, col.order, col.color_ptr)
    xr = x0.copy()
    ref.ssor_sweep_multicolor(*_arrays(a), xr, b, w, col.order, col.color_ptr)
    np.testing.assert_allclose(x, xr, rtol=1e-13, atol=1e-13)


def _reference_solve(a, b, w, tol, maxiter, sweep):
    """Plain loop: sweep, then the true residual; returns (iterations, x) at the first k with ‖r_k‖ ≤ tol."""
    x = np.zeros_like(b)
    n = a.shape[0]
    if np.linalg.norm(b - a @ x) <= tol:
        return 0, x
    for k in range(1, maxiter + 1):
        if sweep in (0, 2):
            ref.sor_sweep(*_arrays(a), x, b, w, 0, n, 1)
        if sweep in (1, 2):
            ref.sor_sweep(*_arrays(a), x, b, w, n - 1, -1, -1)
        if np.linalg.norm(b - a @ x) <= tol:
            return k, x
    return maxiter, x


@pytest.mark.parametrize("sweep", [0, 1, 2])
def test_sor_solve_fused_residual_matches_plain_loop(sweep):
    a = poisson((6, 5))
    b = np.random.default_rng(6).standard_normal(a.shape[0])
    tol = 1e-8 * np.linalg.norm(b)
    k_ref, x_ref = _reference_solve(a, b, 1.5, tol, 500, sweep)
    x = np.zeros_like(b)
    hist = np.empty(501)
    it, code, rn, sweeps = K.sor_solve(*_arrays(a), x, b, 1.5, tol, 500, sweep, hist, np.empty_like(b))
    assert code == K.CODE_RTOL and it == k_ref and sweeps == it + 1
    np.testing.assert_allclose(x, x_ref, rtol=1e-10, atol=1e-12)
    assert rn == pytest.approx(np.linalg.norm(b - a @ x), rel=1e-8)
    assert rn <= tol
    assert hist[0] == pytest.approx(np.linalg.norm(b), rel=1e-14)
    assert np.all(hist[:it] > tol)


def test_sor_solve_maxiter_and_multicolor():
    a = poisson((6, 5))
    n = a.shape[0]
    b = np.random.default_rng(7).standard_normal(n)
    tol = 1e-8 * np.linalg.norm(b)
    x = np.zeros(n)
    it, code, rn, _ = K.sor_solve(*_arrays(a), x, b, 1.5, tol, 5, 0, np.empty(0), np.empty(n))
    assert (it, code) == (5, K.CODE_MAXITER)
    assert rn == pytest.approx(np.linalg.norm(b - a @ x), rel=1e-12)
    col = multicolor_ordering(a)
    for sweep in (0, 2):
        x = np.zeros(n)
        it, code, rn, _ = K.sor_solve_multicolor(*_arrays(a), x, b, 1.5, tol, 2000, sweep, np.empty(0),
                                                 np.empty(n), col.order, col.color_ptr)
        assert code == K.CODE_RTOL
        assert np.linalg.norm(b - a @ x) <= tol * (1 + 1e-8)
        # same iterate as the multicolour sweeps run one by one
        xr = np.zeros(n)
        for _ in range(it):
            if sweep == 0:
                K.sor_sweep_multicolor(*_arrays(a), xr, b, 1.5, col.order, col.color_ptr, False)
            else:
                K.ssor_sweep_multicolor(*_arrays(a), xr, b, 1.5, col.order, col.color_ptr)
        np.testing.assert_allclose(x, xr, rtol=1e-12, atol=1e-14)


def test_sor_solve_stops_on_divergence():
    a = sp.csr_matrix(np.array([[1.0, 3.0], [3.0, 1.0]]))  # SOR diverges (not positive definite)
    b = np.ones(2)
    x = np.zeros(2)
    it, code, rn, _ = K.sor_solve(*_arrays(a), x, b, 1.0, 1e-8, 10_000, 0, np.empty(0), np.empty(2))
    assert code in (K.CODE_DIVERGED, K.CODE_NANORINF)
    assert it < 10_000


# ------------------------------------------------------------------------------------ GPU
def test_gpu_relax_source_compiles_with_nvcc(tmp_path):
    import shutil
    import subprocess

    from krylovlab.kernels.gpu import _relax as G

    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH")
    unit = tmp_path / "relax.cu"
    lines = [G.RELAX_SOURCE, "void* kl_all_relax[] = {"]
    lines += [f"    (void*)&{name}," for name in G.relax_name_expressions()]
    unit.write_text("\n".join(lines + ["};", ""]))
    out = tmp_path / "relax.ptx"
    proc = subprocess.run([nvcc, "--ptx", "-std=c++14", "-Werror", "all-warnings", str(unit), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().count(".entry") == len(G.relax_name_expressions())


def _cupy_or_skip():
    from krylovlab.backend import cupy_available

    if not cupy_available():
        pytest.skip("needs CuPy and a CUDA device")
    import cupy

    return cupy


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_sweeps_match_reference(dtype):
    cp = _cupy_or_skip()
    from krylovlab.kernels.gpu import _relax as G

    a = _nonsym(20, 9)
    n = a.shape[0]
    rng = np.random.default_rng(0)
    b, x0 = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    d = [cp.asarray(v) for v in (a.indptr, a.indices, a.data.astype(dtype))]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for rows in ((0, n, 1), (n - 1, -1, -1)):
        x = cp.asarray(x0)
        G.sor_sweep(*d, x, cp.asarray(b), 1.3, *rows)
        xr = x0.astype(np.float64)
        ref.sor_sweep(a.indptr, a.indices, a.data, xr, b.astype(np.float64), 1.3, *rows)
        np.testing.assert_allclose(x.get(), xr, rtol=tol, atol=tol)
    col = multicolor_ordering(a)
    for reverse in (False, True):
        x = cp.asarray(x0)
        G.sor_sweep_multicolor(*d, x, cp.asarray(b), 1.3, cp.asarray(col.order), col.color_ptr, reverse)
        xr = x0.astype(np.float64)
        ref.sor_sweep_multicolor(a.indptr, a.indices, a.data, xr, b.astype(np.float64), 1.3, col.order,
                                 col.color_ptr, reverse)
        np.testing.assert_allclose(x.get(), xr, rtol=tol, atol=tol)
    z = cp.empty(n, dtype=dtype)
    G.ssor_apply(*d, cp.asarray(b), z, 1.3)
    zr = np.empty(n)
    ref.ssor_apply(a.indptr, a.indices, a.data, b.astype(np.float64), zr, 1.3)
    np.testing.assert_allclose(z.get(), zr, rtol=tol, atol=tol)
