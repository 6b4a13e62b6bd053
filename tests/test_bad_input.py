"""Bad input gives a clear ValueError/TypeError or a failed Status: never a wrong answer or a hang.

Documented dtype rules (`krylovlab.as_operator`): float32/64 and complex64/128
pass; integer and boolean inputs promote to float64; float16, extended
precision, object and string dtypes raise TypeError.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as ssl

import krylovlab
from krylovlab import Status
from krylovlab._api import get_solver_class


def _A(n=20):
    return krylovlab.gallery.poisson((n,))


def _solve(method, A, b, x0=None, **kw):
    return get_solver_class(method)(A, **kw).solve(b, x0)


# ------------------------------------------------------------------------ shapes
def test_mismatched_b(classic_method):
    with pytest.raises(ValueError, match="b has shape"):
        _solve(classic_method, _A(), np.ones(19))


def test_mismatched_x0(classic_method):
    with pytest.raises(ValueError, match="x0 has shape"):
        _solve(classic_method, _A(), np.ones(20), np.ones(21))


def test_matrix_rhs_rejected(classic_method):
    with pytest.raises(ValueError, match="b has shape"):
        _solve(classic_method, _A(), np.ones((20, 2)))


@pytest.mark.parametrize("A", [np.ones((3, 4)), sp.random(4, 3, density=0.5, format="csr", random_state=0),
                               np.ones(4), np.ones((2, 2, 2))])
def test_non_square_or_not_2d(classic_method, A):
    with pytest.raises(ValueError):
        _solve(classic_method, A, np.ones(A.shape[0]))


def test_preconditioner_shape(classic_method):
    if classic_method == "qmr":
        pytest.skip("qmr takes M1/M2 (checked below)")
    with pytest.raises(ValueError, match="M has shape"):
        _solve(classic_method, _A(), np.ones(20), M=sp.identity(19, format="csr"))


# --------------------------------------------------------------------- non-finite
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["A-sparse", "A-dense", "b", "x0"])
def test_nan_inf_rejected(classic_method, bad, where):
    A = _A().tolil()
    b = np.ones(20)
    x0 = np.zeros(20)
    if where == "A-sparse":
        A[3, 3] = bad
    elif where == "b":
        b[5] = bad
    elif where == "x0":
        x0[7] = bad
    A = A.toarray() if where == "A-dense" else A.tocsr()
    if where == "A-dense":
        A[2, 1] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        _solve(classic_method, A, b, x0)


def test_nan_from_linear_operator_is_a_failed_status(classic_method):
    """An implicit operator that starts returning NaN: a failed status, not an answer."""
    A = _A()
    calls = [0]

    def mv(x):
        calls[0] += 1
        y = A @ x
        return y * np.nan if calls[0] > 3 else y

    op = ssl.LinearOperator(A.shape, matvec=mv, rmatvec=lambda x: A.T @ x, dtype=float)
    with np.errstate(all="ignore"):
        res = _solve(classic_method, op, np.ones(20), rtol=1e-10, maxiter=200)
    assert not res.converged
    assert res.info != 0


# ------------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("dtype", [object, "U3", "S3"])
def test_non_numeric_b(classic_method, dtype):
    b = np.array(["1"] * 20, dtype=dtype) if dtype != object else np.array([1.0] * 20, dtype=object)
    with pytest.raises(TypeError):
        _solve(classic_method, _A(), b)


def test_non_numeric_A(classic_method):
    with pytest.raises(TypeError):
        _solve(classic_method, np.full((4, 4), "x"), np.ones(4))
    with pytest.raises(TypeError):
        _solve(classic_method, np.eye(4, dtype=object), np.ones(4))
    with pytest.raises(TypeError):
        _solve(classic_method, "not a matrix", np.ones(4))


def test_float16_rejected(classic_method):
    with pytest.raises(TypeError, match="float16"):
        _solve(classic_method, _A().toarray().astype(np.float16), np.ones(20))


def test_bool_and_int_promote_to_float64(classic_method, residual):
    A = (sp.identity(6, format="csr") * 2).astype(np.int64)
    b = np.ones(6, dtype=bool)
    res = _solve(classic_method, A, b, rtol=1e-10)
    assert res.x.dtype == np.float64 and res.converged
    np.testing.assert_allclose(res.x, 0.5)


# ------------------------------------------------------------------- tolerances etc.
@pytest.mark.parametrize("name", ["minres", "cgs", "bicg", "qmr", "tfqmr", "lgmres", "gcrotmk"])
@pytest.mark.parametrize("bad", [dict(rtol=-1.0), dict(rtol=float("nan")), dict(maxiter=-5), dict(maxiter=2.5)])
def test_compat_bad_options(name, bad):
    with pytest.raises(ValueError):
        getattr(krylovlab, name)(_A(), np.ones(20), **bad)


@pytest.mark.parametrize("name", ["cgs", "bicg", "qmr", "tfqmr", "lgmres", "gcrotmk"])
def test_compat_bad_atol(name):
    with pytest.raises(ValueError):
        getattr(krylovlab, name)(_A(), np.ones(20), atol=-1.0)


def test_method_specific_options():
    A, b = _A(), np.ones(20)
    with pytest.raises(ValueError, match="shift"):
        krylovlab.minres(A, b, shift=float("nan"))
    with pytest.raises(TypeError, match="shift"):
        krylovlab.minres(A, b, shift="1")
    with pytest.raises(ValueError, match="inner_m"):
        krylovlab.lgmres(A, b, inner_m=0)
    with pytest.raises(ValueError, match="truncate"):
        krylovlab.gcrotmk(A, b, truncate="newest")
    with pytest.raises(ValueError, match="m must"):
        krylovlab.gcrotmk(A, b, m=0)
    with pytest.raises(ValueError, match="either M"):
        krylovlab.QMR(A, M=sp.identity(20), M1=sp.identity(20))
    with pytest.raises(ValueError, match="M1 has shape"):
        krylovlab.qmr(A, b, M1=sp.identity(5, format="csr"))


def test_adjoint_needed_but_missing():
    """BiCG needs Mᴴ: a callable preconditioner without one gives a TypeError naming the problem."""
    A, b = krylovlab.gallery.convection_diffusion((6, 6)), np.ones(36)
    with pytest.raises(TypeError, match="adjoint"):
        krylovlab.BiCG(A, M=lambda r: 0.5 * r).solve(b)


# -------------------------------------------------------- indefinite and non-SPD M
def test_cg_indefinite_never_wrong(residual):
    A = krylovlab.gallery.indefinite_symmetric((10, 10))
    b = np.random.default_rng(0).standard_normal(100)
    res = krylovlab.CG(A, rtol=1e-8).solve(b)
    if res.converged:
        assert residual(A, res.x, b) <= 1e-8 * np.linalg.norm(b) * (1 + 1e-9)
    else:
        assert res.status == Status.INDEFINITE and res.info < 0
    x, info = krylovlab.cg(A, b, rtol=1e-8)
    assert info < 0 or residual(A, x, b) <= 1e-8 * np.linalg.norm(b) * (1 + 1e-9)


def test_cg_zero_curvature_is_indefinite():
    A = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    res = krylovlab.CG(A).solve(np.array([1.0, 0.0]))
    assert res.status == Status.INDEFINITE and res.info < 0
    assert krylovlab.cg(A, np.array([1.0, 0.0]))[1] < 0


@pytest.mark.parametrize("method", ["cg", "minres"])
@pytest.mark.parametrize("monitored", [False, True])
def test_indefinite_preconditioner_fails(method, monitored, residual):
    """A mixed-sign diagonal M is not SPD: PC_FAILED (jitted and Python paths alike)."""
    A = _A(40)
    d = np.ones(40)
    d[::2] = -1.0
    M = sp.diags(d).tocsr()
    mons = [lambda info: None] if monitored else []
    res = get_solver_class(method)(A, M=M, monitors=mons).solve(np.random.default_rng(1).standard_normal(40))
    assert res.status == Status.PC_FAILED and res.info < 0 and not res.converged


def test_minres_negative_definite_preconditioner():
    A = _A()
    res = krylovlab.MINRES(A, M=-sp.identity(20, format="csr")).solve(np.ones(20))
    assert res.status == Status.PC_FAILED
    x, info = krylovlab.minres(A, np.ones(20), M=-sp.identity(20, format="csr"))
    assert info < 0  # scipy raises ValueError here; krylovlab reports the failure


def test_jacobi_zero_diagonal():
    with pytest.raises(ValueError, match="zero on its diagonal"):
        krylovlab.Jacobi(sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 2.0]])))


def test_minres_nonsymmetric_never_claims_convergence(residual):
    A = krylovlab.gallery.convection_diffusion((8, 8))
    b = np.ones(64)
    res = krylovlab.MINRES(A, rtol=1e-10, maxiter=500).solve(b)
    if res.converged:
        assert residual(A, res.x, b) <= 1e-10 * np.linalg.norm(b) * (1 + 1e-9)


def test_singular_inconsistent_minres_stops_honestly(residual):
    """Neumann-like singular matrix and b outside its range: no convergence claim, no hang."""
    n = 30
    A = krylovlab.gallery.poisson((n,)).tolil()
    A[0, 0] = 1.0
    A[n - 1, n - 1] = 1.0  # rows sum to zero: A·1 = 0
    A = A.tocsr()
    b = np.ones(n)  # not orthogonal to the null space
    for monitored in (False, True):
        mons = [lambda info: None] if monitored else []
        res = krylovlab.MINRES(A, rtol=1e-10, monitors=mons).solve(b)
        assert not res.converged and res.info != 0
        assert res.status in (Status.STAGNATION, Status.MAXITER)


# ------------------------------------------------------------------ host / device
class _FakeDeviceArray:
    """Looks like a CuPy array to krylovlab's placement check (module name cupy.*)."""

    __module__ = "cupy._core.core"

    def __init__(self, a):
        self._a = np.asarray(a)
        self.shape, self.dtype, self.ndim = self._a.shape, self._a.dtype, self._a.ndim


