"""Sketch-and-precondition least squares against numpy/scipy references."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import krylovlab
from krylovlab import Status, lstsq
from krylovlab.sketch import CountSketch, linf_sketch_size


def _problem(m, n, cond, seed=0, consistent=False):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((m, n)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (U * np.logspace(0, -np.log10(cond), n)) @ V.T
    x_true = rng.standard_normal(n)
    b = A @ x_true if consistent else A @ x_true + rng.standard_normal(m)
    return A, b


def _check_against_reference(A, b, res, *, rtol_r=1e-10, damp=0.0):
    Ad = A.toarray() if sp.issparse(A) else A
    if damp:
        n = Ad.shape[1]
        x_ref = np.linalg.lstsq(np.vstack([Ad, damp * np.eye(n)]), np.concatenate([b, np.zeros(n)]), rcond=None)[0]
    else:
        x_ref = np.linalg.lstsq(Ad, b, rcond=None)[0]
    r_ref = np.linalg.norm(b - Ad @ x_ref)
    r_true = np.linalg.norm(b - Ad @ res.x)  # independent of the solver's own numbers
    assert abs(r_true - res.rnorm) <= 1e-10 * max(r_true, 1e-300) + 1e-13 * np.linalg.norm(b)
    assert r_true <= r_ref * (1 + rtol_r) + 1e-12 * np.linalg.norm(b)
    return x_ref


@pytest.mark.parametrize("sketch", ["sparse-sign", "countsketch", "gaussian", "srht"])
@pytest.mark.parametrize("cond", [1e1, 1e6])
def test_dense_matches_numpy(sketch, cond):
    A, b = _problem(1500, 40, cond, seed=1)
    res = lstsq(A, b, sketch=sketch, rng=0)
    assert res.converged, res
    assert res.rank == 40 and res.full_rank
    x_ref = _check_against_reference(A, b, res)
    # forward error: atol = 1e-12 on the preconditioned gradient with ‖r‖ ≈ 40 allows ≈ 1e-10 here;
    # the warm start keeps it at that level even for κ = 1e6 (forward stability)
    assert np.linalg.norm(res.x - x_ref) <= 1e-8 * np.linalg.norm(x_ref)
    assert res.iterations < 80
    assert res.sketch == sketch and res.sketch_size == 160


@pytest.mark.parametrize("solver", ["cgls", "lsqr", "lsmr"])
def test_inner_solvers_agree(solver):
    A, b = _problem(1200, 30, 1e4, seed=2)
    res = lstsq(A, b, solver=solver, rng=3)
    assert res.converged and res.solver == solver
    _check_against_reference(A, b, res)


def test_sparse_matches_numpy():
    rng = np.random.default_rng(4)
    A = sp.random(3000, 60, density=0.05, random_state=4, format="csr") @ sp.diags(np.logspace(0, 4, 60))
    A = sp.csr_matrix(A)
    b = rng.standard_normal(3000)
    for sketch in ("sparse-sign", "countsketch"):
        res = lstsq(A, b, sketch=sketch, rng=5)
        assert res.converged
        _check_against_reference(A, b, res)
    # scipy's lsqr on the same problem reaches the same residual, with many more iterations
    ref = spla.lsqr(A, b, atol=1e-12, btol=1e-12, iter_lim=20000)
    assert abs(res.rnorm - np.linalg.norm(b - A @ ref[0])) <= 1e-8 * res.rnorm
    assert res.iterations < ref[2]


def test_consistent_system_stops_on_test_one():
    A, b = _problem(800, 20, 1e3, seed=6, consistent=True)
    res = lstsq(A, b, rng=1)
    assert res.converged
    assert res.rnorm <= 1e-10 * np.linalg.norm(b)


def test_damping_matches_augmented_problem():
    A, b = _problem(1000, 25, 1e6, seed=7)
    for solver in ("cgls", "lsqr"):
        res = lstsq(A, b, damp=0.05, solver=solver, rng=2)
        assert res.converged
        x_ref = _check_against_reference(np.vstack([A, 0.05 * np.eye(25)]), np.concatenate([b, np.zeros(25)]),
                                         _Shim(res, 25))
        assert np.linalg.norm(res.x - x_ref) <= 1e-8 * np.linalg.norm(x_ref)


class _Shim:
    """The augmented-problem view of a damped result (same x, augmented residual)."""

    def __init__(self, res, n):
        self.x = res.x
        self.rnorm = float(np.hypot(res.rnorm, 0.05 * np.linalg.norm(res.x)))


def test_rank_deficient_gives_minimum_norm_solution():
    A, b = _problem(900, 30, 1e2, seed=8)
    A[:, 7] = A[:, 3] - 2 * A[:, 11]  # exact linear dependence
    A[:, 20] = 0.0  # and a zero column
    res = lstsq(A, b, rng=0)
    assert res.rank == 28 and not res.full_rank
    assert res.converged
    x_ref = _check_against_reference(A, b, res)
    assert np.linalg.norm(res.x - x_ref) <= 1e-8 * np.linalg.norm(x_ref)  # the minimum-norm one
    assert "SVD" in res.extras["preconditioner"]


def test_ill_conditioned_full_rank_keeps_the_triangular_preconditioner():
    """κ = 1e9: the 1-norm estimate of R is inconclusive, the 2-norm power estimate is not (no SVD)."""
    import scipy.linalg as sla

    from krylovlab.sketch.lstsq import _rcond2_estimate

    A, b = _problem(3000, 200, 1e9, seed=4)
    res = lstsq(A, b, rng=0)
    assert res.converged and res.full_rank
    assert res.extras["preconditioner"] == "R^-1 (QR)"
    _check_against_reference(A, b, res)
    # the estimate itself: within a factor 1.5 of the true ratio, never far below it
    R = sla.qr(A, mode="r")[0][:200]
    s = np.linalg.svd(R, compute_uv=False)
    assert s[-1] / s[0] <= _rcond2_estimate(R) <= 1.5 * s[-1] / s[0]


@pytest.mark.parametrize("cond, expected", [(1e2, "cholesky-qr"), (1e6, "cholesky-qr"), (1e10, "householder-qr")])
def test_factorisation_choice(cond, expected):
    """Cholesky-QR of the sketch while its Gram matrix is safe, Householder QR beyond; the answer is the same."""
    A, b = _problem(3000, 120, cond, seed=11)
    res = lstsq(A, b, rng=0)
    assert res.extras["factor"] == expected
    assert res.converged and res.full_rank
    x_ref = np.linalg.lstsq(A, b, rcond=None)[0]
    r_ref, r_true = np.linalg.norm(b - A @ x_ref), np.linalg.norm(b - A @ res.x)
    # evaluating b − A x loses ≈ ε‖A‖‖x‖ (‖x‖ ≈ κ here), so the comparison is only that sharp
    slack = 1e-10 * r_ref + 1e3 * np.finfo(float).eps * np.linalg.norm(A, 2) * np.linalg.norm(x_ref)
    assert abs(r_true - res.rnorm) <= slack
    assert r_true <= r_ref + slack


def test_gram_defect_flags_a_singular_sketch():
    """A Cholesky factor of a rank-deficient Gram matrix must fail the orthonormality check."""
    import scipy.linalg as sla

    from krylovlab.sketch.lstsq import _GRAM_TOL, _gram_defect

    A, _ = _problem(400, 50, 10.0, seed=12)
    assert _gram_defect(A, sla.qr(A, mode="r")[0][:50]) < 1e-10  # an exact R: Q̂ is orthonormal
    A[:, 9] = A[:, 2] + A[:, 4]
    G = A.T @ A + 1e-13 * np.eye(50)  # what a rounded, barely positive Gram matrix looks like
    R = np.linalg.cholesky(G).T
    assert _gram_defect(A, R) > _GRAM_TOL
    res = lstsq(A, np.ones(400), rng=0)
    assert res.extras["factor"] == "householder-qr" and res.rank == 49


def test_too_small_sketch_is_never_silently_wrong():
    # a CountSketch with d = n collides columns: either it still converges correctly, or it says it did not
    A, b = _problem(2000, 40, 1e8, seed=9)
    for seed in range(3):
        res = lstsq(A, b, sketch=CountSketch(40, 2000, rng=seed), iter_lim=60)
        if res.converged:
            _check_against_reference(A, b, res, rtol_r=1e-8)
        else:
            assert res.status in (Status.MAXITER, Status.STAGNATION)


def test_sketch_solve_mode():
    A, b = _problem(4000, 20, 1e2, seed=10)
    x_ref = np.linalg.lstsq(A, b, rcond=None)[0]
    r_ref = np.linalg.norm(b - A @ x_ref)
    res = lstsq(A, b, mode="sketch-solve", sketch="gaussian", sketch_size=800, rng=0)
    assert res.iterations == 0 and not res.converged and res.status == Status.USER_STOP
    assert r_ref <= res.rnorm <= 1.2 * r_ref  # (1 + ε)-optimal residual
    assert res.rnorm == pytest.approx(np.linalg.norm(b - A @ res.x), rel=1e-12)
    assert res.extras["factor"] == "householder-qr"  # no iteration follows to repair a Gram-matrix answer
    # the answer is the exact minimiser of ‖S(Ax − b)‖: compare with the same sketch done densely
    from krylovlab.sketch import GaussianSketch

    S = GaussianSketch(800, 4000, rng=0).todense()
    A2, b2 = _problem(4000, 20, 1e6, seed=10, consistent=True)
    res2 = lstsq(A2, b2, mode="sketch-solve", sketch=GaussianSketch(800, 4000, rng=0))
    x_s = np.linalg.lstsq(S @ A2, S @ b2, rcond=None)[0]
    assert np.linalg.norm(res2.x - x_s) <= 1e-8 * np.linalg.norm(x_s)


def test_small_problem_uses_no_sketch():
    A, b = _problem(50, 20, 1e3, seed=11)
    res = lstsq(A, b, rng=0)
    assert res.sketch == "none" and res.converged
    _check_against_reference(A, b, res)


def test_reproducible_with_seed():
    A, b = _problem(700, 15, 1e5, seed=12)
    r1, r2 = lstsq(A, b, rng=42), lstsq(A, b, rng=42)
    assert np.array_equal(r1.x, r2.x) and r1.iterations == r2.iterations


def test_zero_rhs():
    A, _ = _problem(300, 10, 10.0)
    res = lstsq(A, np.zeros(300), rng=0)
    assert res.converged and np.all(res.x == 0)


def test_wide_and_bad_inputs_raise():
    A, b = _problem(300, 10, 10.0)
    with pytest.raises(ValueError, match="tall"):
        lstsq(A.T, b[:10])
    bad = A.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        lstsq(bad, b)
    b2 = b.copy()
    b2[0] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        lstsq(A, b2)
    with pytest.raises(ValueError, match="shape"):
        lstsq(A, b[:-1])
    with pytest.raises(TypeError, match="complex"):
        lstsq(A + 1j, b)
    with pytest.raises(TypeError, match="explicit"):
        lstsq(spla.aslinearoperator(A), b)
    for kw in (dict(sketch="fourier"), dict(mode="fast"), dict(solver="cg"), dict(atol=-1.0),
               dict(btol=np.nan), dict(sketch_size=5), dict(damp=-0.1), dict(iter_lim=-1)):
        with pytest.raises(ValueError):
            lstsq(A, b, **kw)


@pytest.mark.parametrize("sketch", ["sparse-sign", "countsketch", "gaussian", "srht"])
@pytest.mark.parametrize("mode", ["precondition", "sketch-solve"])
@pytest.mark.filterwarnings("error::RuntimeWarning")  # the clear error only, no numpy warning before it
def test_nonfinite_dense_A_caught_through_the_sketch(sketch, mode):
    # lstsq skips the separate scan of dense A when a built-in sketch is used and relies on the
    # NaN/Inf reaching S A: every placement and kind must still raise, never return an answer
    A, b = _problem(400, 12, 1e3)
    for where in ((0, 0), (399, 11), (200, 5)):
        for bad_value in (np.nan, np.inf, -np.inf):
            bad = A.copy()
            bad[where] = bad_value
            with pytest.raises(ValueError, match="NaN or Inf"):
                lstsq(bad, b, sketch=sketch, mode=mode, rng=1)
    two = A.copy()
    two[7, 3], two[8, 3] = np.inf, -np.inf  # may cancel to NaN inside one sketch row: still caught
    with pytest.raises(ValueError, match="NaN or Inf"):
        lstsq(two, b, sketch=sketch, mode=mode, rng=1)
    with pytest.raises(ValueError, match="NaN or Inf"):  # sketch_size >= m: A is factorised unsketched
        lstsq(two, b, sketch=sketch, mode=mode, sketch_size=400, rng=1)


def test_nonfinite_A_with_user_sketch_is_scanned_up_front():
    A, b = _problem(400, 12, 1e3)
    bad = A.copy()
    bad[5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        lstsq(bad, b, sketch=CountSketch(48, 400, rng=0))


def test_linf_sketch_size():
    assert linf_sketch_size(10**6, 100, eps=0.5) == 10**6  # capped at m
    d = linf_sketch_size(10**12, 10, eps=1.0, delta=0.1)
    assert 10 < d < 10**12
    with pytest.raises(ValueError):
        linf_sketch_size(100, 10, eps=0)


def test_top_level_export():
    assert krylovlab.lstsq is lstsq


def test_thread_setting():
    A, b = _problem(3000, 150, 1e4, seed=13)  # large enough for the threaded kernel variants
    r1 = lstsq(A, b, rng=0, threads=1)
    r2 = lstsq(A, b, rng=0, threads=2)
    assert r1.converged and r2.converged and r1.extras["threads"] == 1
    assert abs(r1.rnorm - r2.rnorm) <= 1e-12 * r1.rnorm
    with pytest.raises(ValueError, match="threads"):
        lstsq(A, b, threads=0)
