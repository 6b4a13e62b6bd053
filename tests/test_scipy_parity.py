"""`import krylovlab as spla` must behave like `import scipy.sparse.linalg as spla`.

* every scipy name in `krylovlab.compat` has exactly scipy's signature;
* on a table of cases (preconditioner as a matrix, a `LinearOperator` and a
  pyamg hierarchy's ``aspreconditioner()``) krylovlab returns the same
  ``info`` as scipy, an ``x`` of the same shape and dtype, and a solution that
  meets scipy's tolerance on the true residual;
* callbacks are called as scipy calls them.
"""

from __future__ import annotations

import inspect

import numpy as np
import pyamg
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as ssl

import krylovlab
import krylovlab.compat as compat
from krylovlab import gallery

SCIPY_NAMES = sorted(n for n in compat.__all__ if hasattr(ssl, n))
MINE = ["minres", "cgs", "bicg", "qmr", "tfqmr", "lgmres", "gcrotmk"]


def test_compat_covers_scipy_solvers_of_this_task():
    assert set(MINE) <= set(SCIPY_NAMES)


@pytest.mark.parametrize("name", SCIPY_NAMES)
def test_signature_is_scipys(name):
    ours = getattr(compat, name)
    assert inspect.signature(ours) == inspect.signature(getattr(ssl, name))
    assert getattr(krylovlab, name) is ours, "top-level name must be the compat function"
    assert ours.__doc__ and "Examples" in ours.__doc__


# --------------------------------------------------------------------- the case table
def _spd():
    return gallery.poisson((12, 12))


def _nonsym():
    return gallery.convection_diffusion((12, 12))


def _indef():
    return gallery.indefinite_symmetric((12, 12))


def _preconditioners(A, kind):
    """M as None, a sparse matrix, a LinearOperator or a pyamg hierarchy's aspreconditioner()."""
    if kind is None:
        return None
    inv_d = sp.diags(1.0 / A.diagonal()).tocsr()
    if kind == "matrix":
        return inv_d
    if kind == "linop":
        return ssl.aslinearoperator(inv_d)
    if kind == "pyamg":
        return pyamg.smoothed_aggregation_solver(A.tocsr()).aspreconditioner()
    raise AssertionError(kind)


def _matrix_for(name):
    if name in ("cg",):
        return _spd()
    if name == "minres":
        return _indef()
    return _nonsym()


def _table():
    rows = []
    for name in SCIPY_NAMES:
        kinds = [None, "matrix", "linop"]
        if name in ("cg", "minres"):
            kinds.append("pyamg")  # SPD/Hermitian M required: the AMG cycle is one on the Poisson case
        elif name not in ("bicg", "qmr"):  # these need Mᴴ, which pyamg's operator does not define
            kinds.append("pyamg")
        for kind in kinds:
            for rtol in (1e-5, 1e-9):
                rows.append(pytest.param(name, kind, rtol, id=f"{name}-{kind}-{rtol:g}"))
    return rows


def _call(mod, name, A, b, M, **kw):
    fn = getattr(mod, name)
    if name == "qmr":  # scipy's qmr needs LinearOperators for M1 and M2
        if M is None:
            return fn(A, b, **kw)
        return fn(A, b, M1=ssl.aslinearoperator(M), M2=ssl.aslinearoperator(sp.identity(A.shape[0])), **kw)
    if name == "gmres":
        kw.setdefault("restart", 30)
    return fn(A, b, M=M, **kw)


@pytest.mark.parametrize("name,kind,rtol", _table())
def test_same_info_and_tolerance(name, kind, rtol):
    A = _matrix_for(name)
    if kind == "pyamg" and name == "minres":
        A = _spd()
    rng = np.random.default_rng(3)
    b = rng.standard_normal(A.shape[0])
    M = _preconditioners(A, kind)
    x_s, info_s = _call(ssl, name, A, b, M, rtol=rtol)
    x_k, info_k = _call(krylovlab, name, A, b, M, rtol=rtol)
    tol = rtol * np.linalg.norm(b) * (1 + 1e-9)
    assert x_k.shape == x_s.shape and x_k.dtype == x_s.dtype
    if info_k == 0:  # never a convergence claim the true residual does not back
        assert np.linalg.norm(b - A @ x_k) <= tol
    if info_s == 0 and np.linalg.norm(b - A @ x_s) <= tol:
        assert info_k == 0  # whenever scipy really converges, so do we
    elif info_s != 0:
        assert info_k == info_s
    # else: scipy claimed convergence its own x does not have (TFQMR with pyamg at 1e-9 does);
    # krylovlab then restarts and either really converges or reports the failure


