"""GCRO-DR and GMRES-DR: parity with GMRES, recycle invariants, operator changes, failures, pickling."""

import importlib
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import krylovlab
from krylovlab import GCRODR, GMRESDR, Jacobi, Status, gcrodr
from krylovlab.gallery import convection_diffusion, poisson


def true_rel(A, b, x):
    return np.linalg.norm(b - A @ x) / np.linalg.norm(b)


def sequence(n_side=20, count=4, seed=0, complex_=False):
    """Slowly varying nonsymmetric systems."""
    rng = np.random.default_rng(seed)
    A0 = convection_diffusion((n_side, n_side)).tocsr()
    n = A0.shape[0]
    out = []
    for t in range(count):
        D = sp.diags(1.0 + 0.05 * rng.random(n))
        A = (A0 @ D).tocsr()
        if complex_:
            A = (A + 0.02j * sp.eye(n)).tocsr()
        out.append(A)
    return out


def check_invariants(s, A, M=None, tol=1e-10):
    U, C = s.U, s.C
    assert U is not None and C is not None
    k = U.shape[1]
    assert np.abs(C.conj().T @ C - np.eye(k)).max() < tol  # CᴴC = I
    AMU = A @ (U if M is None else (M.inv_diag[:, None] * U))
    assert np.linalg.norm(AMU - C) <= tol * max(1.0, np.linalg.norm(C))  # C = A M U


def test_recycle_dim_zero_matches_scipy_gmres_history():
    A = convection_diffusion((24, 24)).tocsr()
    b = np.ones(A.shape[0])
    ref = []
    spla.gmres(A, b, rtol=1e-9, restart=25, maxiter=200, callback=ref.append, callback_type="pr_norm")
    res = GCRODR(A, krylov_dim=25, recycle_dim=0, rtol=1e-9, history=True).solve(b)
    mine = res.history[1:] / np.linalg.norm(b)
    assert res.converged and len(mine) == len(ref)
    np.testing.assert_allclose(mine, ref, rtol=1e-6)


def test_recycle_dim_zero_matches_krylovlab_gmres():
    cls = krylovlab.get_solver_class("gmres")
    A = convection_diffusion((20, 20)).tocsr()
    b = np.linspace(1, 2, A.shape[0])
    ref = cls(A, restart=20, rtol=1e-9, history=True).solve(b)
    mine = GCRODR(A, krylov_dim=20, recycle_dim=0, rtol=1e-9, history=True).solve(b)
    assert ref.converged and mine.converged
    assert abs(mine.iterations - ref.iterations) <= 1
    m = min(len(ref.history), len(mine.history)) - 1
    np.testing.assert_allclose(mine.history[1:m], ref.history[1:m], rtol=1e-6)


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("jacobi", [False, True])
def test_sequence_converges_and_invariants_hold(complex_, jacobi):
    mats = sequence(complex_=complex_)
    rng = np.random.default_rng(1)
    s = GCRODR(krylov_dim=30, recycle_dim=10, rtol=1e-9)
    for A in mats:
        b = rng.standard_normal(A.shape[0]) + (1j * rng.standard_normal(A.shape[0]) if complex_ else 0)
        M = Jacobi(A) if jacobi else None
        s.update_operator(A, M=M)
        res = s.solve(b)
        assert res.converged, res
        assert true_rel(A, b, res.x) <= 1e-9
        check_invariants(s, A, s.M)
        assert res.extras["recycle_dim"] <= 10


def test_recycling_reduces_matvecs_against_gmresdr():
    # slowly varying diffusion: the slow modes persist, so recycling must pay for its k extra matvecs
    rng = np.random.default_rng(5)
    L = poisson((24, 24)).tocsr()
    mats = []
    for t in range(5):
        d = sp.diags(np.sqrt(1.0 + 0.1 * rng.random(L.shape[0])))
        mats.append((d @ L @ d).tocsr())
    b = np.ones(L.shape[0])
    rec, fresh = GCRODR(krylov_dim=30, recycle_dim=10, rtol=1e-9), GMRESDR(krylov_dim=30, recycle_dim=10, rtol=1e-9)
    mv_rec = [rec.solve(b, A=A).nmatvec for A in mats]
    mv_fresh = [fresh.solve(b, A=A).nmatvec for A in mats]
    assert mv_rec[0] == mv_fresh[0]  # nothing to recycle on the first system
    assert sum(mv_rec[1:]) < sum(mv_fresh[1:])
    assert fresh.U is not None  # GMRES-DR keeps the last space for inspection only


