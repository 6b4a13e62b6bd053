"""GMRES: parity with scipy's gmres, restart and callback semantics, preconditioners,
complex systems, breakdown, NaN guards and monitors."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import krylovlab
from krylovlab import GMRES, Status
from krylovlab.gallery import convection_diffusion


def true_rel(A, x, b):
    return np.linalg.norm(b - A @ x) / np.linalg.norm(b)


@pytest.fixture(scope="module")
def cd():
    A = convection_diffusion((20, 20))
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    return A, b


def scipy_history(A, b, **kw):
    hist = []
    x, info = spla.gmres(A, b, callback=hist.append, callback_type="pr_norm", **kw)
    return x, info, np.array(hist) * np.linalg.norm(b)


@pytest.mark.parametrize("restart", [5, 30])
def test_history_matches_scipy(cd, restart):
    A, b = cd
    xs, info_s, hs = scipy_history(A, b, rtol=1e-8, restart=restart)
    res = GMRES(A, restart=restart, rtol=1e-8, history=True).solve(b)
    assert info_s == 0 and res.converged and res.info == 0
    assert res.iterations == len(hs)
    np.testing.assert_allclose(res.history[1:], hs, rtol=1e-6)
    assert true_rel(A, res.x, b) <= 1e-8
    assert res.extras["path"] == "jitted"


def test_jitted_and_python_paths_agree(cd):
    A, b = cd
    fast = GMRES(A, restart=10, rtol=1e-9, history=True).solve(b)
    hist = krylovlab.History()
    slow = GMRES(A, restart=10, rtol=1e-9, history=True, monitors=[hist]).solve(b)
    assert slow.extras["path"] == "python"
    assert fast.iterations == slow.iterations == len(hist.rnorms)
    np.testing.assert_allclose(fast.history, slow.history, rtol=1e-8)
    np.testing.assert_allclose(fast.x, slow.x, rtol=1e-8, atol=1e-12)


def test_parallel_path(cd):
    A = convection_diffusion((150, 150))  # n = 22500 ≥ PARALLEL_THRESHOLD
    b = np.ones(A.shape[0])
    res = GMRES(A, restart=30, rtol=1e-6).solve(b)
    hist = []
    xs, info = spla.gmres(A, b, rtol=1e-6, restart=30, callback=hist.append, callback_type="pr_norm")
    assert res.converged and info == 0
    assert res.iterations == len(hist)
    assert true_rel(A, res.x, b) <= 1e-6


def test_restart_capped_and_full_gmres():
    rng = np.random.default_rng(0)
    A = np.eye(12) * 3 + rng.standard_normal((12, 12))
    b = rng.standard_normal(12)
    res = GMRES(A, restart=100, rtol=1e-10).solve(b)
    assert res.converged and res.iterations <= 12 and res.extras["restart"] == 12
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), rtol=1e-7)
    with pytest.raises(ValueError):
        GMRES(A, restart=0)


def test_complex_system():
    rng = np.random.default_rng(2)
    n = 60
    A = sp.random(n, n, density=0.1, random_state=3) + 1j * sp.random(n, n, density=0.1, random_state=4)
    A = (A + 4 * sp.identity(n)).tocsr()
    x_true = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    b = A @ x_true
    for mon in ((), (krylovlab.History(),)):
        res = GMRES(A, restart=15, rtol=1e-10, monitors=mon).solve(b)
        assert res.converged and res.x.dtype == np.complex128
        np.testing.assert_allclose(res.x, x_true, rtol=1e-7)
    hist = []
    spla.gmres(A, b, rtol=1e-10, restart=15, callback=hist.append, callback_type="pr_norm")
    assert res.iterations == len(hist)


def test_float32():
    A = convection_diffusion((16, 16), dtype=np.float32)
    b = np.ones(A.shape[0], dtype=np.float32)
    res = GMRES(A, restart=20, rtol=1e-4).solve(b)
    assert res.converged and res.x.dtype == np.float32
    assert true_rel(A.astype(np.float64), res.x.astype(np.float64), b) <= 1e-4


def test_jacobi_and_general_preconditioner(cd):
    A, b = cd
    A = (A @ sp.diags(np.linspace(1, 50, A.shape[0]))).tocsr()  # badly scaled columns
    plain = GMRES(A, restart=20, rtol=1e-8).solve(b)
    jac = GMRES(A, restart=20, rtol=1e-8, M=krylovlab.Jacobi(A)).solve(b)
    d = 1 / A.diagonal()
    lin = spla.LinearOperator(A.shape, matvec=lambda r: d * r, dtype=float)
    gen = GMRES(A, restart=20, rtol=1e-8, M=lin).solve(b)
    assert jac.extras["path"] == "jitted" and gen.extras["path"] == "python"
    assert jac.converged and gen.converged
    assert jac.iterations == gen.iterations < plain.iterations
    ilu = spla.spilu(A.tocsc(), drop_tol=1e-3)
    res = GMRES(A, restart=20, rtol=1e-10, M=spla.LinearOperator(A.shape, ilu.solve)).solve(b)
    assert res.converged and res.iterations < jac.iterations
    for r in (jac, gen, res):
        assert true_rel(A, r.x, b) <= max(1e-8, r.rnorm / np.linalg.norm(b) * 1.0001)


def test_happy_breakdown_and_singular():
    A = sp.identity(5, format="csr") * 2.0
    b = np.arange(1.0, 6.0)
    res = GMRES(A).solve(b)
    assert res.status == Status.HAPPY_BREAKDOWN and res.converged and res.iterations == 1
    np.testing.assert_allclose(res.x, b / 2)
    # inconsistent singular system: the Krylov space closes without solving it
    S = sp.diags([1.0, 2.0, 0.0]).tocsr()
    res = GMRES(S, rtol=1e-10).solve(np.array([1.0, 1.0, 1.0]))
    assert not res.converged and res.status == Status.BREAKDOWN
    x, info = krylovlab.gmres(S, np.array([1.0, 1.0, 1.0]), rtol=1e-10, maxiter=5)
    xs, info_s = spla.gmres(S, np.array([1.0, 1.0, 1.0]), rtol=1e-10, maxiter=5)
    assert info == info_s == 5


def test_stagnation_is_reported():
    A = sp.csr_matrix(np.array([[0.0, 1.0], [-1.0, 0.0]]))  # GMRES(1) makes no progress
    res = GMRES(A, restart=1, rtol=1e-8, maxiter=1000).solve(np.array([1.0, 0.0]))
    assert res.status == Status.STAGNATION and not res.converged and res.iterations < 10


def test_nan_inputs_and_nan_preconditioner(cd):
    A, b = cd
    bad = b.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError):
        GMRES(A).solve(bad)
    An = A.copy()
    An.data[0] = np.inf
    with pytest.raises(ValueError):
        GMRES(An).solve(b)
    M = spla.LinearOperator(A.shape, matvec=lambda r: r * np.nan, dtype=float)
    res = GMRES(A, M=M).solve(b)
    assert res.status == Status.NANORINF and not res.converged


def test_x0_untouched_and_exact(cd):
    A, b = cd
    x0 = np.ones(A.shape[0])
    keep = x0.copy()
    res = GMRES(A, rtol=1e-8).solve(b, x0)
    assert res.converged and np.array_equal(x0, keep)
    xe = spla.spsolve(A.tocsc(), b)
    res = GMRES(A, rtol=1e-8).solve(b, xe)
    assert res.converged and res.iterations == 0


def test_monitors_stop_and_maxiter(cd):
    A, b = cd
    calls = []

    def stop_at_4(info):
        calls.append(info.iteration)
        r = np.linalg.norm(b - A @ info.x())
        assert abs(r - info.rnorm) <= 1e-8 * np.linalg.norm(b) + 1e-6 * r  # lazy x() is the iterate
        return info.iteration >= 4

    res = GMRES(A, restart=10, rtol=1e-12, monitors=[stop_at_4]).solve(b)
    assert res.status == Status.USER_STOP and calls == [1, 2, 3, 4] and res.iterations == 4
    hist = krylovlab.History()
    res = GMRES(A, restart=10, rtol=1e-14, maxiter=23, monitors=[hist]).solve(b)
    assert res.status == Status.MAXITER and res.iterations == 23 and len(hist.rnorms) == 23
    assert res.info == 23
    fast = GMRES(A, restart=10, rtol=1e-14, maxiter=23).solve(b)
    assert fast.status == Status.MAXITER and fast.iterations == 23


# ---------------------------------------------------------------- scipy drop-in
def test_signature_matches_scipy():
    assert inspect.signature(krylovlab.gmres) == inspect.signature(spla.gmres)


@pytest.mark.parametrize("callback_type", ["x", "pr_norm", "legacy"])
def test_callback_semantics_match_scipy(cd, callback_type):
    A, b = cd
    ours, theirs = [], []
    x, info = krylovlab.gmres(A, b, rtol=1e-8, restart=10, callback=ours.append, callback_type=callback_type)
    xs, info_s = spla.gmres(A, b, rtol=1e-8, restart=10, callback=theirs.append, callback_type=callback_type)
    assert info == info_s == 0
    assert len(ours) == len(theirs)
    if callback_type == "x":
        np.testing.assert_allclose(ours[-1], theirs[-1], rtol=1e-6, atol=1e-10)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_maxiter_meaning_and_info(cd):
    A, b = cd
    for kw in ({"maxiter": 3, "callback_type": "x"}, {"maxiter": 7, "callback_type": "legacy"}):
        ours, theirs = [], []
        x, info = krylovlab.gmres(A, b, rtol=1e-12, restart=10, callback=ours.append, **kw)
        xs, info_s = spla.gmres(A, b, rtol=1e-12, restart=10, callback=theirs.append, **kw)
        assert info == info_s == kw["maxiter"] and len(ours) == len(theirs)
        np.testing.assert_allclose(x, xs, rtol=1e-6, atol=1e-10)
    x, info = krylovlab.gmres(A, b, rtol=1e-12, restart=10, maxiter=3)
    assert info == 3


def test_deprecation_warning_and_bad_callback_type(cd):
    A, b = cd
    with pytest.warns(DeprecationWarning, match="callback_type"):
        krylovlab.gmres(A, b, callback=lambda r: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        krylovlab.gmres(A, b, callback=lambda r: None, callback_type="pr_norm")
        krylovlab.gmres(A, b)
    with pytest.raises(ValueError, match="callback_type"):
        krylovlab.gmres(A, b, callback=print, callback_type="bogus")


def test_dropin_tolerances_and_zero_rhs(cd):
    A, b = cd
    x, info = krylovlab.gmres(A, b, atol=1e-6, rtol=0.0)
    assert info == 0 and np.linalg.norm(b - A @ x) <= 1e-6
    x, info = krylovlab.gmres(A, np.zeros_like(b))
    assert info == 0 and not x.any()
    with pytest.raises(ValueError):
        krylovlab.gmres(A, b, rtol=-1.0)
    with pytest.raises(ValueError):
        krylovlab.gmres(A, b[:-1])