def test_mixed_host_device_raises(classic_method):
    with pytest.raises(ValueError, match="mix host"):
        _solve(classic_method, _A(), _FakeDeviceArray(np.ones(20)))


def test_mixed_host_device_x0_raises(classic_method):
    with pytest.raises(ValueError, match="mix host"):
        _solve(classic_method, _A(), np.ones(20), _FakeDeviceArray(np.zeros(20)))


# ------------------------------------------------------------------------- methods
@pytest.mark.parametrize("method", ["CG", "no-such", "", "cg "])
def test_wrong_method_name(method):
    if method.lower() == "cg":  # names are case-insensitive
        assert krylovlab.solve(_A(), np.ones(20), method=method).converged
        return
    with pytest.raises(ValueError, match="valid methods"):
        krylovlab.solve(_A(), np.ones(20), method=method)


@pytest.mark.parametrize("method", [None, 3, krylovlab.CG])
def test_method_not_a_string(method):
    with pytest.raises(TypeError, match="method must be a string"):
        krylovlab.solve(_A(), np.ones(20), method=method)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_large_arrays_nan_inf_rejected_by_streaming_check(dtype, bad):
    """Arrays above 2¹⁶ entries take the numba streaming check; it must see every entry."""
    from krylovlab._operator import _check_finite_values

    a = np.ones((300, 400), dtype=dtype, order="F")
    a[5, 5] = np.finfo(dtype).max  # huge but finite: accepted
    a[6, 6] = -np.finfo(dtype).max
    _check_finite_values(a, "A")
    for pos in [(0, 0), (123, 7), (299, 399)]:
        b = a.copy()
        b[pos] = bad
        with pytest.raises(ValueError, match="NaN or Inf"):
            _check_finite_values(b, "A")
    if np.dtype(dtype).kind == "c":
        b = a.copy()
        b[1, 1] = complex(1.0, bad)
        with pytest.raises(ValueError, match="NaN or Inf"):
            _check_finite_values(b, "A")