def test_operator_change_detection():
    A = sequence(count=1)[0]
    b = np.ones(A.shape[0])
    s = GCRODR(A, krylov_dim=30, recycle_dim=8, rtol=1e-8)
    s.solve(b)
    r = s.solve(b + 1.0)  # same object: C = A U is reused
    assert r.extras["recomputed_C"] is False
    s.update_operator(A)  # still the same object
    assert s.solve(b + np.arange(b.size)).extras["recomputed_C"] is False
    A2 = A.copy()  # equal values, new object: recomputed (k extra matvecs)
    r2 = s.solve(b, A=A2)
    assert r2.extras["recomputed_C"] is True and r2.converged
    check_invariants(s, A2)
    # user says "same" for a mutated matrix -> no recompute; says "changed" -> recompute
    s.update_operator(A2, same_operator=True)
    assert s.solve(b).extras["recomputed_C"] is False
    A2.data *= 1.5  # in place: identity cannot see it
    s.update_operator(A2, same_operator=False)
    r3 = s.solve(b)
    assert r3.extras["recomputed_C"] is True and r3.converged
    check_invariants(s, A2)


def test_new_preconditioner_invalidates_C():
    A = sequence(count=1)[0]
    b = np.ones(A.shape[0])
    s = GCRODR(A, krylov_dim=30, recycle_dim=8, rtol=1e-8)
    s.solve(b)
    s.update_operator(A, M=Jacobi(A))
    r = s.solve(b)
    assert r.extras["recomputed_C"] and r.converged
    check_invariants(s, A, s.M)


def test_singular_member_fails_cleanly_and_keeps_space():
    mats = sequence(count=3)
    n = mats[0].shape[0]
    b = np.ones(n)
    s = GCRODR(krylov_dim=30, recycle_dim=8, rtol=1e-10, maxiter=600)
    assert s.solve(b, A=mats[0]).converged
    U0, C0 = s.U.copy(), s.C.copy()
    # singular and inconsistent: zero last row and column, b has a nonzero last entry
    S = mats[1].tolil()
    S[n - 1, :] = 0
    S[:, n - 1] = 0
    S = S.tocsr()
    bad = s.solve(b, A=S)
    assert not bad.converged and bad.status.is_failure
    assert np.linalg.norm(b - S @ bad.x) > 1e-10 * np.linalg.norm(b)
    np.testing.assert_array_equal(s.U, U0)
    np.testing.assert_array_equal(s.C, C0)
    good = s.solve(b, A=mats[2])
    assert good.converged and true_rel(mats[2], b, good.x) <= 1e-10
    check_invariants(s, mats[2])


def test_nan_matrix_rejected_and_maxiter_honest():
    A = sequence(count=1)[0]
    b = np.ones(A.shape[0])
    B = A.copy()
    B.data[3] = np.nan
    with pytest.raises(ValueError):
        GCRODR(B)
    r = GCRODR(A, krylov_dim=10, recycle_dim=4, rtol=1e-12, maxiter=15).solve(b)
    assert r.status == Status.MAXITER and not r.converged and r.iterations == 15
    assert np.isclose(r.rnorm, np.linalg.norm(b - A @ r.x), rtol=1e-6)


def test_never_false_convergence_on_hard_nonsymmetric():
    rng = np.random.default_rng(3)
    n = 120
    A = rng.standard_normal((n, n)) + 2 * np.eye(n)
    for k in (0, 6):
        s = GCRODR(A, krylov_dim=15, recycle_dim=k, rtol=1e-10, maxiter=3000)
        for t in range(3):
            b = rng.standard_normal(n)
            r = s.solve(b)
            if r.converged:
                assert true_rel(A, b, r.x) <= 1e-10 * (1 + 1e-9)
            else:
                assert r.status.is_failure


def test_pickle_roundtrip_keeps_state():
    mats = sequence(count=3)
    b = np.ones(mats[0].shape[0])
    s = GCRODR(krylov_dim=30, recycle_dim=8, rtol=1e-9, M=Jacobi(mats[0]))
    s.solve(b, A=mats[0])
    s.solve(b, A=mats[1])
    clone = pickle.loads(pickle.dumps(s))
    np.testing.assert_array_equal(clone.U, s.U)
    np.testing.assert_array_equal(clone.C, s.C)
    r1, r2 = s.solve(b), clone.solve(b)
    assert r1.nmatvec == r2.nmatvec and np.allclose(r1.x, r2.x)
    s.reset()
    assert s.U is None and s.C is None and s.ritz_values is None


