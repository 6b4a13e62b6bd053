"""The solver contract, checked on every classic Krylov method in the registry.

Each method registered under ``krylov.`` in `krylovlab._api._METHODS` goes
through the same checks on the shared case list (tests/conftest.py):
residual bound on the true residual, MAXITER with exactly ``maxiter`` monitor
calls, zero right-hand side, x0 untouched, exact x0, invalid tolerances,
monitor stop, agreement with a dense solve and the known solution, the
``solve()`` round trip, unknown options, and ``method="auto"``.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import krylovlab
from krylovlab import Status
from krylovlab._api import get_solver_class


def _solver(method, A, **kw):
    return get_solver_class(method)(A, **kw)


def _tol(case, rtol, atol=0.0):
    return max(atol, rtol * np.linalg.norm(case.b.astype(np.complex128)))


def _slack(case, x):
    """Rounding allowance when re-checking a float32 solve in double precision."""
    if "float32" not in case.tags:
        return 0.0
    dense_norm = np.abs(case.dense()).sum(axis=1).max()
    return 20 * np.finfo(np.float32).eps * dense_norm * np.linalg.norm(x)


# ------------------------------------------------------------------------ residual bound
def test_residual_bound(classic_method, case, method_applies, residual):
    """Converged ⇒ ‖b − A x‖ ≤ max(atol, rtol‖b‖) on an independent residual; well-posed cases converge."""
    if not method_applies(classic_method, case):
        pytest.skip(f"{classic_method} is not meant for {case.name}")
    res = _solver(classic_method, case.A, rtol=case.rtol).solve(case.b)
    assert res.x.shape == (case.n,)
    assert (res.info == 0) == res.converged
    assert (res.status > 0) == res.converged or res.status == Status.USER_STOP
    if res.converged:
        assert residual(case.A, res.x, case.b) <= _tol(case, case.rtol) * (1 + 1e-9) + _slack(case, res.x)
    else:
        assert res.info != 0
    if not case.tags & {"hard", "breakdown"}:
        assert res.converged, f"{classic_method} failed on {case.name}: {res!r} ({res.message})"
    assert res.nmatvec >= res.iterations or classic_method in ("lgmres", "gcrotmk")


def test_breakdown_case_never_lies(classic_method, case_by_name, residual):
    """On the breakdown case every method either really converges or reports a failure."""
    case = case_by_name("breakdown-f64")
    res = _solver(classic_method, case.A, rtol=1e-10).solve(case.b)
    if res.converged:
        assert residual(case.A, res.x, case.b) <= 1e-10 * np.linalg.norm(case.b) * (1 + 1e-9)
    else:
        assert res.info != 0
    if classic_method == "cg":
        assert res.status == Status.INDEFINITE and res.info < 0


# --------------------------------------------------------------------------- MAXITER
def test_maxiter_exact_monitor_calls(classic_method, case_by_name):
    case = case_by_name("poisson2d-f64")
    seen = []
    res = _solver(classic_method, case.A, rtol=0.0, atol=0.0, maxiter=3,
                  monitors=[lambda info: seen.append(info.iteration)]).solve(case.b)
    assert res.status == Status.MAXITER
    assert res.iterations == 3
    assert res.info == 3
    assert seen == [1, 2, 3]
    assert not res.converged


def test_maxiter_zero(classic_method, case_by_name):
    case = case_by_name("poisson2d-f64")
    res = _solver(classic_method, case.A, maxiter=0).solve(case.b)
    assert res.status == Status.MAXITER and res.iterations == 0
    np.testing.assert_array_equal(res.x, 0)


# ------------------------------------------------------------------- zero rhs, x0 rules
def test_zero_rhs(classic_method, case_by_name):
    case = case_by_name("zero-rhs-f64")
    x0 = np.ones(case.n)
    res = _solver(classic_method, case.A).solve(case.b, x0)
    assert res.converged and res.info == 0 and res.iterations == 0
    np.testing.assert_array_equal(res.x, 0)


def test_x0_untouched(classic_method, case_by_name):
    case = case_by_name("poisson2d-f64")
    x0 = np.linspace(0, 1, case.n)
    keep = x0.copy()
    res = _solver(classic_method, case.A, rtol=1e-8).solve(case.b, x0)
    np.testing.assert_array_equal(x0, keep)
    assert res.x is not x0
    assert res.converged


def test_exact_x0_returns_at_once(classic_method, case_by_name):
    case = case_by_name("poisson2d-f64")
    calls = []
    res = _solver(classic_method, case.A, rtol=1e-8, monitors=[lambda info: calls.append(1)]).solve(
        case.b, case.x_true)
    assert res.converged and res.iterations == 0
    assert calls == []
    np.testing.assert_array_equal(res.x, case.x_true)


# ------------------------------------------------------------------ invalid tolerances
@pytest.mark.parametrize("bad", [dict(rtol=-1e-5), dict(atol=-1.0), dict(rtol=float("nan")),
                                 dict(atol=float("inf")), dict(rtol="1e-5"), dict(rtol=None)])
def test_invalid_tolerances_raise(classic_method, case_by_name, bad):
    case = case_by_name("poisson1d-f64")
    with pytest.raises(ValueError):
        _solver(classic_method, case.A, **bad)
    with pytest.raises(ValueError):
        krylovlab.solve(case.A, case.b, method=classic_method, **bad)


def test_negative_maxiter_raises(classic_method, case_by_name):
    case = case_by_name("poisson1d-f64")
    with pytest.raises(ValueError, match="maxiter"):
        _solver(classic_method, case.A, maxiter=-1)


# ---------------------------------------------------------------------- monitor stop
def test_monitor_stop(classic_method, case_by_name, residual):
    case = case_by_name("poisson2d-f64")
    seen = []

    def stop_at_two(info):
        seen.append((info.iteration, info.rnorm))
        return info.iteration == 2

    res = _solver(classic_method, case.A, rtol=0.0, monitors=[stop_at_two]).solve(case.b)
    assert res.status == Status.USER_STOP
    assert res.iterations == 2
    assert [k for k, _ in seen] == [1, 2]
    assert res.info == 2 and not res.converged
    # the monitor saw a residual norm that belongs to the returned iterate's neighbourhood
    assert all(np.isfinite(r) for _, r in seen)
    assert np.isfinite(residual(case.A, res.x, case.b))


def test_monitor_x_is_current_iterate(classic_method, case_by_name, residual):
    """info.x() is the iterate the norm belongs to (checked on the true-residual methods)."""
    case = case_by_name("poisson1d-f64")
    got = []
    res = _solver(classic_method, case.A, rtol=1e-10,
                  monitors=[lambda info: got.append((info.rnorm, info.x().copy()))]).solve(case.b)
    assert res.converged and got
    rnorm, x = got[-1]
    assert residual(case.A, x, case.b) <= 1e-10 * np.linalg.norm(case.b) * 10 + rnorm * 1.01 + 1e-12


# ----------------------------------------------------------- dense solve and x_true
_DENSE = {}


def _dense_reference(name, case):
    """numpy.linalg.solve's answer and the 2-norm condition number, computed once per case."""
    if name not in _DENSE:
        dense = case.dense()
        _DENSE[name] = (np.linalg.solve(dense, case.b), np.linalg.cond(dense))
    return _DENSE[name]


