"""GMRES and BiCGSTAB kernels against the numpy references (serial and threaded, dtypes)."""

from __future__ import annotations

import numpy as np
import pytest

from krylovlab.gallery import convection_diffusion
from krylovlab.kernels import _reference as ref
from krylovlab.kernels import cpu
from krylovlab.kernels.cpu import _bicgstab as kb
from krylovlab.kernels.cpu import _gmres as kg

DTYPES = [np.float32, np.float64, np.complex128]


def rand(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def tol(dtype):
    return 2e-4 if np.dtype(dtype) == np.float32 else 1e-11


def variants(dtype):
    # the threaded variants are compiled for float64 only, to keep test compile time down
    return ["serial", "parallel"] if np.dtype(dtype) == np.float64 else ["serial"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [7, 1000])
def test_solution_update(dtype, n):
    rng = np.random.default_rng(0)
    m, k = 6, 4
    V = rand(rng, (m + 1, n), dtype)
    w0 = rand(rng, n, dtype)
    h = rand(rng, m + 1, dtype)
    for var in variants(dtype):
        t = tol(dtype)
        for d in (np.empty(0, dtype), rand(rng, n, dtype)):
            xk, xr = w0.copy(), w0.copy()
            getattr(kg, f"gs_combine_{var}")(V, k, h, d, xk)
            ref.gs_combine(V, k, h, d, xr)
            np.testing.assert_allclose(xk, xr, rtol=t, atol=t * 10)


def test_threaded_variants_on_large_vectors():
    rng = np.random.default_rng(1)
    n, k = 30_001, 5
    V = np.linalg.qr(rng.standard_normal((n, k + 1)))[0].T.copy()
    w = rng.standard_normal(n)
    h_s, h_p = np.zeros(k), np.zeros(k)
    w_s, w_p = w.copy(), w.copy()
    s_s = kg.mgs_serial(V, k, w_s, h_s)
    s_p = kg.mgs_parallel(V, k, w_p, h_p)
    assert s_p[0] == pytest.approx(s_s[0], rel=1e-12) and s_p[1] == pytest.approx(s_s[1], rel=1e-10)
    np.testing.assert_allclose(h_p, h_s, rtol=1e-10)
    np.testing.assert_allclose(w_p, w_s, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("a, b", [(3.0, 4.0), (0.0, 2.0), (-1.5, 0.0), (1 + 2j, 3.0), (0j, 1 - 1j)])
def test_givens(a, b):
    c, s, rho = kg.givens(a, b)
    c_r, s_r, rho_r = ref.givens(a, b)
    assert c == pytest.approx(c_r) and s == pytest.approx(s_r) and rho == pytest.approx(rho_r)
    G = np.array([[c, s], [-np.conj(s), c]])
    np.testing.assert_allclose(G @ np.array([a, b]), [rho, 0], atol=1e-14)
    np.testing.assert_allclose(G.conj().T @ G, np.eye(2), atol=1e-14)


def test_hessenberg_solve():
    rng = np.random.default_rng(2)
    H = np.triu(rand(rng, (6, 5), np.complex128))
    H[2, 2] = 0  # singular pivot: zero component, like scipy
    g = rand(rng, 6, np.complex128)
    yk, yr = np.zeros(5, complex), np.zeros(5, complex)
    kg.hessenberg_solve(H, g, 5, yk)
    ref.hessenberg_solve(H, g, 5, yr)
    np.testing.assert_allclose(yk, yr, rtol=1e-12)
    assert yk[2] == 0


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_bicgstab_kernels(dtype):
    A = convection_diffusion((9, 11)).astype(dtype)
    A.data += (0.5j if np.dtype(dtype).kind == "c" else 0) * A.data
    rng = np.random.default_rng(3)
    n = A.shape[0]
    x, z, p, t, rt, v = (rand(rng, n, dtype) for _ in range(6))
    for var in variants(dtype):
        yk, yr = np.empty(n, dtype), np.empty(n, dtype)
        assert getattr(kb, f"spmv_dot_with_{var}")(A.indptr, A.indices, A.data, x, z, yk) == pytest.approx(
            ref.spmv_dot_with(A.indptr, A.indices, A.data, x, z, yr), rel=1e-12)
        np.testing.assert_allclose(yk, yr, rtol=1e-12)
        sk = getattr(kb, f"spmv_dots2_{var}")(A.indptr, A.indices, A.data, x, yk)
        sr = ref.spmv_dots2(A.indptr, A.indices, A.data, x, yr)
        assert sk[0] == pytest.approx(sr[0], rel=1e-12) and sk[1] == pytest.approx(sr[1], rel=1e-12)
        a1, a2 = x.copy(), x.copy()
        assert getattr(kb, f"axpy_norm_{var}")(0.3, v, a1) == pytest.approx(ref.axpy_norm(0.3, v, a2), rel=1e-12)
        np.testing.assert_allclose(a1, a2, rtol=1e-12)
        for d in (np.empty(0, dtype), rand(rng, n, dtype)):
            xk, xr, sk_, sr_ = x.copy(), x.copy(), z.copy(), z.copy()
            ok = getattr(kb, f"bicgstab_xr_{var}")(0.4, 0.7, p, t, rt, d, xk, sk_)
            orf = ref.bicgstab_xr(0.4, 0.7, p, t, rt, d, xr, sr_)
            assert ok[0] == pytest.approx(orf[0], rel=1e-12) and ok[1] == pytest.approx(orf[1], rel=1e-12)
            np.testing.assert_allclose(xk, xr, rtol=1e-12)
            np.testing.assert_allclose(sk_, sr_, rtol=1e-12)
        pk, pr = p.copy(), p.copy()
        getattr(kb, f"bicgstab_p_{var}")(0.9, 0.2, z, v, pk)
        ref.bicgstab_p(0.9, 0.2, z, v, pr)
        np.testing.assert_allclose(pk, pr, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [7, 1000])
@pytest.mark.parametrize("reverse", [False, True])
def test_fused_modified_gram_schmidt(dtype, n, reverse):
    """The fused MGS sweeps equal the textbook MGS loop (either direction) and orthogonalise."""
    rng = np.random.default_rng(1)
    m, k = 6, 5
    V = rand(rng, (n, m + 1), dtype)
    V = np.linalg.qr(V)[0].T.copy() if n >= m + 1 else rand(rng, (m + 1, n), dtype)
    w0 = rand(rng, n, dtype)
    for var in variants(dtype):
        t = tol(dtype)
        hk, hr = np.zeros(m + 1, dtype), np.zeros(m + 1, dtype)
        wk, wr = w0.copy(), w0.copy()
        s0k, s1k = getattr(kg, f"mgs_{var}")(V, k, wk, hk, reverse)
        s0r, s1r = ref.mgs(V, k, wr, hr, reverse)
        np.testing.assert_allclose(hk[:k], hr[:k], rtol=t, atol=t * 10)
        np.testing.assert_allclose(wk, wr, rtol=t, atol=t * 10)
        assert s0k == pytest.approx(s0r, rel=t) and s1k == pytest.approx(s1r, rel=t * 10)
        assert np.all(hk[k:] == 0)  # rows past k untouched
        if n >= m + 1:  # orthonormal basis: the result is orthogonal to V[:k]
            assert np.abs(V[:k].conj() @ wk).max() <= 50 * t * np.linalg.norm(w0)


@pytest.mark.parametrize("nblk", [1, 2, 3])
def test_mgs_second_pass_only_near_breakdown(nblk):
    """`mgs_twice_if_tiny` reorthogonalises only when the remainder is rounding-sized (serial and blocked)."""
    rng = np.random.default_rng(2)
    n, k = 500, 4
    V = np.linalg.qr(rng.standard_normal((n, k + 1)))[0].T.copy()
    h1, h2 = np.zeros(k + 1), np.zeros(k + 1)
    w = rng.standard_normal(n)
    w_ref, h_ref = w.copy(), np.zeros(k + 1)
    kg.mgs_serial(V, k, w_ref, h_ref)
    kg.mgs_twice_if_tiny(V, k, w, h1, h2, nblk, False)
    assert np.all(h2 == 0)  # a genuine new direction: one pass
    np.testing.assert_allclose(h1[:k], h_ref[:k], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-14)
    w = V[:k].T @ rng.standard_normal(k)  # in span(V): the remainder is rounding
    s0, s1 = kg.mgs_twice_if_tiny(V, k, w, h1, h2, nblk, False)
    assert np.any(h2[:k] != 0) and s1 <= (1e-14) ** 2 * s0


@pytest.mark.parametrize("start", [0, 1, 7, 4093])
def test_mgs_range_any_start(start):
    """The sweep on [lo, hi) (unsigned bounds, any start) equals the same arithmetic in numpy."""
    rng = np.random.default_rng(5)
    n = 5000
    V = rng.standard_normal((3, n))
    w = rng.standard_normal(n)
    w0 = w.copy()
    dot, ss = kg._mgs_range(V, 0, 0.3, w, 2, start, n)
    expect = w0[start:] - 0.3 * V[0, start:]
    np.testing.assert_allclose(w[start:], expect, rtol=1e-13, atol=1e-14)  # FMA contraction rounds differently
    assert np.array_equal(w[:start], w0[:start])
    assert dot == pytest.approx(V[2, start:] @ expect, rel=1e-12)
    assert ss == 0.0  # a middle sweep of a pass does not sum ‖w‖²
    w = w0.copy()
    dot, ss = kg._mgs_range(V, 0, 0.3, w, -1, start, n)  # the last sweep does
    assert dot == 0.0 and ss == pytest.approx(expect @ expect, rel=1e-12)
    w = w0.copy()
    dot, ss = kg._mgs_range(V, -1, 0.0, w, 2, start, n)  # and so does the first
    assert dot == pytest.approx(V[2, start:] @ w0[start:], rel=1e-12)
    assert ss == pytest.approx(w0[start:] @ w0[start:], rel=1e-12)


@pytest.mark.parametrize("parallel, blocks", [(False, 1), (True, 2)])
def test_gmres_csr_padded_basis_rows_and_diagonal_storage(parallel, blocks):
    """The basis rows may be longer than n (GMRES pads them against cache-set aliasing); the kernel
    reads only the first n entries, so padding changes nothing, bit for bit.  Nor does taking the
    Arnoldi products from diagonal storage (the same sums in the same order)."""
    A = convection_diffusion((32, 32), eps=0.05, velocity=(1.0, 0.5)).tocsr()
    A.sort_indices()
    n = A.shape[0]
    b = np.random.default_rng(3).standard_normal(n)
    tol = 1e-9 * np.linalg.norm(b)
    offs, vals = cpu.dia_from_csr(A.indptr, A.indices, A.data)
    assert offs.tolist() == [-32, -1, 0, 1, 32]
    out = []
    for pad, dia in ((0, False), (8, False), (8, True)):
        x = np.zeros(n)
        V = np.full((21, n + pad), np.nan)  # padding entries are NaN: any read of them would show
        d_off, d_val = (offs, vals) if dia else (offs[:0], vals[:0])
        res = kg.gmres_csr(A.indptr, A.indices, A.data, A.data, np.empty(0), b, x, tol, 10 * n, 20, 0,
                           np.empty(0), False, parallel, np.finfo(float).eps, True, V, blocks, d_off, d_val)
        out.append((res, x))
    (r0, x0), (r8, x8), (rd, xd) = out
    assert r0[1] == r8[1] == rd[1] == 2 and r0[0] == r8[0] == rd[0]  # converged (RTOL), same iteration count
    np.testing.assert_array_equal(x0, x8)
    np.testing.assert_array_equal(x8, xd)
    assert np.linalg.norm(b - A @ x8) <= 1e-9 * np.linalg.norm(b) * (1 + 1e-6)
