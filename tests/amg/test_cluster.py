"""Bootstrap smooth vectors and AMG spectral clustering on small graphs."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from krylovlab.amg import AMGSpectralClustering, bootstrap_smooth_vectors, modularity, spectral_clustering
from krylovlab.amg.cluster import augment_graph, chebyshev_subspace, kmeans, laplacian_embedding
from krylovlab.kernels.cpu import _amg as kamg
from krylovlab.amg.graphs import attributed_planted_partition, planted_partition
from krylovlab.amg.smooth import matching_hierarchy
from krylovlab.kernels.cpu import compatible_matching
from krylovlab.gallery import poisson


@pytest.fixture(scope="module")
def easy():
    return planted_partition(600, 3, 20, 1, rng=1)


def laplacian(W, shift=1e-3):
    d = np.asarray(W.sum(axis=1)).ravel()
    return (sp.diags(d * (1 + shift)) - W).tocsr()


# ----------------------------------------------------------------- smooth vectors
def test_matching_pairs_neighbours():
    A = poisson((10, 10))
    w = np.ones(100)
    agg, nagg = compatible_matching(A.indptr, A.indices, A.data, w)
    sizes = np.bincount(agg)
    assert sizes.max() <= 2 and nagg == sizes.size and nagg < 100
    dense = A.toarray()
    for a in np.nonzero(sizes == 2)[0]:
        i, j = np.nonzero(agg == a)[0]
        assert dense[i, j] != 0


def test_hierarchy_interpolates_w_exactly():
    A = poisson((16, 16))
    w = np.random.default_rng(0).random(256) + 0.5
    H = matching_hierarchy(A, w, max_coarse=8)
    assert H.levels >= 3
    P = H._Ps[0]
    wc = P.T @ w
    assert np.allclose(P @ wc, w)  # w lies in the range of P (P has orthonormal columns)
    assert np.allclose((P.T @ P).toarray(), np.eye(P.shape[1]))


def test_smooth_vectors_have_small_rayleigh_quotients(easy):
    W, _ = easy
    L = laplacian(W)
    res = bootstrap_smooth_vectors(L, 4, w0=np.ones(600), rng=0)
    V = res.vectors
    assert V.shape == (600, 4) and np.allclose(V.T @ V, np.eye(4))
    rq = lambda v: float(v @ (L @ v) / (v @ v))
    smooth = [rq(v) for v in res.raw.T]
    rand = [rq(v) for v in np.random.default_rng(3).standard_normal((4, 600))]
    assert max(smooth) < 0.1 * min(rand)
    # the three planted clusters give three small eigenvalues: the vectors must find them
    lam = np.linalg.eigvalsh(L.toarray())
    assert max(smooth) < 5 * lam[2] + 1e-12


def test_bootstrap_reproducible_and_validates():
    L = laplacian(planted_partition(200, 2, 10, 1, rng=0)[0])
    a = bootstrap_smooth_vectors(L, 3, rng=5).raw
    b = bootstrap_smooth_vectors(L, 3, rng=5).raw
    assert np.array_equal(a, b)
    with pytest.raises(ValueError):
        bootstrap_smooth_vectors(L, 0)
    with pytest.raises(ValueError):
        bootstrap_smooth_vectors(-L, 3)


# --------------------------------------------------------------------- clustering
@pytest.mark.parametrize("embedding", ["chebyshev", "bootstrap-amg", "lobpcg", "lobpcg-amg"])
def test_easy_planted_partition_exact(easy, embedding):
    W, truth = easy
    est = AMGSpectralClustering(3, embedding=embedding, random_state=0, n_init=3).fit(W)
    assert adjusted_rand_score(truth, est.labels_) == 1.0
    assert est.embedding_.shape == (600, 3)
    assert est.modularity_ == pytest.approx(modularity(W, truth))


def test_reproducible_with_seed(easy):
    W, _ = planted_partition(500, 4, 8, 3, rng=2)
    a = AMGSpectralClustering(4, embedding="bootstrap-amg", random_state=7, n_init=2).fit(W)
    b = AMGSpectralClustering(4, embedding="bootstrap-amg", random_state=7, n_init=2).fit(W)
    assert np.array_equal(a.labels_, b.labels_)
    a = AMGSpectralClustering(4, random_state=7, n_init=2).fit(W)
    b = AMGSpectralClustering(4, random_state=7, n_init=2).fit(W)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.embedding_, b.embedding_)


def test_karate_club_networkx():
    G = nx.karate_club_graph()
    truth = [G.nodes[i]["club"] for i in G]
    est = AMGSpectralClustering(2, random_state=0).fit(G)
    assert normalized_mutual_info_score(truth, est.labels_) > 0.7
    q_nx = nx.algorithms.community.modularity(G, [set(np.nonzero(est.labels_ == c)[0]) for c in (0, 1)])
    assert est.modularity_ == pytest.approx(q_nx)


@pytest.mark.parametrize("embedding", ["chebyshev", "bootstrap-amg", "lobpcg"])
def test_attributes_help_on_ambiguous_structure(embedding):
    W, truth, attrs = attributed_planted_partition(800, 4, 4, 3, n_attributes=2, agreement=0.7, rng=3)
    plain = AMGSpectralClustering(4, embedding=embedding, random_state=0, n_init=4).fit(W)
    with_attr = AMGSpectralClustering(4, embedding=embedding, random_state=0, n_init=4).fit(W, attributes=attrs)
    nmi_plain = normalized_mutual_info_score(truth, plain.labels_)
    nmi_attr = normalized_mutual_info_score(truth, with_attr.labels_)
    assert nmi_attr > nmi_plain + 0.05
    assert with_attr.labels_.shape == (800,)


def test_augment_graph_structure():
    W = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], float))
    codes = np.array([[0, -1], [1, 0], [0, 0]])
    Wa, av = augment_graph(W, codes, 2.0)
    assert Wa.shape == (6, 6)  # 3 vertices + 2 values of attribute 0 + 1 value of attribute 1
    assert av.tolist() == [[3, -1], [4, 5], [3, 5]]
    assert Wa[0, 3] == 2.0 and Wa[3, 0] == 2.0 and Wa[1, 5] == 2.0 and Wa[0, 5] == 0
    assert (Wa != Wa.T).nnz == 0


def test_function_form_and_isolated_vertices():
    W, truth = planted_partition(300, 3, 15, 1, rng=4)
    W = sp.block_diag([W, sp.csr_matrix((2, 2))], format="csr")  # two isolated vertices
    labels = spectral_clustering(W, 3, random_state=0, n_init=2)
    assert labels[-2:].tolist() == [-1, -1]
    assert adjusted_rand_score(truth, labels[:300]) == 1.0


@pytest.mark.parametrize("W, msg", [
    (sp.csr_matrix(np.ones((3, 4))), "square"),
    (sp.csr_matrix(np.array([[0, -1.0], [-1.0, 0]])), "negative"),
    (sp.csr_matrix(np.array([[0, 1.0], [0, 0]])), "symmetric"),
    (sp.csr_matrix(np.array([[0, np.nan], [np.nan, 0]])), "NaN"),
    (sp.block_diag([np.ones((5, 5)), np.ones((5, 5))], format="csr"), "connected components"),
])
def test_bad_graphs(W, msg):
    with pytest.raises(ValueError, match=msg):
        AMGSpectralClustering(2, random_state=0).fit(W)


def test_bad_parameters(easy):
    W, _ = easy
    for kw in (dict(n_clusters=0), dict(n_clusters=2, embedding="arpack"), dict(n_clusters=2, n_init=0),
               dict(n_clusters=601)):
        with pytest.raises(ValueError):
            AMGSpectralClustering(**kw).fit(W)
    with pytest.raises(ValueError, match="one row per vertex"):
        AMGSpectralClustering(2).fit(W, attributes=np.zeros((5, 1)))
    with pytest.raises(TypeError):
        AMGSpectralClustering(2).fit("graph")


# ------------------------------------------------- fast path: kernels, eigensolver, k-means
def test_block_recurrence_matches_scipy():
    W, _ = planted_partition(3000, 4, 10, 2, rng=5)
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((3000, 7))
    Z0 = rng.standard_normal((3000, 7))
    ref = 0.7 * (W @ Y) - 0.2 * Y - 1.0 * Z0
    for f in (kamg.block_recurrence_serial, kamg.block_recurrence_parallel):
        Z = Z0.copy()
        f(W.indptr, W.indices, W.data, Y, Z, 0.7, -0.2, -1.0)
        assert np.allclose(Z, ref, rtol=1e-13, atol=1e-12)
        Z = np.full_like(Y, np.nan)  # c = 0: Z is output only, never read
        f(W.indptr, W.indices, W.data, Y, Z, 1.0, 0.0, 0.0)
        assert np.allclose(Z, W @ Y, rtol=1e-13, atol=1e-12)


def test_symmetry_and_components_kernels():
    W, _ = planted_partition(2000, 3, 10, 1, rng=6)
    W = sp.csr_matrix(W)
    W.sort_indices()
    for f in (kamg.csr_is_symmetric_serial, kamg.csr_is_symmetric_parallel):
        assert f(W.indptr, W.indices, W.data, 1e-12)
        for (i, j) in ((0, 1999), (1999, 0)):  # one extra entry in either triangle
            A = W.tolil()
            A[i, j] = 1.0 + A[i, j]
            A = A.tocsr()
            A.sort_indices()
            assert not f(A.indptr, A.indices, A.data, 1e-12)
        B = W.copy()
        B.data[5] = 3.0  # same pattern, different value
        assert not f(B.indptr, B.indices, B.data, 1e-12)
    G = sp.block_diag([W, W[:50, :50], sp.csr_matrix((3, 3))], format="csr")
    nc, comp = kamg.connected_components(G.indptr, G.indices)
    from scipy.sparse import csgraph

    nc_ref, comp_ref = csgraph.connected_components(G, directed=False)
    assert nc == nc_ref
    assert adjusted_rand_score(comp_ref, comp) == 1.0


def test_chebyshev_subspace_matches_dense_eigenvectors():
    W, _ = planted_partition(400, 4, 15, 2, rng=7)
    d = np.asarray(W.sum(axis=1)).ravel()
    S = sp.csr_matrix(sp.diags(d ** -0.5) @ W @ sp.diags(d ** -0.5))
    lam, V = np.linalg.eigh(S.toarray())
    theta, Q, info = chebyshev_subspace(S, 4, w0=np.sqrt(d), tol=1e-8, rng=0)
    assert info["converged"] and Q.shape == (400, 4)
    assert np.allclose(theta, lam[::-1][:4], atol=1e-10)
    assert np.allclose(Q.T @ Q, np.eye(4), atol=1e-12)
    # the subspace, not just the values: principal angles to the exact top-4 eigenvectors
    s = np.linalg.svd(V[:, ::-1][:, :4].T @ Q, compute_uv=False)
    assert s.min() > 1 - 1e-8
    # true residuals, computed independently of the solver's own estimate
    R = S @ Q - Q * theta
    assert np.linalg.norm(R, axis=0).max() <= 1e-8


def test_chebyshev_reports_non_convergence():
    W, _ = planted_partition(3000, 5, 7, 3, rng=8)
    W = W[np.asarray(W.sum(axis=1)).ravel() > 0][:, np.asarray(W.sum(axis=1)).ravel() > 0]
    d = np.asarray(W.sum(axis=1)).ravel()
    S = sp.csr_matrix(sp.diags(d ** -0.5) @ W @ sp.diags(d ** -0.5))
    _, Q, info = chebyshev_subspace(S, 5, tol=1e-14, maxiter=1, rng=0)
    R = S @ Q - Q * (np.einsum("ij,ij->j", Q, S @ Q))
    assert not info["converged"] and info["passes"] == 1
    assert np.linalg.norm(R, axis=0).max() > 1e-14


def test_embedding_spans_lobpcg_subspace(easy):
    W, _ = easy
    U1, i1 = laplacian_embedding(W, 3, method="chebyshev", tol=1e-6, rng=0)
    U2, i2 = laplacian_embedding(W, 3, method="lobpcg", tol=1e-6, maxiter=200, rng=0)
    assert np.allclose(i1["eigenvalues"], np.sort(i2["eigenvalues"]), atol=1e-6)
    Q1, _ = np.linalg.qr(U1)
    Q2, _ = np.linalg.qr(U2)
    assert np.linalg.svd(Q1.T @ Q2, compute_uv=False).min() > 1 - 1e-6


def test_kmeans_against_sklearn_and_reproducible():
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_blobs

    X, y = make_blobs(3000, centers=6, n_features=4, cluster_std=1.5, random_state=3)
    lab, C, inertia, info = kmeans(X, 6, n_init=5, rng=0)
    ref = KMeans(6, n_init=5, random_state=0).fit(X)
    assert inertia <= ref.inertia_ * (1 + 1e-6)
    assert adjusted_rand_score(ref.labels_, lab) > 0.99
    # inertia reported = recomputed from labels and centres; centres are the cluster means
    assert np.isclose(inertia, ((X - C[lab]) ** 2).sum())
    for c in range(6):
        assert np.allclose(C[c], X[lab == c].mean(axis=0))
    lab2, *_ = kmeans(X, 6, n_init=5, rng=0)
    assert np.array_equal(lab, lab2)
    # threaded assignment gives the same clustering
    labels_p = np.empty(3000, dtype=np.int64)
    labels_s = np.empty(3000, dtype=np.int64)
    C0 = X[:6].copy()
    i_s = kamg.lloyd_serial(X, C0.copy(), labels_s, 100, 0.0)
    i_p = kamg.lloyd_parallel(X, C0.copy(), labels_p, 100, 0.0)
    assert np.array_equal(labels_s, labels_p) and i_s == i_p  # bitwise: same chunked sums


def test_kmeans_empty_cluster_and_score():
    rng = np.random.default_rng(0)
    X = np.r_[rng.random((10, 1)), rng.random((10, 1)) + 5, rng.random((10, 1)) + 10]
    truth = np.repeat([0, 1, 2], 10)
    labels = np.empty(30, dtype=np.int64)
    C = np.array([[0.5], [7.0], [1000.0]])  # the third centre gets no point at first
    kamg.lloyd_serial(X, C, labels, 100, 0.0)
    assert adjusted_rand_score(truth, labels) == 1.0 and np.bincount(labels).min() == 10
    X = np.r_[np.zeros((10, 2)), np.ones((10, 2)) * 5]
    calls = []
    lab, *_ = kmeans(X, 2, n_init=4, rng=0, score=lambda l: calls.append(1) or 1.0)
    assert len(calls) == 1  # every restart reaches the same minimum: scored once


def test_modularity_matches_networkx():
    W, truth = planted_partition(500, 4, 8, 2, rng=9)
    G = nx.from_scipy_sparse_array(W)
    parts = [set(np.nonzero(truth == c)[0]) for c in range(4)]
    assert modularity(W, truth) == pytest.approx(nx.algorithms.community.modularity(G, parts))
    lab = truth.copy()
    lab[:7] = -1  # unassigned = singletons
    parts = [set(np.nonzero(lab == c)[0]) for c in range(4)] + [{i} for i in range(7)]
    assert modularity(W, lab) == pytest.approx(nx.algorithms.community.modularity(G, parts))


def test_hard_level_quality_and_seed(easy):
    W, truth = planted_partition(20000, 5, 7, 3, rng=10)
    est = AMGSpectralClustering(5, random_state=1).fit(W)
    ref = AMGSpectralClustering(5, embedding="lobpcg", random_state=1).fit(W)
    nmi = normalized_mutual_info_score(truth, est.labels_)
    assert nmi >= normalized_mutual_info_score(truth, ref.labels_) - 0.005 and nmi > 0.85
    assert est.info_["converged"]
    again = AMGSpectralClustering(5, random_state=1).fit(W)
    assert np.array_equal(est.labels_, again.labels_)


def test_isolated_vertices_with_attributes_and_bad_eigen_tol(easy):
    W, truth = easy
    Wb = sp.block_diag([W, sp.csr_matrix((1, 1))], format="csr")
    est = AMGSpectralClustering(3, random_state=0, n_init=2).fit(Wb)
    assert est.labels_[-1] == -1 and est.n_isolated_ == 1 and np.all(est.embedding_[-1] == 0)
    assert adjusted_rand_score(truth, est.labels_[:-1]) == 1.0
    with pytest.raises(ValueError, match="eigen_tol"):
        AMGSpectralClustering(3, eigen_tol=-1.0).fit(W)


def test_incremental_modularity_matches_full():
    from krylovlab.amg.cluster import _Modularity

    W, truth = planted_partition(3000, 5, 8, 2, rng=11)
    q = _Modularity(W)
    rng = np.random.default_rng(0)
    q(truth)  # reference partition
    for n_flip in (0, 1, 30, 300, 2000):
        lab = (truth + 2) % 5  # relabelled clusters ...
        idx = rng.choice(3000, n_flip, replace=False)
        lab[idx] = rng.integers(0, 5, n_flip)  # ... with some vertices moved
        assert q(lab) == pytest.approx(modularity(W, lab), abs=1e-12)
        assert q(lab) == pytest.approx(_Modularity(W)(lab), abs=1e-12)


def test_self_loops_and_explicit_zeros_are_dropped(easy):
    W, truth = easy
    A = W.tolil()
    A.setdiag(5.0)  # self-loops
    A[0, 1] = A[1, 0] = 0.0
    A = A.tocsr()
    A.data[A.data == 0] = 0.0  # keep any explicit zeros stored
    B = W.tolil()
    B[0, 1] = B[1, 0] = 0.0
    B = B.tocsr()
    B.eliminate_zeros()
    a = AMGSpectralClustering(3, random_state=0, n_init=2).fit(A)
    b = AMGSpectralClustering(3, random_state=0, n_init=2).fit(B)
    assert np.array_equal(a.labels_, b.labels_) and a.modularity_ == pytest.approx(b.modularity_)


def test_unconverged_embedding_warns(easy):
    W, _ = easy
    with pytest.warns(RuntimeWarning, match="above the tolerance"):
        U, info = laplacian_embedding(W, 3, tol=1e-14, maxiter=1, rng=0)
    assert not info["converged"] and U.shape == (600, 3)


def test_kmeans_sampled_seeding_on_large_input():
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_blobs

    X, y = make_blobs(45000, centers=5, n_features=3, cluster_std=2.0, random_state=4)  # > 20 000 rows: sampled seeding
    lab, C, inertia, info = kmeans(X, 5, n_init=3, rng=1)
    ref = KMeans(5, n_init=3, random_state=0).fit(X)
    assert inertia <= ref.inertia_ * (1 + 1e-6)
    assert adjusted_rand_score(ref.labels_, lab) > 0.99
    assert np.isclose(inertia, ((X - C[lab]) ** 2).sum())
    # with tol = 0 it stops only at a Lloyd fixed point on all rows: centres = cluster means
    lab, C, inertia, info = kmeans(X, 5, n_init=1, tol=0.0, rng=1)
    for c in range(5):
        assert np.allclose(C[c], X[lab == c].mean(axis=0), rtol=1e-12, atol=1e-12)