@pytest.mark.parametrize("name", SCIPY_NAMES)
def test_maxiter_info_matches(name):
    A = _matrix_for(name)
    b = np.ones(A.shape[0])
    maxiter = 1 if name in ("lgmres", "gcrotmk", "gmres") else 2  # these count outer cycles
    x_s, info_s = _call(ssl, name, A, b, None, rtol=1e-12, maxiter=maxiter)
    x_k, info_k = _call(krylovlab, name, A, b, None, rtol=1e-12, maxiter=maxiter)
    assert info_s == maxiter and info_k == info_s


@pytest.mark.parametrize("name", SCIPY_NAMES)
def test_column_rhs_and_x0(name):
    """b of shape (n, 1) and an x0 are accepted; x comes back 1-D as from scipy."""
    A = _matrix_for(name)
    b = np.ones((A.shape[0], 1))
    x0 = np.full(A.shape[0], 0.5)
    keep = x0.copy()
    x_s, info_s = _call(ssl, name, A, b, None, x0=x0, rtol=1e-8)
    x_k, info_k = _call(krylovlab, name, A, b, None, x0=x0, rtol=1e-8)
    assert info_k == info_s == 0
    assert x_k.shape == x_s.shape == (A.shape[0],)
    np.testing.assert_array_equal(x0, keep)


@pytest.mark.parametrize("name", SCIPY_NAMES)
def test_float32_dtype_kept(name):
    A = _matrix_for(name).astype(np.float32)
    b = np.ones(A.shape[0], dtype=np.float32)
    x_s, info_s = _call(ssl, name, A, b, None, rtol=1e-4)
    x_k, info_k = _call(krylovlab, name, A, b, None, rtol=1e-4)
    assert x_k.dtype == np.float32
    if name != "minres":  # scipy's minres promotes float32 to float64; krylovlab keeps float32
        assert x_s.dtype == np.float32
    assert info_k == info_s
    if info_k == 0:
        assert np.linalg.norm(b - A @ x_k) <= 1e-4 * np.linalg.norm(b) * 1.01


@pytest.mark.parametrize("name", SCIPY_NAMES)
def test_zero_rhs(name):
    A = _matrix_for(name)
    b = np.zeros(A.shape[0])
    x_s, info_s = _call(ssl, name, A, b, None)
    x_k, info_k = _call(krylovlab, name, A, b, None)
    assert info_k == info_s == 0
    np.testing.assert_array_equal(x_k, 0)


# ------------------------------------------------------------------------- callbacks
@pytest.mark.parametrize("name", ["cgs", "bicg", "qmr", "tfqmr", "lgmres", "gcrotmk"])
def test_delegated_callbacks_are_scipys(name):
    """Same number of calls, each with the current x (as scipy passes it)."""
    A = _nonsym()
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    seen_s, seen_k = [], []
    _call(ssl, name, A, b, None, rtol=1e-8, callback=lambda xk: seen_s.append(np.array(xk, copy=True)))
    _call(krylovlab, name, A, b, None, rtol=1e-8, callback=lambda xk: seen_k.append(np.array(xk, copy=True)))
    assert len(seen_k) == len(seen_s) > 0
    for xs, xk in zip(seen_s, seen_k):
        assert xk.shape == xs.shape == (A.shape[0],)
        np.testing.assert_allclose(xk, xs, rtol=1e-8, atol=1e-10 * np.abs(xs).max())


@pytest.mark.parametrize("name", ["lgmres", "gcrotmk"])
def test_outer_cycle_callback_sees_x0_first(name):
    """scipy calls the LGMRES/GCROT callback at the start of each cycle, x0 included."""
    A = _nonsym()
    b = np.ones(A.shape[0])
    x0 = np.full(A.shape[0], 0.25)
    first = []
    getattr(krylovlab, name)(A, b, x0=x0, callback=lambda xk: first.append(xk.copy()) if not first else None)
    np.testing.assert_array_equal(first[0], x0)