def test_generic_paths_dense_linop_monitor_and_warm_start():
    A = sequence(count=1)[0]
    b = np.ones(A.shape[0])
    jit = GCRODR(A, krylov_dim=30, recycle_dim=8, rtol=1e-9).solve(b)
    dense = GCRODR(A.toarray(), krylov_dim=30, recycle_dim=8, rtol=1e-9).solve(b)
    lin = GCRODR(spla.aslinearoperator(A), krylov_dim=30, recycle_dim=8, rtol=1e-9,
                 M=spla.aslinearoperator(sp.diags(1 / A.diagonal()))).solve(b)
    assert jit.extras["path"] == "jitted" and dense.extras["path"] == "python"
    assert jit.iterations == dense.iterations
    for r in (dense, lin):
        assert r.converged and true_rel(A, b, r.x) <= 1e-9
    calls = []
    s = GCRODR(A, krylov_dim=30, recycle_dim=8, rtol=1e-9, monitors=[lambda info: calls.append(info.rnorm)])
    r = s.solve(b)
    assert len(calls) == r.iterations
    stop = GCRODR(A, krylov_dim=30, recycle_dim=8, monitors=[lambda info: info.iteration >= 5]).solve(b)
    assert stop.status == Status.USER_STOP and stop.iterations == 5
    w = GCRODR(A, krylov_dim=30, recycle_dim=8, rtol=1e-9, warm_start="previous")
    w.solve(b)
    again = w.solve(b)
    assert again.iterations == 0 and again.converged


def test_function_and_front_door():
    A = poisson((16, 16))
    b = np.ones(A.shape[0])
    space = GCRODR(krylov_dim=20, recycle_dim=5)
    for t in range(2):
        x, info = gcrodr(A * (1 + 0.1 * t), b, rtol=1e-8, recycle=space)
        assert info == 0 and true_rel(A * (1 + 0.1 * t), b, x) <= 1e-8
    assert space.U.shape == (256, 5)
    for method in ("gcrodr", "gmresdr", "rcg"):
        r = krylovlab.solve(A, b, method=method, rtol=1e-8, recycle_dim=4)
        assert r.converged and true_rel(A, b, r.x) <= 1e-8
    with pytest.raises(TypeError):
        gcrodr(A, b, recycle="space")


def test_parameter_errors():
    with pytest.raises(ValueError):
        GCRODR(krylov_dim=10, recycle_dim=10)
    with pytest.raises(ValueError):
        GCRODR(krylov_dim=0)
    with pytest.raises(TypeError):
        GCRODR(recycle_dim=2.5)
    with pytest.raises(ValueError):
        GCRODR(warm_start="zero")
    with pytest.raises(ValueError):
        GCRODR(rtol=-1)
    with pytest.raises(ValueError):
        GCRODR().solve(np.ones(3))
    A = poisson((8,))
    s = GCRODR(A, krylov_dim=6, recycle_dim=2)
    with pytest.raises(ValueError):
        s.solve(np.ones(5))
    # zero rhs
    r = s.solve(np.zeros(8))
    assert r.converged and not np.any(r.x)


def test_jitted_and_python_cycles_agree_on_a_sequence():
    """The numba cycle (CSR) and the Python cycle (LinearOperator) give the same iterations and residuals."""
    mats = sequence(n_side=18, count=4, seed=3)
    rng = np.random.default_rng(2)
    bs = [rng.standard_normal(mats[0].shape[0]) for _ in mats]
    fast = GCRODR(krylov_dim=24, recycle_dim=8, rtol=1e-10, history=True)
    slow = GCRODR(krylov_dim=24, recycle_dim=8, rtol=1e-10, history=True)
    for A, b in zip(mats, bs):
        r1 = fast.solve(b, A=A)
        r2 = slow.solve(b, A=spla.aslinearoperator(A))
        assert r1.extras["path"] == "jitted" and r2.extras["path"] == "python"
        assert r1.converged and r2.converged
        assert abs(r1.nmatvec - r2.nmatvec) <= 1
        assert true_rel(A, b, r1.x) <= 1e-10 and true_rel(A, b, r2.x) <= 1e-10
        m = min(len(r1.history), len(r2.history)) - 1
        np.testing.assert_allclose(r1.history[:m], r2.history[:m], rtol=1e-5)
        check_invariants(fast, A)


