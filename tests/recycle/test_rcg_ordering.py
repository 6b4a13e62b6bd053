"""RCG (deflated CG with harvesting), the ordering utilities, and the recycle kernels."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from krylovlab import CG, RCG, Jacobi, Status, ordering
from krylovlab.gallery import poisson
from krylovlab.kernels import cpu


def true_rel(A, b, x):
    return np.linalg.norm(b - A @ x) / np.linalg.norm(b)


def spd_sequence(side=30, count=4, seed=0):
    rng = np.random.default_rng(seed)
    L = poisson((side, side)).tocsr()
    out = []
    for _ in range(count):
        d = sp.diags(np.sqrt(1.0 + 0.2 * rng.random(L.shape[0])))
        out.append((d @ L @ d).tocsr())
    return out


def test_rcg_sequence_converges_fewer_iterations_and_invariants():
    mats = spd_sequence()
    b = np.ones(mats[0].shape[0])
    s = RCG(recycle_dim=6, harvest_dim=16, rtol=1e-9)
    its_cg = [CG(A, rtol=1e-9).solve(b).iterations for A in mats]
    its = []
    for A in mats:
        r = s.solve(b, A=A)
        assert r.converged and true_rel(A, b, r.x) <= 1e-9
        its.append(r.iterations)
        W = s.W
        assert W.shape[1] == 6
        # the harvested vectors approximate the smallest eigenvectors: Ritz values close to the true ones
    lam = spla.eigsh(mats[-1], k=6, sigma=0, return_eigenvectors=False)
    theta, lam = np.sort(s.ritz_values), np.sort(lam)
    assert np.all(theta >= lam * (1 - 1e-8))  # Rayleigh–Ritz: upper bounds, in order
    np.testing.assert_allclose(theta, lam, rtol=0.15)
    assert sum(its[1:]) < 0.8 * sum(its_cg[1:])
    # next solve: W is A-orthonormalised against the new operator before use
    A = mats[0]
    r = s.solve(b, A=A)
    assert r.extras["recomputed_AW"] is True and r.converged


def test_rcg_learn_solves_freezes_the_space_after_that_many_solves():
    mats = spd_sequence(count=5, seed=4)
    b = np.ones(mats[0].shape[0])
    s = RCG(recycle_dim=6, harvest_dim=16, learn_solves=2, rtol=1e-9)
    harvests, spaces = [], []
    for A in mats:
        r = s.solve(b, A=A)
        assert r.converged and true_rel(A, b, r.x) <= 1e-9
        harvests.append(r.extras["harvests"])
        spaces.append(s.W.copy())
    assert harvests[0] > 0 and harvests[1] > 0 and harvests[2:] == [0, 0, 0]
    # frozen: later solves only re-A-orthonormalise the same space for their operator
    for W in spaces[3:]:
        Q0, Q1 = np.linalg.qr(spaces[2])[0], np.linalg.qr(W)[0]
        np.testing.assert_allclose(np.linalg.svd(Q0.T @ Q1, compute_uv=False), 1.0, atol=1e-8)
    assert not np.allclose(spaces[0], spaces[1])  # it did learn before
    s.reset()  # learning starts again
    assert s.solve(b, A=mats[0]).extras["harvests"] > 0
    with pytest.raises(ValueError):
        RCG(learn_solves=-1)


def test_rcg_same_operator_reuses_AW_and_aw_is_exact():
    A = spd_sequence(count=1)[0]
    rng = np.random.default_rng(2)
    s = RCG(A, recycle_dim=5, harvest_dim=12, rtol=1e-9)
    s.solve(rng.standard_normal(A.shape[0]))
    assert s.AW is not None
    np.testing.assert_allclose(s.AW, A @ s.W, atol=1e-8 * np.abs(s.AW).max())
    WAW = s.W.T @ (A @ s.W)
    assert np.abs(WAW - np.eye(5)).max() < 1e-6
    r = s.solve(rng.standard_normal(A.shape[0]))
    assert r.extras["recomputed_AW"] is False and r.converged


def test_rcg_set_deflation_space_deflates_from_the_first_solve():
    """Exact eigenvectors of the smallest eigenvalues, given up front: the first solve already takes fewer
    matvecs than CG (the j matvecs for A W included); with learn_solves=0 the space is kept as given."""
    A = poisson((24, 24)).tocsr()
    b = np.random.default_rng(3).standard_normal(A.shape[0])
    _, vecs = np.linalg.eigh(A.toarray())
    cg = CG(A, rtol=1e-9).solve(b)
    s = RCG(A, recycle_dim=8, learn_solves=0, rtol=1e-9)
    s.set_deflation_space(vecs[:, :8])
    res = s.solve(b)
    assert res.converged and res.extras["recomputed_AW"] and true_rel(A, b, res.x) <= 1e-9
    assert res.extras["recycle_dim"] == 8 and res.extras["harvests"] == 0
    assert res.nmatvec < 0.8 * cg.nmatvec
    # kept as given (up to the A-orthonormalisation), AW = A W
    Q0, Q1 = np.linalg.qr(vecs[:, :8])[0], np.linalg.qr(s.W)[0]
    np.testing.assert_allclose(np.linalg.svd(Q0.T @ Q1, compute_uv=False), 1.0, atol=1e-10)
    np.testing.assert_allclose(s.AW, A @ s.W, atol=1e-10 * np.abs(s.AW).max())
    # a single vector is accepted as one column; bad spaces are refused without touching the state
    s.set_deflation_space(vecs[:, 0])
    assert s.W.shape == (A.shape[0], 1)
    for bad, err in [(vecs[:, :9], ValueError), (vecs[:5, :3], ValueError), (np.full((A.shape[0], 2), np.inf), ValueError),
                     (np.ones((A.shape[0], 2), dtype=int), TypeError), (np.zeros((A.shape[0], 0)), ValueError)]:
        with pytest.raises(err):
            s.set_deflation_space(bad)
    assert s.W.shape == (A.shape[0], 1)


@pytest.mark.parametrize("kind", ["jacobi", "linop", "dense", "complex"])
def test_rcg_paths(kind):
    A = spd_sequence(side=16, count=1)[0]
    n = A.shape[0]
    rng = np.random.default_rng(4)
    b = rng.standard_normal(n)
    M = None
    if kind == "jacobi":
        M = Jacobi(A)
    elif kind == "linop":
        A = spla.aslinearoperator(A)
        M = spla.aslinearoperator(sp.diags(1 / np.asarray(A.A.diagonal() if hasattr(A, "A") else 1.0)))
    elif kind == "dense":
        A = A.toarray()
    elif kind == "complex":
        H = sp.diags(np.full(n - 1, 0.1j), 1)
        A = (A + H + H.conj().T).tocsr()
        b = b + 1j * rng.standard_normal(n)
    Amat = A if not isinstance(A, spla.LinearOperator) else A.A
    s = RCG(A, recycle_dim=4, harvest_dim=10, rtol=1e-9, M=M)
    for t in range(3):
        r = s.solve(b * (1 + t))
        assert r.converged and true_rel(Amat, b * (1 + t), r.x) <= 1e-9


def test_rcg_indefinite_and_failed_solve_keep_space():
    A = spd_sequence(count=1)[0]
    b = np.ones(A.shape[0])
    s = RCG(A, recycle_dim=4, harvest_dim=10, rtol=1e-9)
    s.solve(b)
    W0 = s.W.copy()
    shifted = (A - 2.0 * sp.eye(A.shape[0])).tocsr()  # indefinite
    r = s.solve(b, A=shifted)
    assert not r.converged and r.status.is_failure
    np.testing.assert_array_equal(s.W, W0)
    r = s.solve(b, A=A)
    assert r.converged
    short = RCG(A, recycle_dim=4, rtol=1e-12, maxiter=7).solve(b)
    assert short.status == Status.MAXITER and short.iterations == 7 and not short.converged


def test_rcg_pickle_reset_monitor():
    A = spd_sequence(count=1)[0]
    b = np.ones(A.shape[0])
    s = RCG(A, recycle_dim=4, harvest_dim=10, rtol=1e-9, M=Jacobi(A))
    s.solve(b)
    c = pickle.loads(pickle.dumps(s))
    r1, r2 = s.solve(2 * b), c.solve(2 * b)
    assert r1.iterations == r2.iterations and np.allclose(r1.x, r2.x)
    s.reset()
    assert s.W is None and s.ritz_values is None
    seen = []
    m = RCG(A, rtol=1e-9, monitors=[lambda info: seen.append(info.iteration)])
    r = m.solve(b)
    assert r.converged and seen == list(range(1, r.iterations + 1))
    with pytest.raises(ValueError):
        RCG(harvest_dim=2)
    with pytest.raises(ValueError):
        RCG(warm_start="x")


# ----------------------------------------------------------------------------- ordering
def test_greedy_order_matches_brute_force():
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    perm = ordering.greedy_order(X, start=5)
    # reference: plain loop
    left, cur, ref = set(range(40)) - {5}, 5, [5]
    while left:
        cur = min(left, key=lambda j: (np.linalg.norm(X[j] - X[cur]), j))
        left.remove(cur)
        ref.append(cur)
    assert perm.tolist() == ref
    fields = [rng.random((4, 4)) for _ in range(10)]
    assert sorted(ordering.greedy_order(fields).tolist()) == list(range(10))
    with pytest.raises(ValueError):
        ordering.greedy_order(X, start=40)
    with pytest.raises(ValueError):
        ordering.greedy_order([np.zeros(2), np.zeros(3)])
    with pytest.raises(ValueError):
        ordering.greedy_order(np.array([[np.nan, 1.0]]))


def test_scalable_order_and_hilbert():
    rng = np.random.default_rng(1)
    X = rng.random((3000, 4))
    perm = ordering.scalable_order(X, group_size=150, n_components=2)
    assert np.array_equal(np.sort(perm), np.arange(3000))
    assert ordering.tour_length(X, perm) < 0.7 * ordering.tour_length(X, np.arange(3000))
    # Hilbert curve: consecutive cells of a full grid are neighbours
    for d, bits in ((2, 3), (3, 2)):
        g = np.stack(np.meshgrid(*[np.arange(2 ** bits)] * d, indexing="ij"), -1).reshape(-1, d).astype(float)
        h = ordering.hilbert_index(g, bits=bits)
        assert len(set(h.tolist())) == len(g)
        steps = np.abs(np.diff(g[np.argsort(h)], axis=0)).sum(1)
        assert steps.max() == 1


def test_feature_helpers():
    rng = np.random.default_rng(2)
    fields = [rng.random((16, 16)) for _ in range(12)]
    F = ordering.fft_features(fields, modes=4, n_components=3)
    assert F.shape == (12, 3) and F.min() >= 0 and F.max() <= 1
    mats = spd_sequence(side=8, count=5)
    G = ordering.matrix_features(mats, n_probe=16, rng=0)
    d_true = [sp.linalg.norm(mats[0] - m) for m in mats]
    d_est = [np.linalg.norm(G[0] - g) for g in G]
    assert np.corrcoef(d_true, d_est)[0, 1] > 0.8
    assert ordering.matrix_features(mats, rng=3).shape == ordering.matrix_features(mats, rng=3).shape
    np.testing.assert_array_equal(ordering.matrix_features(mats, rng=3), ordering.matrix_features(mats, rng=3))


# ------------------------------------------------------------------------------ kernels
@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
def test_recycle_kernels_against_numpy(dtype):
    rng = np.random.default_rng(3)
    n, k = 777, 9
    Z = rng.standard_normal((n, k)) + (1j * rng.standard_normal((n, k)) if np.dtype(dtype).kind == "c" else 0)
    W = np.ascontiguousarray(np.linalg.qr(Z)[0].T, dtype=dtype)
    w = (rng.standard_normal(n) + (1j * rng.standard_normal(n) if np.dtype(dtype).kind == "c" else 0)).astype(dtype)
    w0 = w.copy()
    h = np.zeros(k + 1, dtype=dtype)
    nrm = cpu.orth_cgs2(W, k, w, h)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    ref = w0 - W.T @ (W.conj() @ w0)
    np.testing.assert_allclose(w, ref, atol=tol * np.linalg.norm(w0))
    np.testing.assert_allclose(h[:k], W.conj() @ w0, atol=tol * np.linalg.norm(w0))
    assert np.isclose(nrm, np.linalg.norm(ref), rtol=tol * 10)
    G = np.zeros((k, 3), dtype=dtype)
    cpu.gram(W, k, W, 3, G)
    np.testing.assert_allclose(G, np.eye(k, 3), atol=tol)
    out = np.ones(n, dtype=dtype)
    coef = np.arange(k).astype(dtype)
    cpu.combine(W, coef, k, out, 2.0)
    np.testing.assert_allclose(out, 2.0 + coef @ W, atol=tol * 10)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("jacobi", [False, True])
@pytest.mark.parametrize("storage", ["csr", "diagonals"])
def test_gcro_cycle_kernel_against_dense_arnoldi(dtype, jacobi, storage):
    """One deflated Arnoldi cycle (MGS kernel) against a dense reference: the Arnoldi relation
    B V_s = C·(Cᴴ B V_s) + V_{s+1} H̄, orthonormal [C; V_{s+1}], and the Givens residual estimate
    equal to the dense least-squares minimum min ‖β e₁ − H̄ y‖; B read from CSR or from diagonal
    storage of A·diag(d)."""
    rng = np.random.default_rng(11)
    cplx = np.dtype(dtype).kind == "c"
    n, kc, m = 300, 4, 16
    A = sp.random(n, n, density=0.03, random_state=5, format="csr") + sp.diags(2.0 + rng.random(n))
    A = A.astype(dtype)
    if cplx:
        A = (A + 0.3j * sp.random(n, n, density=0.01, random_state=6)).tocsr().astype(dtype)
    d = (1.0 / (1.0 + rng.random(n))).astype(dtype) if jacobi else np.empty(0, dtype=dtype)
    B = A.toarray() @ (np.diag(d) if jacobi else np.eye(n))

    def rand(*shape):
        return rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if cplx else 0)

    W = np.zeros((m + 1, n), dtype=dtype)
    Q = np.linalg.qr(rand(n, kc + 1))[0]
    W[:kc + 1] = Q.T  # C = W[:kc], v₁ = W[kc] ⊥ C
    beta = 2.5
    Ht = np.zeros((m, m + 1), dtype=dtype)
    R = np.zeros((m + 1, m), dtype=dtype)
    g = np.zeros(m + 1, dtype=dtype)
    g[0] = beta
    cs, sn = np.zeros(m), np.zeros(m, dtype=dtype)
    smax = m - kc
    if storage == "diagonals":  # every diagonal of the random matrix: B = A·diag(d) has no column indices
        data_pc = A.data * d[A.indices] if jacobi else A.data
        offs, val = cpu.dia_from_csr(A.indptr, A.indices, data_pc, max_diagonals=2 * n, max_padding=1e9)
        assert offs.size > 1
    else:
        offs, val = np.zeros(0, dtype=np.int64), np.zeros((0, n), dtype=dtype)
    steps, code, est = cpu.gcro_cycle_csr(A.indptr, A.indices, A.data, d, W, kc, smax, 0.0, Ht, R, g, cs, sn,
                                          np.zeros(0), 0, np.empty(n, dtype=dtype), offs, val)
    assert steps == smax and code == int(Status.MAXITER)
    s = steps
    Wt = W[:kc + s + 1]
    np.testing.assert_allclose(Wt.conj() @ Wt.T, np.eye(kc + s + 1), atol=1e-12)
    V = W[kc:kc + s + 1].T  # n × (s+1)
    Cm = W[:kc].T
    Bc = Ht[:s, :kc].T  # Cᴴ B V_s
    Hbar = Ht[:s, kc:kc + s + 1].T  # (s+1) × s
    lhs = B @ V[:, :s]
    np.testing.assert_allclose(lhs, Cm @ Bc + V @ Hbar, atol=1e-10 * np.abs(lhs).max())
    np.testing.assert_allclose(Bc, Cm.conj().T @ lhs, atol=1e-10 * np.abs(lhs).max())
    e1 = np.zeros(s + 1, dtype=dtype)
    e1[0] = beta
    y = np.linalg.lstsq(Hbar, e1, rcond=None)[0]
    assert np.isclose(est, np.linalg.norm(e1 - Hbar @ y), rtol=1e-8)


def test_rcg_pending_space_folding_matches_deferred(monkeypatch):
    """The harvested space is the same whether the windows are combined at the end or folded every window."""
    import krylovlab.recycle.rcg as rcg_mod

    mats = spd_sequence(side=20, count=4)
    b = np.ones(mats[0].shape[0])

    def run():
        s = RCG(recycle_dim=5, harvest_dim=12, harvest_windows=4, rtol=1e-9)
        its = []
        for A in mats:
            r = s.solve(b, A=A)
            assert r.converged and true_rel(A, b, r.x) <= 1e-9
            its.append(r.iterations)
        return its, s

    its_deferred, s1 = run()
    monkeypatch.setattr(rcg_mod, "_PENDING_BUDGET", 1)  # every window folded into explicit vectors at once
    its_folded, s2 = run()
    assert all(abs(a - c) <= 1 for a, c in zip(its_deferred, its_folded))
    assert its_deferred[-1] < its_deferred[0]  # the harvested space does deflate
    # same space: principal angles between span(W1) and span(W2) close to zero
    Q1, Q2 = np.linalg.qr(s1.W)[0], np.linalg.qr(s2.W)[0]
    assert np.linalg.svd(Q1.T @ Q2, compute_uv=False).min() > 1 - 1e-6


@pytest.mark.parametrize("method", ["gcrodr", "rcg"])
@pytest.mark.parametrize("jacobi", [False, True])
def test_recycling_solvers_agree_with_and_without_diagonal_storage(monkeypatch, method, jacobi):
    """Stencil matrices are read from diagonal storage by both recycling kernels: the same iterates as
    with CSR, to rounding (the kernels sum and contract the products their own way; A·diag(d) is formed
    before the product; RCG's pᴴAp is summed by blocks)."""
    import importlib

    from krylovlab import GCRODR

    module = importlib.import_module(f"krylovlab.recycle.{method}")  # the module, not the function gcrodr
    mats = spd_sequence(side=24, count=3, seed=5)
    b = np.random.default_rng(8).standard_normal(mats[0].shape[0])
    runs = {}
    for storage in ("csr", "diagonals"):
        monkeypatch.setattr(module, "_DIA_MIN_ROWS", 10**9 if storage == "csr" else 0)
        if method == "gcrodr":
            s = GCRODR(krylov_dim=20, recycle_dim=6, rtol=1e-10)
        else:
            s = RCG(recycle_dim=6, harvest_dim=12, rtol=1e-10)
        out = []
        for A in mats:
            r = s.solve(b, A=A) if not jacobi else (s.update_operator(A, M=Jacobi(A)), s.solve(b))[1]
            assert r.converged and r.extras["path"] == "jitted" and r.extras["storage"] == storage
            assert true_rel(A, b, r.x) <= 1e-10
            out.append(r)
        runs[storage] = out
    for csr, dia in zip(runs["csr"], runs["diagonals"]):
        assert abs(dia.iterations - csr.iterations) <= 2
        np.testing.assert_allclose(dia.x, csr.x, rtol=1e-7, atol=1e-9 * np.abs(csr.x).max())
