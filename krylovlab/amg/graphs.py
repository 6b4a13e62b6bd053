"""Seeded random graphs with planted clusters, for tests, benchmarks and docs.

Generated with numpy in O(edges) (networkx's SBM generator takes minutes at
10⁵ vertices), so 10⁶-vertex graphs take seconds.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["planted_partition", "attributed_planted_partition"]


def planted_partition(n: int, k: int, avg_in: float, avg_out: float, rng=None):
    """Undirected unweighted graph with k planted clusters.

    Every vertex gets a uniformly random cluster; about ``n·avg_in/2`` edges
    join random pairs inside a cluster and ``n·avg_out/2`` random pairs of
    different clusters, so the expected degree is about ``avg_in + avg_out``.
    Duplicate edges and self-loops are dropped.

    Returns
    -------
    W : csr_matrix (n, n)
        Symmetric 0/1 adjacency.
    labels : int array (n,)

    Examples
    --------
    >>> from krylovlab.amg.graphs import planted_partition
    >>> W, labels = planted_partition(1000, 4, 10, 2, rng=0)
    >>> W.shape, bool((W != W.T).nnz == 0)
    ((1000, 1000), True)
    """
    gen = np.random.default_rng(rng)
    if n < 2 or k < 1 or k > n or avg_in < 0 or avg_out < 0:
        raise ValueError("need n >= 2, 1 <= k <= n and non-negative average degrees")
    labels = gen.integers(0, k, n)
    order = np.argsort(labels, kind="stable")
    sizes = np.bincount(labels, minlength=k)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    m_in, m_out = int(n * avg_in / 2), int(n * avg_out / 2)
    u = gen.integers(0, n, m_in)
    lu = labels[u]
    v = order[starts[lu] + np.minimum((gen.random(m_in) * sizes[lu]).astype(np.int64), sizes[lu] - 1)]
    u2 = gen.integers(0, n, m_out)
    v2 = gen.integers(0, n, m_out)
    keep = labels[u2] != labels[v2]
    r = np.concatenate([u, u2[keep]])
    c = np.concatenate([v, v2[keep]])
    W = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(n, n))
    W = (W + W.T).tocsr()
    W.data[:] = 1.0
    W.setdiag(0)
    W.eliminate_zeros()
    return W, labels


def attributed_planted_partition(n: int, k: int, avg_in: float, avg_out: float, *, n_attributes: int = 2,
                                 n_values: int | None = None, agreement: float = 0.6, rng=None):
    """Planted partition plus categorical attributes correlated with the clusters.

    Each attribute takes ``n_values`` values (default k); a vertex's value
    equals its cluster (mod n_values) with probability ``agreement`` and is
    uniform otherwise.

    Returns
    -------
    W, labels, attributes : csr_matrix, int array (n,), int array (n, n_attributes)
    """
    gen = np.random.default_rng(rng)
    W, labels = planted_partition(n, k, avg_in, avg_out, gen)
    nv = k if n_values is None else int(n_values)
    attrs = np.empty((n, n_attributes), dtype=np.int64)
    for a in range(n_attributes):
        agree = gen.random(n) < agreement
        attrs[:, a] = np.where(agree, labels % nv, gen.integers(0, nv, n))
    return W, labels, attrs