@pytest.mark.parametrize("name", ["poisson1d-f64", "poisson2d-f64", "convdiff-f64", "indefinite-f64",
                                  "hermitian-c128"])
def test_matches_dense_solve(classic_method, case_by_name, method_applies, name):
    case = case_by_name(name)
    if not method_applies(classic_method, case):
        pytest.skip(f"{classic_method} is not meant for {name}")
    x_ref, cond = _dense_reference(name, case)
    np.testing.assert_allclose(x_ref, case.x_true, rtol=1e-9, atol=1e-9)
    rtol = 1e-10
    res = _solver(classic_method, case.A, rtol=rtol).solve(case.b)
    assert res.converged
    bound = 10 * cond * rtol
    assert np.linalg.norm(res.x - case.x_true) <= bound * np.linalg.norm(case.x_true)
    assert np.linalg.norm(res.x - x_ref) <= bound * np.linalg.norm(x_ref)


def test_dense_and_linear_operator_inputs(classic_method, case_by_name, method_applies, residual):
    """The same system given as CSR, dense array and LinearOperator gives converged answers."""
    import scipy.sparse.linalg as spla

    case = case_by_name("indefinite-f64" if classic_method == "minres" else "poisson2d-f64")
    for A in (case.A, case.dense(), spla.aslinearoperator(case.A)):
        res = _solver(classic_method, A, rtol=1e-8).solve(case.b)
        assert res.converged, type(A)
        assert residual(case.A, res.x, case.b) <= 1e-8 * np.linalg.norm(case.b) * (1 + 1e-9)


