"""Bootstrap smooth vectors and AMG spectral clustering on small graphs."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from krylovlab.amg import AMGSpectralClustering, bootstrap_smooth_vectors, modularity, spectral_clustering
from krylovlab.amg.cluster import augment_graph
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
@pytest.mark.parametrize("embedding", ["bootstrap-amg", "lobpcg", "lobpcg-amg"])
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


@pytest.mark.parametrize("embedding", ["bootstrap-amg", "lobpcg"])
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