def test_minres_callback_each_iteration_with_current_x():
    A = _indef()
    b = np.ones(A.shape[0])
    seen = []
    x, info = krylovlab.minres(A, b, rtol=1e-8, callback=lambda xk: seen.append(np.array(xk, copy=True)))
    _, _ = ssl.minres(A, b, rtol=1e-8)
    assert info == 0 and len(seen) >= 1
    np.testing.assert_array_equal(seen[-1], x)  # called after the last iteration too, like scipy
    # each call sees a different (updated) iterate
    assert all(not np.array_equal(seen[i], seen[i + 1]) for i in range(len(seen) - 1))


def test_cg_callback_count_close_to_scipy():
    A = _spd()
    b = np.ones(A.shape[0])
    ns, nk = [], []
    ssl.cg(A, b, rtol=1e-8, callback=lambda xk: ns.append(1))
    krylovlab.cg(A, b, rtol=1e-8, callback=lambda xk: nk.append(1))
    assert abs(len(nk) - len(ns)) <= max(1, len(ns) // 10)


# ----------------------------------------------------------------- minres specifics
@pytest.mark.parametrize("shift", [0.0, 0.37, -1.5])
def test_minres_shift(shift):
    A = _indef()
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    x_k, info_k = krylovlab.minres(A, b, shift=shift, rtol=1e-9)
    x_s, info_s = ssl.minres(A, b, shift=shift, rtol=1e-9)
    As = A - shift * sp.identity(A.shape[0])
    assert info_k == info_s == 0
    assert np.linalg.norm(b - As @ x_k) <= 1e-9 * np.linalg.norm(b) * (1 + 1e-9)


def test_minres_check_rejects_nonsymmetric():
    A = _nonsym()
    b = np.ones(A.shape[0])
    with pytest.raises(ValueError, match="symmetric"):
        ssl.minres(A, b, check=True)
    with pytest.raises(ValueError, match="symmetric"):
        krylovlab.minres(A, b, check=True)
    x, info = krylovlab.minres(_indef(), b, check=True)
    assert info == 0


def test_minres_show_prints(capsys):
    krylovlab.minres(_indef(), np.ones(144), show=True)
    assert "minres" in capsys.readouterr().out


def test_lgmres_outer_v_is_updated_in_place():
    A = _nonsym()
    b = np.ones(A.shape[0])
    outer_v = []
    x, info = krylovlab.lgmres(A, b, rtol=1e-10, inner_m=10, outer_k=2, outer_v=outer_v)
    assert info == 0 and 0 < len(outer_v) <= 2
    # reusing the vectors on the same system does not hurt
    x2, info2 = krylovlab.lgmres(A, b, rtol=1e-10, inner_m=10, outer_k=2, outer_v=outer_v)
    assert info2 == 0


def test_gcrotmk_cu_is_updated_in_place():
    A = _nonsym()
    b = np.ones(A.shape[0])
    CU = []
    x, info = krylovlab.gcrotmk(A, b, rtol=1e-10, m=10, k=3, CU=CU, discard_C=True)
    assert info == 0 and len(CU) >= 1
    assert all(c is None for c, _ in CU)


@pytest.mark.parametrize("name", ["cgs", "bicg", "qmr", "tfqmr"])
def test_breakdown_info_is_scipys(name):
    """A breakdown returns scipy's own negative code (qmr distinguishes -10 ... -15)."""
    A = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    b = np.array([1.0, 0.0])
    x_s, info_s = _call(ssl, name, A, b, None)
    x_k, info_k = _call(krylovlab, name, A, b, None)
    assert info_k == info_s
    if info_k == 0:
        assert np.linalg.norm(b - A @ x_k) <= 1e-5 * np.linalg.norm(b)


def test_qmr_breakdown_code_on_convection_diffusion():
    A = gallery.convection_diffusion((64, 64))
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    x_s, info_s = ssl.qmr(A, b, rtol=1e-8)
    x_k, info_k = krylovlab.qmr(A, b, rtol=1e-8)
    assert info_k == info_s