@pytest.mark.parametrize("complex_", [False, True])
def test_standard_ritz_option(complex_):
    """ritz="standard": converges, keeps the invariants, and recycles on an SPD sequence."""
    mats = sequence(complex_=complex_)
    rng = np.random.default_rng(6)
    s = GCRODR(krylov_dim=30, recycle_dim=10, rtol=1e-9, ritz="standard")
    for A in mats:
        b = rng.standard_normal(A.shape[0]) + (1j * rng.standard_normal(A.shape[0]) if complex_ else 0)
        res = s.solve(b, A=A)
        assert res.converged and true_rel(A, b, res.x) <= 1e-9
        check_invariants(s, A)
    # SPD sequence: beats GMRES-DR without carry-over, like the harmonic default
    rng = np.random.default_rng(5)
    L = poisson((24, 24)).tocsr()
    spd = []
    for t in range(5):
        d = sp.diags(np.sqrt(1.0 + 0.1 * rng.random(L.shape[0])))
        spd.append((d @ L @ d).tocsr())
    b = np.ones(L.shape[0])
    std = GCRODR(krylov_dim=30, recycle_dim=10, rtol=1e-9, ritz="standard")
    fresh = GMRESDR(krylov_dim=30, recycle_dim=10, rtol=1e-9)
    mv_std = [std.solve(b, A=A).nmatvec for A in spd]
    mv_fresh = [fresh.solve(b, A=A).nmatvec for A in spd]
    assert sum(mv_std[1:]) < sum(mv_fresh[1:])
    assert np.all(np.isfinite(std.ritz_values)) and np.all(std.ritz_values.real > 0)
    with pytest.raises(ValueError, match="ritz"):
        GCRODR(ritz="refined")


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_schur_selection_spans_the_selected_eigenvectors(dtype):
    """The reordered-Schur selection of the deflation step against numpy's eig: the basis is orthonormal,
    spans the eigenvectors of the kk largest |μ|, returns θ = 1/μ for them, and for real matrices never
    splits a complex-conjugate pair."""
    import importlib

    mod = importlib.import_module("krylovlab.recycle.gcrodr")  # the module (the package exports a function too)
    rng = np.random.default_rng(4)
    n = 30
    cplx = np.dtype(dtype).kind == "c"
    B = rng.standard_normal((n, n)) + (1j * rng.standard_normal((n, n)) if cplx else 0)
    B = np.asarray(B, dtype=dtype)
    lp = mod._lapack(dtype)
    mu, Z = np.linalg.eig(B)
    order = np.argsort(-np.abs(mu))
    for kk in (5, 6, 11):
        P, theta = mod._schur_select(lp, B, kk, cplx)
        m = P.shape[1]
        assert m <= kk and m >= kk - 1
        np.testing.assert_allclose(P.conj().T @ P, np.eye(m), atol=1e-12)
        sel = order[:m]
        # the selected eigenvalues (as a set) are the m largest in modulus
        np.testing.assert_allclose(np.sort_complex(1.0 / theta), np.sort_complex(mu[sel]), rtol=1e-10)
        # each selected eigenvector lies in span(P)
        Zs = Z[:, sel]
        np.testing.assert_allclose(P @ (P.conj().T @ Zs), Zs, atol=1e-9)
        if not cplx:
            assert np.isrealobj(P)
            # conjugate pairs kept whole: the θ set is closed under conjugation
            np.testing.assert_allclose(np.sort_complex(theta), np.sort_complex(theta.conj()), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("device_path", [False, True], ids=["host kernels", "array namespace"])
def test_recompute_C_orthonormalises_and_drops_dependent_columns(dtype, device_path):
    """C = A U re-orthonormalised (Cholesky QR twice, Householder QR when B U is ill conditioned):
    CᴴC = I and C = A U_new to round-off; a linearly dependent column is dropped.  Both the host
    kernels and the array-namespace (device) path."""
    rng = np.random.default_rng(9)
    cplx = np.dtype(dtype).kind == "c"
    A = convection_diffusion((15, 15)).tocsr().astype(dtype)
    n = A.shape[0]
    U = rng.standard_normal((6, n)) + (1j * rng.standard_normal((6, n)) if cplx else 0)
    U = np.ascontiguousarray(U, dtype=dtype)
    apply_B = lambda v, out: out.__setitem__(slice(None), A @ v)  # noqa: E731
    s = GCRODR(krylov_dim=10, recycle_dim=6)
    for Ui, kept in ((U, 6), (np.vstack([U, U[2:3] * 3.0]), 6)):
        Un, C = s._recompute_C(Ui.copy(), apply_B, n, dtype, krylovlab.get_backend(Ui) if device_path else None)
        assert Un.shape == C.shape == (kept, n)
        np.testing.assert_allclose(C.conj() @ C.T, np.eye(kept), atol=1e-12)
        np.testing.assert_allclose((A @ Un.T).T, C, atol=1e-10)


@pytest.mark.parametrize("complex_", [False, True])
def test_update_every_refreshes_less_and_stays_exact(complex_):
    """update_every=3: refreshes after cycles 3, 6, … and the last one only, converges on the true residual,
    keeps the recycle invariants, and still beats GMRES-DR on a slowly varying SPD sequence; update_every=1
    is the default iteration (identical histories)."""
    rng = np.random.default_rng(12)
    for A in sequence(complex_=complex_):
        b = rng.standard_normal(A.shape[0]) + (1j * rng.standard_normal(A.shape[0]) if complex_ else 0)
        s3 = GCRODR(krylov_dim=20, recycle_dim=8, rtol=1e-9, update_every=3)
        res = s3.solve(b, A=A)
        assert res.converged and true_rel(A, b, res.x) <= 1e-9
        check_invariants(s3, A)
        cyc, upd = res.extras["cycles"], res.extras["updates"]
        # the first cycle (space empty), every third one, and the last one
        assert upd == len({1, cyc} | set(range(3, cyc + 1, 3))), (cyc, upd)
    L = poisson((24, 24)).tocsr()
    spd = [(sp.diags(np.sqrt(1.0 + 0.1 * rng.random(L.shape[0]))) @ L @ sp.diags(
        np.sqrt(1.0 + 0.1 * rng.random(L.shape[0])))).tocsr() for _ in range(5)]
    spd = [((M + M.T) * 0.5).tocsr() for M in spd]
    b = np.ones(L.shape[0])
    every3 = GCRODR(krylov_dim=30, recycle_dim=10, rtol=1e-9, update_every=3)
    fresh = GMRESDR(krylov_dim=30, recycle_dim=10, rtol=1e-9)
    mv3 = [every3.solve(b, A=A).nmatvec for A in spd]
    mvf = [fresh.solve(b, A=A).nmatvec for A in spd]
    assert sum(mv3[1:]) < sum(mvf[1:])
    one = GCRODR(krylov_dim=30, recycle_dim=10, rtol=1e-9, update_every=1, history=True)
    dflt = GCRODR(krylov_dim=30, recycle_dim=10, rtol=1e-9, history=True)
    for A in spd[:2]:
        np.testing.assert_array_equal(one.solve(b, A=A).history, dflt.solve(b, A=A).history)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="update_every"):
            GCRODR(update_every=bad)
    with pytest.raises(TypeError, match="update_every"):
        GCRODR(update_every=1.5)