# ------------------------------------------------------------------- solve() door
def test_solve_round_trip(classic_method, case_by_name):
    case = case_by_name("indefinite-f64" if classic_method != "cg" else "poisson2d-f64")
    direct = _solver(classic_method, case.A, rtol=1e-8, maxiter=500).solve(case.b)
    res = krylovlab.solve(case.A, case.b, method=classic_method, rtol=1e-8, maxiter=500)
    assert res.extras["method"] == classic_method
    assert res.status == direct.status and res.iterations == direct.iterations
    np.testing.assert_allclose(res.x, direct.x, rtol=1e-12, atol=1e-14)
    x, info = res
    assert info == res.info


def test_unknown_option_lists_valid_ones(classic_method, case_by_name):
    case = case_by_name("poisson1d-f64")
    with pytest.raises(TypeError, match="valid options") as err:
        krylovlab.solve(case.A, case.b, method=classic_method, no_such_option=1)
    assert "rtol" in str(err.value) and "maxiter" in str(err.value)


def test_history_matches_iterations(classic_method, case_by_name):
    case = case_by_name("poisson2d-f64")
    res = _solver(classic_method, case.A, rtol=1e-8, history=True).solve(case.b)
    assert res.converged
    assert res.history is not None and len(res.history) >= 1
    assert np.all(np.isfinite(res.history))


# ---------------------------------------------------------------------- method="auto"
def _have(module):
    return importlib.util.find_spec(f"krylovlab.krylov.{module}") is not None


@pytest.mark.parametrize("name,expected", [("poisson2d-f64", "cg"), ("hermitian-c128", "cg"),
                                           ("indefinite-f64", "minres"), ("convdiff-f64", "gmres")])
def test_auto_choice(case_by_name, residual, name, expected):
    if not _have(expected):
        pytest.skip(f"krylovlab.krylov.{expected} does not exist yet")
    case = case_by_name(name)
    res = krylovlab.solve(case.A, case.b, rtol=1e-8)
    assert res.extras["auto_choice"] == expected
    assert res.extras["auto_reason"]
    assert res.converged
    assert residual(case.A, res.x, case.b) <= 1e-8 * np.linalg.norm(case.b) * (1 + 1e-9)


def test_auto_falls_back_to_minres_on_negative_curvature(residual):
    """Symmetric with a positive diagonal but indefinite: CG is tried, then MINRES takes over."""
    import scipy.sparse as sp

    A = sp.csr_matrix(np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]))
    b = np.array([1.0, 2.0, 3.0])
    res = krylovlab.solve(A, b, rtol=1e-10)
    assert res.extras["auto_choice"] == "minres"
    assert res.converged
    assert residual(A, res.x, b) <= 1e-10 * np.linalg.norm(b) * (1 + 1e-9)


def test_unknown_method_lists_methods(case_by_name):
    case = case_by_name("poisson1d-f64")
    with pytest.raises(ValueError, match="valid methods") as err:
        krylovlab.solve(case.A, case.b, method="no-such-method")
    assert "minres" in str(err.value) and "cg" in str(err.value)
