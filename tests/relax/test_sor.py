"""SOR solver and SSOR preconditioner: convergence, error paths, learned ω, the front door."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import krylovlab
from krylovlab import CG, SOR, SSOR, Status
from krylovlab.gallery import poisson
from krylovlab.relax import ChebCB, TsallisINF, young_omega


def _spd(n=40, seed=0):
    rng = np.random.default_rng(seed)
    r = sp.random(n, n, density=0.15, random_state=seed)
    a = r @ r.T + sp.diags(0.5 + rng.random(n))
    return sp.csr_matrix(a)


def _true_res(a, x, b):
    return np.linalg.norm(b - a @ x)


@pytest.mark.parametrize("omega", [0.3, 1.0, 1.5, 1.9])
@pytest.mark.parametrize("sweep", ["forward", "backward", "symmetric"])
def test_converges_on_spd_for_any_omega(omega, sweep):
    a = _spd()
    rng = np.random.default_rng(1)
    x_true = rng.standard_normal(a.shape[0])
    b = a @ x_true
    res = SOR(a, omega=omega, sweep=sweep, rtol=1e-10, maxiter=200_000).solve(b)
    assert res.converged and res.status == Status.RTOL
    assert _true_res(a, res.x, b) <= 1e-10 * np.linalg.norm(b)
    assert res.rnorm == pytest.approx(_true_res(a, res.x, b), rel=1e-6)
    np.testing.assert_allclose(res.x, np.linalg.solve(a.toarray(), b), rtol=1e-6, atol=1e-8)
    assert res.extras["omega"] == omega


def test_multicolor_ordering_converges_and_dense_input():
    a = poisson((12, 12))
    b = np.ones(a.shape[0])
    for sweep in ("forward", "symmetric"):
        res = SOR(a, omega=1.6, ordering="multicolor", sweep=sweep, rtol=1e-9).solve(b)
        assert res.converged and res.extras["colors"] == 2
        assert _true_res(a, res.x, b) <= 1e-9 * np.linalg.norm(b)
    res = SOR(a.toarray(), omega=1.6, rtol=1e-9).solve(b)
    assert res.converged and _true_res(a, res.x, b) <= 1e-9 * np.linalg.norm(b)


@pytest.mark.parametrize("bad", [0.0, 2.0, -0.5, 2.5, float("nan"), float("inf")])
def test_rejects_omega_outside_open_interval(bad):
    with pytest.raises(ValueError, match=r"open interval \(0, 2\)"):
        SOR(poisson((4,)), omega=bad)
    with pytest.raises(ValueError, match=r"open interval \(0, 2\)"):
        SSOR(poisson((4,)), omega=bad)
    with pytest.raises(ValueError, match=r"open interval \(0, 2\)"):
        krylovlab.solve(poisson((4,)), np.ones(4), method="sor", omega=bad)


def test_rejects_bad_arguments():
    a = poisson((4,))
    for bad in ("fast", True, None, [1.2]):
        with pytest.raises((TypeError, ValueError)):
            SOR(a, omega=bad)
    with pytest.raises(ValueError, match="sweep"):
        SOR(a, sweep="sideways")
    with pytest.raises(ValueError, match="ordering"):
        SOR(a, ordering="random")
    with pytest.raises(ValueError, match="arm"):
        SOR(a, omega="bandit", arms=[1.0, 2.0])
    with pytest.raises(TypeError, match="entries"):
        SOR(spla.aslinearoperator(a))
    with pytest.raises(TypeError, match="preconditioner"):
        SOR(a).update_operator(a, M=a)
    with pytest.raises(TypeError, match="unknown option"):
        krylovlab.solve(a, np.ones(4), method="sor", M=a)


def test_zero_diagonal_is_a_clear_error():
    a = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="zero on its diagonal"):
        SOR(a)
    with pytest.raises(ValueError, match="zero on its diagonal"):
        SSOR(a)
    solver = SOR(poisson((2,)))
    with pytest.raises(ValueError, match="zero on its diagonal"):
        solver.update_operator(a)
    assert solver.A.shape == (2, 2) and solver.solve(np.ones(2)).converged  # old operator kept
    # a missing (structurally absent) diagonal entry too
    with pytest.raises(ValueError, match="row 1"):
        SOR(sp.csr_matrix(np.array([[2.0, 1.0], [1.0, 0.0]])))


def test_maxiter_monitors_history_and_x0():
    a = poisson((8, 8))
    n = a.shape[0]
    b = np.random.default_rng(2).standard_normal(n)
    calls = []
    res = SOR(a, omega=1.2, rtol=1e-12, maxiter=7, monitors=[lambda info: calls.append(info.rnorm)],
              history=True).solve(b)
    assert res.status == Status.MAXITER and not res.converged and res.iterations == 7 and len(calls) == 7
    assert res.info == 7
    assert res.rnorm == pytest.approx(_true_res(a, res.x, b), rel=1e-12)
    # the jitted path reports the same history (true residuals) as the Python path
    fast = SOR(a, omega=1.2, rtol=1e-12, maxiter=7, history=True).solve(b)
    np.testing.assert_allclose(fast.history, res.history, rtol=1e-10)
    np.testing.assert_allclose(fast.x, res.x, rtol=1e-12)
    assert fast.nmatvec == 1  # only the check after the last sweep
    # monitor stop
    res = SOR(a, rtol=1e-12, monitors=[lambda info: info.iteration >= 3]).solve(b)
    assert res.status == Status.USER_STOP and res.iterations == 3
    # x0 is not modified; an exact x0 needs no iteration
    x_exact = np.linalg.solve(a.toarray(), b)
    x0 = x_exact.copy()
    res = SOR(a, rtol=1e-8).solve(b, x0)
    assert res.iterations == 0 and res.converged and np.array_equal(x0, x_exact)
    x0 = np.ones(n)
    res = SOR(a, rtol=1e-8).solve(b, x0)
    assert res.converged and np.all(x0 == 1.0)


def test_failure_is_never_reported_as_convergence():
    a = sp.csr_matrix(np.array([[1.0, 3.0], [3.0, 1.0]]))  # SOR diverges here
    res = SOR(a, rtol=1e-8).solve(np.ones(2))
    assert not res.converged and res.status.is_failure
    res = SOR(a, rtol=1e-8, monitors=[lambda i: None]).solve(np.ones(2))
    assert not res.converged and res.status.is_failure


def test_front_door_and_zero_rhs():
    a = poisson((10, 10))
    b = np.ones(100)
    res = krylovlab.solve(a, b, method="sor", omega=1.56, rtol=1e-8)
    assert res.converged and res.extras["omega"] == 1.56 and res.extras["method"] == "sor"
    assert _true_res(a, res.x, b) <= 1e-8 * 10
    res = krylovlab.solve(a, b, method="sor", omega="contextual", context_range=(0, 1), context=0.5, rng=0,
                          rtol=1e-8)
    assert res.converged
    learner = TsallisINF(rng=0)
    solver = SOR(a, omega=learner)
    r0 = solver.solve(np.zeros(100))
    assert r0.iterations == 0 and np.all(r0.x == 0)
    assert learner.rounds == 0 and learner.omega_history == []  # nothing was learned from b = 0


def test_bandit_sequence_learns_and_pickles():
    a = poisson((10, 10))
    rng = np.random.default_rng(3)
    solver = SOR(omega="bandit", rtol=1e-8, rng=0)
    seen = []
    for t in range(30):
        solver.update_operator(a + 0.1 * rng.random() * sp.identity(100))
        res = solver.solve(rng.standard_normal(100))
        assert res.converged
        seen.append((res.extras["omega"], res.iterations))
    L = solver.learner
    assert [w for w, _ in seen] == L.omega_history
    assert [float(k) for _, k in seen] == L.cost_history
    assert L.arm_probabilities.shape == (30, 20)
    clone = pickle.loads(pickle.dumps(solver))
    b = np.ones(100)
    assert solver.solve(b).extras["omega"] == clone.solve(b).extras["omega"]
    solver.reset()
    assert solver.learner.rounds == 0


def test_contextual_solver_needs_context():
    a = poisson((6, 6))
    solver = SOR(a, omega="contextual", context_range=(0.0, 1.0), rng=0)
    with pytest.raises(ValueError, match="context"):
        solver.solve(np.ones(36))
    assert solver.learner.omega_history == []  # the failed call left no half-open round
    assert solver.solve(np.ones(36), context=0.2).extras["omega"] == solver.learner.omega_history[0]
    with pytest.raises(ValueError, match="context_range"):
        SOR(a, omega="binned")


def test_young_omega():
    assert young_omega(poisson((10, 10))) == pytest.approx(2 / (1 + np.sin(np.pi / 11)), rel=1e-10)
    with pytest.raises(ValueError, match="spectral radius"):
        young_omega(sp.csr_matrix(np.array([[1.0, 3.0], [3.0, 1.0]])))


# ------------------------------------------------------------------------------- SSOR
def test_ssor_preconditions_cg_and_scipy():
    a = poisson((30, 30))
    b = np.random.default_rng(4).standard_normal(a.shape[0])
    plain = CG(a, rtol=1e-8).solve(b)
    pre = CG(a, rtol=1e-8, M=SSOR(a, omega=1.7)).solve(b)
    assert pre.converged and pre.iterations < plain.iterations / 2
    assert _true_res(a, pre.x, b) <= 1e-8 * np.linalg.norm(b)
    x, info = spla.cg(a, b, rtol=1e-8, M=SSOR(a, omega=1.7).aspreconditioner())
    assert info == 0 and _true_res(a, x, b) <= 1e-8 * np.linalg.norm(b)
    mc = CG(a, rtol=1e-8, M=SSOR(a, omega=1.2, ordering="multicolor")).solve(b)
    assert mc.converged and _true_res(a, mc.x, b) <= 1e-8 * np.linalg.norm(b)


def test_ssor_operator_is_symmetric_positive_definite():
    a = _spd(25, 5)
    for ordering in ("natural", "multicolor"):
        Minv = SSOR(a, omega=1.3, ordering=ordering).aspreconditioner()
        dense = np.column_stack([Minv @ e for e in np.eye(25)])
        np.testing.assert_allclose(dense, dense.T, rtol=1e-10, atol=1e-12)
        assert np.linalg.eigvalsh((dense + dense.T) / 2).min() > 0


def test_ssor_learned_round_protocol():
    a = poisson((20, 20))
    b = np.ones(400)
    M = SSOR(a, omega="bandit", rng=1)
    cg = CG(a, rtol=1e-8, M=M)
    with pytest.raises(RuntimeError, match="choose"):
        cg.solve(b)
    with pytest.raises(RuntimeError, match="choose"):
        M.update(3)
    applications = []
    for _ in range(5):
        w = M.choose()
        res = cg.solve(b)
        assert res.converged and M.current_omega == w and res.nprec > 0
        assert M.napply == res.nprec
        applications.append(float(res.nprec))
        M.update()  # cost = applications of M
    assert M.learner.cost_history == applications and M.learner.rounds == 5
    assert M.learner.omega_history == [float(w) for w in M.learner.omega_history]
    # sequences: update the preconditioner's matrix with the solver's
    a2 = a + 0.5 * sp.identity(400)
    M.update_operator(a2)
    cg.update_operator(a2)
    M.choose()
    res = cg.solve(b)
    M.update(res.iterations)
    assert res.converged and _true_res(a2, res.x, b) <= 1e-8 * 20
    cheb = SSOR(a, omega=ChebCB(context_range=(0, 1), rng=0))
    with pytest.raises(ValueError, match="context"):
        cheb.choose()
    w1 = cheb.choose(context=0.3)
    assert w1 in cheb.learner.arms.tolist() and cheb.current_omega == w1  # an arm, and it is what SSOR uses
    again = SSOR(a, omega=ChebCB(context_range=(0, 1), rng=0))
    assert again.choose(context=0.3) == w1  # same seed, same first choice


def test_contract_basics():
    a = poisson((6, 6))
    b = np.ones(36)
    res = SOR(a, maxiter=0).solve(b)
    assert res.status == Status.MAXITER and res.iterations == 0 and np.all(res.x == 0)
    assert res.rnorm == pytest.approx(6.0)
    for bad in (dict(rtol=-1.0), dict(atol=float("nan")), dict(maxiter=-1)):
        with pytest.raises(ValueError):
            SOR(a, **bad)
    res = SOR(a, omega=1.3, rtol=1e-9, history=True).solve(b)
    assert len(res.history) == res.iterations + 1 and res.history[-1] <= 6e-9
    res = SOR(a, atol=1e-3, rtol=0.0).solve(b)
    assert res.status == Status.ATOL and _true_res(a, res.x, b) <= 1e-3
    r32 = SOR(a.astype(np.float32), omega=1.3, rtol=1e-4).solve(b.astype(np.float32))
    assert r32.converged and r32.x.dtype == np.float32
    assert _true_res(a, r32.x.astype(float), b) <= 1e-4 * 6 * 1.01


def test_ssor_mixed_dtypes_do_not_leak():
    a = poisson((5, 5))
    M = SSOR(a, omega=1.3)
    r = np.random.default_rng(9).standard_normal(25)
    z1 = M.apply(r)
    zc = M.apply(r * (1 + 1j))
    np.testing.assert_allclose(zc, z1 * (1 + 1j), rtol=1e-12)
    z2 = M.apply(r)
    assert z2.dtype == np.float64 and np.array_equal(z1, z2)
    assert M.apply(r.astype(np.float32)).dtype == np.float64  # A is float64: work in float64
    with pytest.raises(ValueError, match="length"):
        M.apply(np.ones(3))
