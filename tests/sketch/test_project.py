"""Sketch-and-project solvers: Kaczmarz, block Kaczmarz, Gaussian/sparse sketches, coordinate descent."""

import numpy as np
import pytest
import scipy.sparse as sp

import krylovlab
from krylovlab import History, Status, solve
from krylovlab.gallery import poisson
from krylovlab.sketch import Kaczmarz, SketchProject


def _tall(m=400, n=25, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n))
    x_true = rng.standard_normal(n)
    return A, x_true, A @ x_true


VARIANTS = [
    ("kaczmarz", {}),
    ("kaczmarz", {"block_size": 8}),
    ("kaczmarz", {"sampling": "uniform"}),
    ("sketch-project", {"sketch": "gaussian", "block_size": 5}),
    ("sketch-project", {"sketch": "countsketch", "block_size": 5}),
    ("sketch-project", {"sketch": "sparse-sign", "block_size": 10}),
]


@pytest.mark.parametrize("method,kw", VARIANTS)
@pytest.mark.parametrize("fmt", ["dense", "csr"])
def test_consistent_tall_system(method, kw, fmt):
    A, x_true, b = _tall()
    Ain = sp.csr_matrix(A) if fmt == "csr" else A
    res = solve(Ain, b, method=method, rtol=1e-8, rng=1, maxiter=3000, **kw)
    assert res.converged, res
    assert np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b)  # independent check
    assert np.allclose(res.x, x_true, atol=1e-5)
    assert res.rnorm == pytest.approx(np.linalg.norm(b - A @ res.x), rel=1e-8)
    assert res.extras["method"] == method


def test_square_system_and_classes_directly():
    A = poisson((12,)).toarray() + 4 * np.eye(12)
    x_true = np.linspace(-1, 1, 12)
    res = Kaczmarz(A, rtol=1e-10, rng=0).solve(A @ x_true)
    assert res.converged and np.allclose(res.x, x_true, atol=1e-8)


@pytest.mark.parametrize("fmt", ["dense", "csr"])
def test_coordinate_descent_spd(fmt):
    A = poisson((30,))
    A = A + 0.5 * sp.eye(30)  # well conditioned SPD
    Ain = A.toarray() if fmt == "dense" else A
    x_true = np.cos(np.arange(30.0))
    res = SketchProject(Ain, sketch="coordinate", rtol=1e-10, rng=0).solve(A @ x_true)
    assert res.converged and np.allclose(res.x, x_true, atol=1e-8)


def test_coordinate_rejects_non_spd():
    A = np.array([[1.0, 2.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="SPD"):
        SketchProject(A, sketch="coordinate")
    with pytest.raises(ValueError, match="square"):
        SketchProject(np.ones((5, 2)), sketch="coordinate")


def test_stop_rule_for_inexact_outer_methods():
    A, _, b = _tall(seed=2)
    seen = []

    def loose(info):
        seen.append(info.iteration)
        assert np.isclose(info.rnorm, np.linalg.norm(b - A @ info.x()))  # the true residual
        return info.rnorm <= 1e-2 * np.linalg.norm(b)

    res = solve(A, b, method="kaczmarz", rtol=1e-14, stop=loose, rng=0)
    assert res.status == Status.USER_STOP and res.extras["stop_rule"] == "met"
    assert not res.converged  # the solver's own tolerance was not met, and it says so
    assert res.rnorm <= 1e-2 * np.linalg.norm(b)
    assert seen == list(range(1, res.iterations + 1))


def test_monitors_history_and_maxiter():
    A, _, b = _tall(seed=3)
    h = History()
    res = solve(A, b, method="kaczmarz", rtol=1e-30, maxiter=7, monitors=[h], history=True, rng=0)
    assert res.status == Status.MAXITER and res.iterations == 7 and not res.converged
    assert len(h.rnorms) == 7 and len(res.history) == 8
    assert res.info == 7


def test_inconsistent_system_reports_stagnation_not_convergence():
    A, _, b = _tall(seed=4)
    b = b + np.random.default_rng(0).standard_normal(b.size)
    res = solve(A, b, method="kaczmarz", rtol=1e-8, rng=0, patience=10)
    assert res.status == Status.STAGNATION and not res.converged
    assert "inconsistent" in res.extras["note"]


def test_zero_rhs_x0_untouched_and_reproducible():
    A, x_true, b = _tall(seed=5)
    res = solve(A, np.zeros(A.shape[0]), method="kaczmarz")
    assert res.converged and np.all(res.x == 0) and res.iterations == 0
    x0 = np.ones(A.shape[1])
    keep = x0.copy()
    r1 = solve(A, b, x0, method="sketch-project", block_size=3, rtol=1e-6, rng=9)
    r2 = solve(A, b, x0, method="sketch-project", block_size=3, rtol=1e-6, rng=9)
    assert np.array_equal(x0, keep)
    assert np.array_equal(r1.x, r2.x) and r1.iterations == r2.iterations
    # an exact x0 needs no iterations
    r3 = solve(A, b, x_true, method="kaczmarz", rtol=1e-8)
    assert r3.converged and r3.iterations == 0


def test_bad_inputs():
    A, _, b = _tall()
    with pytest.raises(ValueError, match="m >= n"):
        Kaczmarz(A.T)
    with pytest.raises(ValueError, match="NaN or Inf"):
        solve(A, np.full(A.shape[0], np.nan), method="kaczmarz")
    with pytest.raises(ValueError, match="shape"):
        solve(A, b[:-1], method="kaczmarz")
    with pytest.raises(ValueError, match="block_size"):
        Kaczmarz(A, block_size=0)
    with pytest.raises(ValueError, match="sketch"):
        SketchProject(A, sketch="srht")
    with pytest.raises(TypeError, match="stop"):
        Kaczmarz(A, stop=3)
    with pytest.raises(TypeError, match="unknown option"):
        solve(A, b, method="kaczmarz", M=np.eye(25))
    with pytest.raises(TypeError, match="explicit"):
        Kaczmarz(sp.linalg.aslinearoperator(A))
    with pytest.raises(ValueError, match="rtol"):
        Kaczmarz(A, rtol=-1.0)


def test_registry_names():
    assert krylovlab.get_solver_class("kaczmarz") is Kaczmarz
    assert krylovlab.get_solver_class("sketch-project") is SketchProject