def test_set_recycle_space_deflates_from_the_first_solve():
    # the exact eigenvectors of the smallest eigenvalues of an SPD matrix: the first solve already
    # profits (fewer matvecs than GMRES-DR, the k matvecs for C = A U included)
    A = poisson((24, 24)).tocsr()
    b = np.random.default_rng(3).standard_normal(A.shape[0])
    _, vecs = np.linalg.eigh(A.toarray())
    fresh = GCRODR(A, krylov_dim=30, recycle_dim=10, rtol=1e-9).solve(b)
    s = GCRODR(A, krylov_dim=30, recycle_dim=10, rtol=1e-9)
    s.set_recycle_space(vecs[:, :10])
    res = s.solve(b)
    assert res.converged and res.extras["recomputed_C"] and true_rel(A, b, res.x) <= 1e-9
    assert res.nmatvec < fresh.nmatvec
    check_invariants(s, A)
    # a single vector is accepted as one column; bad spaces are refused without touching the state
    s.set_recycle_space(vecs[:, 0])
    assert s.U.shape == (A.shape[0], 1)
    for bad, err in [(vecs[:, :11], ValueError), (vecs[:5, :3], ValueError), (np.full((A.shape[0], 2), np.nan), ValueError),
                     (np.ones((A.shape[0], 2), dtype=int), TypeError), (np.zeros((A.shape[0], 0)), ValueError)]:
        with pytest.raises(err):
            s.set_recycle_space(bad)
    assert s.U.shape == (A.shape[0], 1)


