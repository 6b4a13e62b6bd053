"""BiCGSTAB: parity with scipy's bicgstab, preconditioners, complex systems,
breakdown, NaN guards and monitors."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import krylovlab
from krylovlab import BiCGSTAB, Status
from krylovlab.gallery import convection_diffusion


def true_rel(A, x, b):
    return np.linalg.norm(b - A @ x) / np.linalg.norm(b)


@pytest.fixture(scope="module")
def cd():
    A = convection_diffusion((20, 20))
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    return A, b


def scipy_run(A, b, **kw):
    xs = []
    x, info = spla.bicgstab(A, b, callback=lambda xk: xs.append(np.linalg.norm(b - A @ xk)), **kw)
    return x, info, xs


@pytest.mark.parametrize("complex_", [False, True])
def test_matches_scipy(cd, complex_):
    A, b = cd
    if complex_:
        A = (A + 0.3j * sp.identity(A.shape[0])).tocsr()
        b = b + 1j * b[::-1]
    x_s, info_s, res_s = scipy_run(A, b, rtol=1e-10)
    res = BiCGSTAB(A, rtol=1e-10, history=True).solve(b)
    assert info_s == 0 and res.converged and res.extras["path"] == "jitted"
    # scipy calls back after full iterations only; a half-step exit is one more iteration here
    assert res.iterations in (len(res_s), len(res_s) + 1)
    k = min(len(res_s), res.iterations) - 1
    np.testing.assert_allclose(res.history[1:k + 1], res_s[:k], rtol=1e-5)
    assert true_rel(A, res.x, b) <= 1e-10
    np.testing.assert_allclose(res.x, x_s, rtol=1e-6, atol=1e-9)


def test_jitted_and_python_paths_agree(cd):
    A, b = cd
    fast = BiCGSTAB(A, rtol=1e-9, history=True).solve(b)
    slow = BiCGSTAB(spla.aslinearoperator(A), rtol=1e-9, history=True).solve(b)
    assert slow.extras["path"] == "python"
    assert fast.iterations == slow.iterations
    np.testing.assert_allclose(fast.history, slow.history, rtol=1e-7)


def test_parallel_path():
    # (eps = 0.01 at this size is so non-normal that BiCGSTAB's path depends on rounding order)
    A = convection_diffusion((150, 150), eps=0.2)
    b = np.ones(A.shape[0])
    res = BiCGSTAB(A, rtol=1e-8).solve(b)
    x, info, hist = scipy_run(A, b, rtol=1e-8)
    assert res.converged and info == 0 and abs(res.iterations - len(hist)) <= max(2, len(hist) // 10)
    assert true_rel(A, res.x, b) <= 1e-8


def test_float32():
    A = convection_diffusion((16, 16), dtype=np.float32)
    b = np.ones(A.shape[0], dtype=np.float32)
    res = BiCGSTAB(A, rtol=1e-4).solve(b)
    assert res.converged and res.x.dtype == np.float32
    assert true_rel(A.astype(np.float64), res.x.astype(np.float64), b) <= 1e-4


def test_complex_against_dense_solve():
    rng = np.random.default_rng(5)
    n = 50
    A = (sp.random(n, n, density=0.1, random_state=1) * (1 + 1j) + 5 * sp.identity(n)).tocsr()
    x_true = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    b = A @ x_true
    res = BiCGSTAB(A, rtol=1e-12).solve(b)
    assert res.converged
    np.testing.assert_allclose(res.x, np.linalg.solve(A.toarray(), b), rtol=1e-9)


def test_preconditioners(cd):
    A, b = cd
    A = (sp.diags(np.linspace(1, 80, A.shape[0])) @ A).tocsr()
    plain = BiCGSTAB(A, rtol=1e-8).solve(b)
    jac = BiCGSTAB(A, rtol=1e-8, M=krylovlab.Jacobi(A)).solve(b)
    d = 1 / A.diagonal()
    gen = BiCGSTAB(A, rtol=1e-8, M=spla.LinearOperator(A.shape, matvec=lambda r: d * r, dtype=float)).solve(b)
    assert jac.extras["path"] == "jitted" and gen.extras["path"] == "python"
    assert jac.converged and gen.converged and abs(jac.iterations - gen.iterations) <= 1
    assert jac.nprec > 0 and gen.nprec > 0
    ilu = spla.spilu(A.tocsc(), drop_tol=1e-3)
    res = BiCGSTAB(A, rtol=1e-10, M=spla.LinearOperator(A.shape, ilu.solve)).solve(b)
    assert res.converged and res.iterations < plain.iterations
    for r, tol in ((jac, 1e-8), (gen, 1e-8), (res, 1e-10)):
        assert true_rel(A, r.x, b) <= tol


def test_breakdown_matches_scipy():
    A = np.array([[0.0, 1.0], [-1.0, 0.0]])  # r̃ᴴ A r = 0 at the first step
    b = np.array([1.0, 0.0])
    for op in (A, sp.csr_matrix(A)):
        res = BiCGSTAB(op).solve(b)
        assert res.status == Status.BREAKDOWN and not res.converged and res.info < 0
    x, info = krylovlab.bicgstab(sp.csr_matrix(A), b)
    xs, info_s = spla.bicgstab(A, b)
    assert info == info_s == -11


def test_nan_guards(cd):
    A, b = cd
    bad = b.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError):
        BiCGSTAB(A).solve(bad)
    M = spla.LinearOperator(A.shape, matvec=lambda r: r * np.inf, dtype=float)
    res = BiCGSTAB(A, M=M).solve(b)
    assert res.status == Status.NANORINF and not res.converged


def test_monitors_stop_and_maxiter(cd):
    A, b = cd
    seen = []

    def stop3(info):
        seen.append(info.iteration)
        assert abs(np.linalg.norm(b - A @ info.x()) - info.rnorm) <= 1e-6 * np.linalg.norm(b)
        return info.iteration == 3

    res = BiCGSTAB(A, rtol=1e-12, monitors=[stop3]).solve(b)
    assert res.status == Status.USER_STOP and seen == [1, 2, 3] and res.iterations == 3
    hist = krylovlab.History()
    res = BiCGSTAB(A, rtol=1e-14, maxiter=9, monitors=[hist]).solve(b)
    assert res.status == Status.MAXITER and len(hist.rnorms) == 9 and res.info == 9
    fast = BiCGSTAB(A, rtol=1e-14, maxiter=9).solve(b)
    assert fast.status == Status.MAXITER and fast.iterations == 9 and fast.nmatvec == 18


def test_x0_untouched(cd):
    A, b = cd
    x0 = np.full(A.shape[0], 0.5)
    keep = x0.copy()
    res = BiCGSTAB(A, rtol=1e-8).solve(b, x0)
    assert res.converged and np.array_equal(x0, keep) and true_rel(A, res.x, b) <= 1e-8


# ---------------------------------------------------------------- scipy drop-in
def test_signature_matches_scipy():
    assert inspect.signature(krylovlab.bicgstab) == inspect.signature(spla.bicgstab)


def test_dropin_info_and_callbacks(cd):
    A, b = cd
    ours, theirs = [], []
    x, info = krylovlab.bicgstab(A, b, rtol=1e-12, maxiter=5, callback=ours.append)
    xs, info_s = spla.bicgstab(A, b, rtol=1e-12, maxiter=5, callback=theirs.append)
    assert info == info_s == 5 and len(ours) == len(theirs) == 5
    np.testing.assert_allclose(ours[-1], theirs[-1], rtol=1e-6, atol=1e-10)
    x, info = krylovlab.bicgstab(A, b, rtol=1e-8)
    assert info == 0 and true_rel(A, x, b) <= 1e-8
    x, info = krylovlab.bicgstab(A, np.zeros_like(b))
    assert info == 0 and not x.any()
    with pytest.raises(ValueError):
        krylovlab.bicgstab(A, b, atol=float("nan"))