# ------------------------------------------------- the array-namespace (device) path, run with numpy
@pytest.fixture
def generic(monkeypatch):
    """Route solves through the path device (CuPy) operators take, with numpy as the array namespace."""
    mod = importlib.import_module("krylovlab.recycle.gcrodr")

    monkeypatch.setattr(mod, "_use_generic", lambda op: True)


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("jacobi", [False, True])
def test_generic_path_sequence_matches_host_path(complex_, jacobi, monkeypatch):
    """The array-namespace path converges on the true residual, keeps the recycle invariants, and does
    the work of the host kernels (MGS, jitted cycles) to rounding: matvecs within 2 per system."""
    mod = importlib.import_module("krylovlab.recycle.gcrodr")
    mats = sequence(complex_=complex_)
    rng = np.random.default_rng(1)
    bs = [rng.standard_normal(A.shape[0]) + (1j * rng.standard_normal(A.shape[0]) if complex_ else 0) for A in mats]

    def run(generic_path):
        monkeypatch.setattr(mod, "_use_generic", lambda op: generic_path)
        s, mv = GCRODR(krylov_dim=30, recycle_dim=10, rtol=1e-9), []
        for A, b in zip(mats, bs):
            s.update_operator(A, M=Jacobi(A) if jacobi else None)
            res = s.solve(b)
            assert res.converged and res.extras["path"] == ("array namespace" if generic_path else "jitted")
            assert true_rel(A, b, res.x) <= 1e-9
            check_invariants(s, A, s.M)
            mv.append(res.nmatvec)
        return mv

    mv_dev, mv_host = run(True), run(False)
    assert all(abs(a - b) <= 2 for a, b in zip(mv_host, mv_dev)), (mv_host, mv_dev)


def test_generic_path_with_k_zero_is_scipy_gmres(generic):
    A = convection_diffusion((24, 24)).tocsr()
    b = np.ones(A.shape[0])
    ref = []
    spla.gmres(A, b, rtol=1e-9, restart=25, maxiter=200, callback=ref.append, callback_type="pr_norm")
    res = GCRODR(A, krylov_dim=25, recycle_dim=0, rtol=1e-9, history=True).solve(b)
    assert res.converged and res.extras["path"] == "array namespace"
    np.testing.assert_allclose(res.history[1:] / np.linalg.norm(b), ref, rtol=1e-6)


def test_generic_path_monitors_failures_and_same_operator(generic):
    A = sequence(count=1)[0]
    b = np.ones(A.shape[0])
    hist = krylovlab.History()
    s = GCRODR(A, krylov_dim=30, recycle_dim=8, rtol=1e-8, monitors=[hist])
    r1 = s.solve(b)
    assert r1.converged and len(hist.rnorms) == r1.iterations and true_rel(A, b, r1.x) <= 1e-8
    r2 = s.solve(b + 1.0)  # same operator object: C = A U reused
    assert r2.converged and r2.extras["recomputed_C"] is False
    # a singular member fails cleanly and leaves the recycle space as it was
    U0, C0 = s.U.copy(), s.C.copy()
    S = A.tolil()
    S[5, :] = 0
    bad = s.solve(b, A=S.tocsr())
    assert not bad.converged
    np.testing.assert_array_equal(s.U, U0)
    np.testing.assert_array_equal(s.C, C0)


@pytest.mark.gpu
@pytest.mark.skipif(not krylovlab.backend.cupy_available(), reason="needs CuPy and a CUDA device")
def test_gpu_sequence_matches_host():
    import cupy
    import cupyx.scipy.sparse as csp

    mats = sequence(count=3)
    b = np.ones(mats[0].shape[0])
    host, dev = GCRODR(krylov_dim=30, recycle_dim=10, rtol=1e-9), GCRODR(krylov_dim=30, recycle_dim=10, rtol=1e-9)
    for A in mats:
        rh = host.solve(b, A=A)
        rd = dev.solve(cupy.asarray(b), A=csp.csr_matrix(A))
        assert rd.converged and abs(rd.nmatvec - rh.nmatvec) <= 2
        assert true_rel(A, b, cupy.asnumpy(rd.x)) <= 1e-9
