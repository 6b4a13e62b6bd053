"""Spectral clustering of (attributed) graphs with AMG-built embeddings.

Algorithm (D'Ambra, Vassilevski & Cutillo, "Extending bootstrap AMG for
clustering of attributed graphs", Appl. Math. Comput. 447, 2023; the
attribute augmentation is Cheng, Zhou & Yu's SA-Cluster, ACM TKDD 5, 2011):

1. *Graph.*  A symmetric, non-negative adjacency W (scipy sparse, dense, or
   a networkx graph).  Self-loops are dropped.  Vertices of degree 0 cannot
   be placed by a spectral method: they are left out and get label ``-1``.
   A graph whose remaining vertices form several connected components is
   rejected (cluster each component on its own).
2. *Attributes* (optional).  Each value of each categorical attribute
   becomes a new vertex, linked with weight ``attribute_weight`` to every
   vertex that has that value.
3. *Embedding* of the normalised Laplacian L = I − D^-½ W D^-½ (plus a
   small shift σ·I, σ = ``shift``, to make it definite), by one of
   ``"chebyshev"`` (the default) — the ``n_components`` largest eigenvectors of
   S = D^-½ W D^-½ (= lowest of L) by Chebyshev-filtered block subspace
   iteration (`chebyshev_subspace`) to a residual suited to clustering
   (``eigen_tol``, default 1e-2), on numba block products with S;
   ``"bootstrap-amg"`` — algebraically smooth vectors from bootstrap AMG with
   compatible matching (`krylovlab.amg.smooth`), starting from D^½·1, the
   normalised Laplacian's null vector, followed by a Rayleigh–Ritz step on
   their span; ``"lobpcg"`` — the ``n_components`` lowest eigenvectors by
   unpreconditioned LOBPCG (Knyazev 2001); ``"lobpcg-amg"`` — LOBPCG
   preconditioned by a plain-aggregation AMG V-cycle (`AMG`).
   Rows are scaled by D^-½ (random-walk embedding).
4. *k-means* (`kmeans`: numba Lloyd, greedy k-means++ seeding) with
   ``n_init`` seeded restarts; for attributed graphs each
   vertex is represented by its own row followed by the rows of its
   attribute vertices (the paper's block distance).  The restart with the
   largest modularity on the original graph is kept.

Monitored quantity: modularity of the partition on the original graph.
Memory: the embedding (n_aug × n_components), the smooth vectors
(n_aug × n_vectors) and their hierarchies.
"""

from __future__ import annotations

import numbers
import time

import numpy as np
import scipy.sparse as sp

from ..kernels.cpu import _amg as kamg

__all__ = ["spectral_clustering", "AMGSpectralClustering", "modularity", "augment_graph",
           "laplacian_embedding", "chebyshev_subspace", "kmeans"]

_EMBEDDINGS = ("chebyshev", "bootstrap-amg", "lobpcg", "lobpcg-amg")


# ------------------------------------------------------------------ graph input
def _as_adjacency(G) -> sp.csr_matrix:
    """Validated symmetric non-negative CSR adjacency without self-loops."""
    if type(G).__module__.startswith("networkx"):
        import networkx as nx

        W = nx.to_scipy_sparse_array(G, nodelist=list(G.nodes()), weight="weight", format="csr")
        W = sp.csr_matrix(W, dtype=np.float64)
    elif sp.issparse(G):
        W = sp.csr_matrix(G)
    elif isinstance(G, np.ndarray) or hasattr(G, "__array__"):
        arr = np.asarray(G)
        if arr.ndim != 2:
            raise ValueError(f"adjacency must be a 2-D matrix, got shape {arr.shape}")
        W = sp.csr_matrix(arr)
    else:
        raise TypeError(f"adjacency of type {type(G).__name__} is not supported: pass a scipy sparse "
                        "matrix, a dense array or a networkx graph")
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"adjacency must be square, got shape {W.shape}")
    if W.dtype.kind not in "fiub":
        raise TypeError(f"adjacency must have real weights, got dtype {W.dtype}")
    W = W.astype(np.float64)
    W.sum_duplicates()
    if W.nnz and not np.all(np.isfinite(W.data)):
        raise ValueError("adjacency contains NaN or Inf")
    if W.nnz and W.data.min() < 0:
        raise ValueError("adjacency has negative weights; spectral clustering needs non-negative weights")
    # drop self-loops and explicit zeros without CSR's slow structural setdiag
    if kamg.count_diagonal_or_zero(W.indptr, W.indices, W.data):
        rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
        keep = (rows != W.indices) & (W.data != 0)
        counts = np.bincount(rows[keep], minlength=W.shape[0])
        indptr = np.concatenate([[0], np.cumsum(counts)])
        W = sp.csr_matrix((W.data[keep], W.indices[keep], indptr), shape=W.shape)
    W.sort_indices()
    from ..kernels.cpu import use_parallel

    sym = kamg.csr_is_symmetric_parallel if use_parallel(W.shape[0]) else kamg.csr_is_symmetric_serial
    if not sym(W.indptr, W.indices, W.data, 1e-12):
        raise ValueError("adjacency must be symmetric (undirected graph); symmetrise it, e.g. (W + W.T) / 2")
    return W


def _as_attributes(attributes, n):
    """Integer codes (n, n_attr) for categorical attributes; -1 = missing."""
    if attributes is None:
        return None
    arr = np.asarray(attributes, dtype=object)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"attributes must have one row per vertex ({n}), got shape {arr.shape}")
    codes = np.empty(arr.shape, dtype=np.int64)
    for c in range(arr.shape[1]):
        col = arr[:, c]
        missing = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in col])
        vals = col[~missing]
        _, inv = np.unique(vals.astype(str), return_inverse=True) if vals.size else (None, np.empty(0, int))
        codes[:, c] = -1
        codes[~missing, c] = inv
    return codes


def augment_graph(W, codes, attribute_weight: float = 1.0):
    """Attribute-augmented adjacency.

    Parameters
    ----------
    W : sparse (n, n)
        Structural adjacency.
    codes : int array (n, n_attr)
        Category code of every vertex for every attribute (-1 = missing).
    attribute_weight : float
        Weight of a vertex–attribute edge.

    Returns
    -------
    W_aug : csr_matrix (n + n_values, n + n_values)
    attr_vertex : int array (n, n_attr)
        Index of the attribute vertex of each (vertex, attribute), -1 if missing.
    """
    n = W.shape[0]
    attr_vertex = -np.ones(codes.shape, dtype=np.int64)
    rows, cols = [], []
    nxt = n
    for c in range(codes.shape[1]):
        col = codes[:, c]
        has = col >= 0
        nvals = int(col.max()) + 1 if has.any() else 0
        attr_vertex[has, c] = nxt + col[has]
        rows.append(np.nonzero(has)[0])
        cols.append(attr_vertex[has, c])
        nxt += nvals
    r = np.concatenate(rows) if rows else np.empty(0, int)
    cc = np.concatenate(cols) if cols else np.empty(0, int)
    E = sp.csr_matrix((np.full(r.size, float(attribute_weight)), (r, cc)), shape=(nxt, nxt))
    Wbig = sp.block_diag([W, sp.csr_matrix((nxt - n, nxt - n))], format="csr")
    return (Wbig + E + E.T).tocsr(), attr_vertex


def modularity(W, labels) -> float:
    """Newman's modularity Q = Σ_c [w_in(c)/2m − (d_c/2m)²] of a partition.

    Vertices labelled -1 count as unassigned (each is its own community).
    """
    return _Modularity(W)(labels)


class _Modularity:
    """Modularity of many partitions of one symmetric graph, O(nnz) per partition (numba).

    k-means restarts often end in partitions that differ in a few vertices only; a
    partition is then scored from the first one scored (the reference) by revisiting
    only the edges of the vertices whose label differs after matching the clusters
    (a permutation found from the contingency table), O(n + changed edges).
    """

    def __init__(self, W):
        W = sp.csr_matrix(W)
        self.W = W
        self.deg = np.asarray(W.sum(axis=1)).ravel()
        self.two_m = float(self.deg.sum())
        self._ref = None  # (labels, inside) of the reference partition

    def _inside(self, lab):
        W = self.W
        ref = self._ref
        K = int(lab.max()) + 1 if lab.size else 0
        if ref is not None and K == ref[2] and lab.size:
            # match clusters: new label c ↦ the reference label it overlaps most
            cont = np.bincount(ref[0] * K + lab, minlength=K * K).reshape(K, K)
            perm = np.argmax(cont, axis=0)
            if np.unique(perm).size == K:
                mapped = perm[lab]
                is_changed = mapped != ref[0]
                changed = np.flatnonzero(is_changed)
                if changed.size <= lab.size // 8:
                    return ref[1] + kamg.modularity_inside_delta(W.indptr, W.indices, W.data, ref[0], mapped,
                                                                 changed, is_changed)
        inside = kamg.modularity_inside(W.indptr, W.indices, W.data, lab)
        if ref is None:
            self._ref = (lab.copy(), inside, K)
        return inside

    def __call__(self, labels) -> float:
        if self.two_m == 0:
            return 0.0
        lab = np.asarray(labels).astype(np.int64)
        neg = lab < 0
        if neg.any():  # unassigned vertices are singleton communities
            lab = lab.copy()
            lab[neg] = lab.max() + 1 + np.arange(neg.sum())
        inside = self._inside(lab)
        dc = np.bincount(lab, weights=self.deg)
        return float(inside / self.two_m - np.sum((dc / self.two_m) ** 2))


def kmeans(X, k, *, n_init=10, max_iter=300, tol=1e-4, rng=None, score=None):
    """k-means (Lloyd) with greedy k-means++ seeding and ``n_init`` seeded restarts (numba).

    Parameters
    ----------
    X : ndarray (n, d)
    k : int
    n_init : int
        Restarts.  Each seeds by k-means++ on a uniform sample of at most
        max(20 000, 200 k) rows (the D²-sampling needs no more to place k
        centres well), runs Lloyd on the sample, then Lloyd on all rows from
        there (so the stopping test below applies to the full data).  Without ``score`` the run of least inertia is kept; with it,
        the run of largest ``score(labels)`` (e.g. modularity).  A restart that
        ends at the inertia of an earlier one (relative difference < 1e-12, the
        same local minimum) is not scored again.
    max_iter : int
        Lloyd iterations per restart.
    tol : float
        Stop a restart when the squared centre shift is below ``tol`` times the
        mean per-feature variance of X (as scikit-learn's KMeans), or when no
        label changes.
    rng : None, int or Generator
    score : callable(labels) -> float, optional

    Returns
    -------
    labels : int64 array (n,), centres : (k, d), inertia : float, info : dict
        ``info`` has per-restart ``inertias``, ``iterations`` and ``scores``.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.amg.cluster import kmeans
    >>> X = np.r_[np.zeros((5, 2)), np.ones((5, 2))]
    >>> labels, C, inertia, _ = kmeans(X, 2, rng=0)
    >>> sorted(np.bincount(labels).tolist()), float(inertia)
    ([5, 5], 0.0)
    """
    from ..kernels.cpu import use_parallel

    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    gen = np.random.default_rng(rng)
    thr = float(tol) * float(np.mean(np.var(X, axis=0)))
    lloyd = kamg.lloyd_parallel if use_parallel(n) else kamg.lloyd_serial
    trials = 2 + int(np.log(k))
    # seeding looks at a uniform sample of at most max(20 000, 200 k) rows (Lloyd then runs on all)
    n_seed = min(n, max(20_000, 200 * k))
    labels = np.empty(n, dtype=np.int64)
    best = None
    info = dict(inertias=[], iterations=[], scores=[])
    for _ in range(int(n_init)):
        Xs = X if n_seed == n else X[np.sort(gen.choice(n, n_seed, replace=False))]
        first = int(gen.integers(n_seed))
        u = gen.random(max(k - 1, 0) * trials)
        C = kamg.kmeans_plusplus(Xs, k, first, u, trials)
        if n_seed < n:  # settle the centres on the sample first: fewer passes over all rows
            lloyd(Xs, C, labels[:n_seed], int(max_iter), thr)
        inertia, it = lloyd(X, C, labels, int(max_iter), thr)
        info["inertias"].append(inertia)
        info["iterations"].append(it)
        if score is None:
            s = -inertia
        else:
            s = None
            for ine, sc in zip(info["inertias"][:-1], info["scores"]):
                if abs(ine - inertia) <= 1e-12 * max(abs(inertia), 1e-300):
                    s = sc
                    break
            if s is None:
                s = float(score(labels))
        info["scores"].append(s)
        if best is None or s > best[0]:
            best = (s, labels.copy(), C.copy(), inertia)
    return best[1], best[2], best[3], info


# --------------------------------------------------------------------- embedding
def _normalised_adjacency(W):
    """S = D^-½ W D^-½ (stored entries scaled in one O(nnz) pass), the degrees and D^-½."""
    W = sp.csr_matrix(W)
    deg = np.asarray(W.sum(axis=1)).ravel()
    dis = 1.0 / np.sqrt(deg)
    S = sp.csr_matrix((kamg.scale_symmetric(W.indptr, W.indices, W.data, dis), W.indices, W.indptr),
                      shape=W.shape)
    return S, deg, dis


def _normalised_laplacian(W, shift):
    W = sp.csr_matrix(W)
    deg = np.asarray(W.sum(axis=1)).ravel()
    dis = 1.0 / np.sqrt(deg)
    # S = D^-½ W D^-½ by scaling the stored entries (no sparse products)
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    S = sp.csr_matrix((W.data * dis[rows] * dis[W.indices], W.indices, W.indptr), shape=W.shape)
    L = (sp.identity(W.shape[0], format="csr") * (1.0 + shift) - S).tocsr()
    L.sort_indices()
    return L, deg, dis


def _spmm(S, Y, Z, a=1.0, b=0.0, c=0.0):
    """Z ← a·S·Y + b·Y + c·Z (numba block kernel, threaded on large graphs)."""
    from ..kernels.cpu import use_parallel

    f = kamg.block_recurrence_parallel if use_parallel(Y.shape[0]) else kamg.block_recurrence_serial
    f(S.indptr, S.indices, S.data, Y, Z, float(a), float(b), float(c))
    return Z


def _orthonormaliser(Y):
    """m × m matrix M with Y·M orthonormal (n × m Y, m small): Cholesky QR of Y with its
    columns scaled to unit norm (the Chebyshev filter scales them very differently),
    done twice when Y is not well conditioned.  BLAS-3 throughout: Gram matrices and
    m × m triangles.  Returns None when Y is too ill-conditioned for Cholesky QR
    (estimated condition number above 1e6); the caller then uses Householder QR."""
    import scipy.linalg as sla

    m = Y.shape[1]
    try:
        G = Y.T @ Y
        d = np.sqrt(np.diag(G))
        R = np.linalg.cholesky(G / np.outer(d, d)).T  # upper: D⁻¹ G D⁻¹ = RᵀR
        rd = np.abs(np.diag(R))
        if not rd.min() > 1e-6 * rd.max():
            return None
        M = sla.solve_triangular(R, np.eye(m), lower=False) / d[:, None]
        if rd.min() < 1e-2 * rd.max():  # second pass: YM is orthonormal only to cond(Y)²·ε
            Q1 = Y @ M
            G2 = Q1.T @ Q1
            M = M @ sla.solve_triangular(np.linalg.cholesky(G2).T, np.eye(m), lower=False)
        return M
    except np.linalg.LinAlgError:
        return None


def _orthonormalise(Y, out=None):
    """Orthonormal basis of span(Y) (Cholesky QR, Householder QR as the fallback)."""
    import scipy.linalg as sla

    M = _orthonormaliser(Y)
    if M is None:
        Q = sla.qr(Y, mode="economic")[0]
        if out is None:
            return np.ascontiguousarray(Q)
        out[:] = Q
        return out
    return np.matmul(Y, M, out=out)


def _rayleigh_ritz(Q, SQ, tmp):
    """Ritz pairs of S on span(Q) (Q orthonormal, SQ = S Q), largest first; Q and SQ are
    rotated to the Ritz vectors in place (``tmp`` is a work block of the same shape)."""
    H = Q.T @ SQ
    theta, V = np.linalg.eigh((H + H.T) / 2)
    theta, V = theta[::-1], np.ascontiguousarray(V[:, ::-1])
    np.matmul(Q, V, out=tmp)
    Q[:] = tmp
    np.matmul(SQ, V, out=tmp)
    SQ[:] = tmp
    return theta


def chebyshev_subspace(S, k, *, w0=None, tol=1e-2, degree=8, first_degree=None, adaptive=True, oversample=None,
                       maxiter=30, rng=None):
    """Largest k eigenpairs of a symmetric S with spectrum in [−1, 1] by Chebyshev-filtered
    subspace iteration (Zhou & Saad, J. Comput. Phys. 219, 2006; Zhou, Saad, Tiago &
    Chelikowsky, J. Comput. Phys. 219, 2006).

    A block of ``m = k + oversample`` vectors is multiplied by the degree-``degree``
    Chebyshev polynomial of S that is bounded by 1 on [−1, c] and grows fast above c,
    where c is the smallest Ritz value of the block (an estimate of λ_m, the top of
    the spectrum we want to damp); the block is then orthonormalised (QR) and a
    Rayleigh–Ritz step gives new Ritz pairs.  Stops when the k leading Ritz vectors
    have residuals ‖S q − θ q‖ ≤ ``tol`` (S has norm ≤ 1, so this is relative), or
    after ``maxiter`` filter passes.  Cost per pass: ``degree + 1`` block products
    with S (`kernels.cpu._amg.block_recurrence_*`) and O(n m²) dense work.

    Parameters
    ----------
    S : csr_matrix (n, n)
        Symmetric, eigenvalues in [−1, 1] (e.g. D^-½ W D^-½).
    k : int
    w0 : ndarray (n,), optional
        A known eigenvector for the top eigenvalue (put in the starting block).
    tol, degree, oversample, maxiter : see above (oversample default max(3, k // 2)).
    first_degree : int, optional
        Degree of the first pass (default ``degree``).
    adaptive : bool
        After the first pass, lower the degree to what the Ritz values predict
        is enough to reach tol/4 (the rate per degree is 1/(t + √(t² − 1)) with
        t the slowest wanted Ritz value mapped to the damped interval [−1, 1]).
    rng : None, int or Generator

    Returns
    -------
    theta : ndarray (k,)  Ritz values, largest first.
    Q : ndarray (n, k)     orthonormal Ritz vectors.
    info : dict            ``passes``, ``matvecs`` (block products), ``residuals`` (of the
                           returned vectors), ``history`` (largest residual before each
                           pass), ``converged``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from krylovlab.amg.cluster import chebyshev_subspace
    >>> from krylovlab.amg.graphs import planted_partition
    >>> W, _ = planted_partition(2000, 3, 12, 2, rng=0)
    >>> d = np.asarray(W.sum(axis=1)).ravel()
    >>> S = sp.csr_matrix(sp.diags(d ** -0.5) @ W @ sp.diags(d ** -0.5))
    >>> theta, Q, info = chebyshev_subspace(S, 3, w0=np.sqrt(d), tol=1e-6, rng=0)
    >>> info["converged"], bool(abs(theta[0] - 1) < 1e-12), bool(theta[2] > 0.5)
    (True, True, True)
    """
    n = S.shape[0]
    p = max(3, k // 2) if oversample is None else int(oversample)
    m = min(n, k + p)
    gen = np.random.default_rng(rng)
    X = gen.standard_normal((n, m))
    if w0 is not None:
        X[:, 0] = w0
    Q = _orthonormalise(X)
    del X
    if m == n:  # tiny graph: dense eigensolver
        theta, V = np.linalg.eigh(S.toarray())
        return theta[::-1][:k], np.ascontiguousarray(V[:, ::-1][:, :k]), dict(
            passes=0, matvecs=0, residuals=np.zeros(k), converged=True)
    SQ = _spmm(S, Q, np.empty_like(Q))
    Y0, Y1 = np.empty_like(Q), np.empty_like(Q)
    theta = _rayleigh_ritz(Q, SQ, Y0)
    nmv, passes = 1, 0
    history = []
    lower = -1.0
    while True:
        R = np.multiply(Q[:, :k], theta[:k], out=Y0[:, :k])
        np.subtract(SQ[:, :k], R, out=R)
        res = np.sqrt(np.einsum("ij,ij->j", R, R))
        history.append(float(res.max()))
        if res.max() <= tol or passes >= maxiter:
            break
        cut = max(min(float(theta[m - 1]), float(theta[k - 1]) - 1e-8), lower + 1e-6)
        e, h = (cut + lower) / 2, (cut - lower) / 2
        # Chebyshev recurrence in x = (S − e)/h:  T0 = Q, T1 = x Q, T_{j+1} = 2 x T_j − T_{j−1}
        Y0[:] = Q
        np.multiply(Q, -e / h, out=Y1)
        Y1 += SQ * (1.0 / h)
        deg = degree if (passes or first_degree is None) else first_degree
        if passes and adaptive:
            # the residual of the slowest wanted Ritz vector shrinks about like
            # 1 / T_d(t_k), t_k = (θ_k − e)/h, i.e. by ρ = 1/(t_k + √(t_k² − 1)) per degree:
            # take just enough degree to land below tol/4 (at least 3, at most `degree`)
            t = (float(theta[k - 1]) - e) / h
            if t > 1.0:
                rho = 1.0 / (t + np.sqrt(t * t - 1.0))
                need = np.log(tol / 4 / res.max()) / np.log(rho)
                deg = int(min(degree, max(3, np.ceil(need))))
        for _ in range(2, deg + 1):
            _spmm(S, Y1, Y0, 2.0 / h, -2.0 * e / h, -1.0)  # Y0 ← T_{j+1}
            Y0, Y1 = Y1, Y0
            nmv += 1
        _orthonormalise(Y1, out=Q)
        _spmm(S, Q, SQ)
        nmv += 1
        theta = _rayleigh_ritz(Q, SQ, Y0)
        passes += 1
    return theta[:k].copy(), np.ascontiguousarray(Q[:, :k]), dict(
        passes=passes, matvecs=nmv, residuals=res, history=history, converged=bool(res.max() <= tol))


def laplacian_embedding(W, n_components, *, method="chebyshev", shift=1e-3, n_vectors=None,
                        relax_iters=5, tol=None, maxiter=None, rng=None):
    """Low-frequency embedding of the normalised Laplacian of a connected graph.

    Returns ``(U, info)`` with U of shape (n, n_components), rows scaled by
    D^-½, and ``info`` a dict (eigenvalue estimates, bootstrap factors …).
    See the module docstring for the methods.  ``tol``/``maxiter`` apply to
    the eigensolvers (defaults: 1e-2 / 30 passes for ``"chebyshev"``, 1e-4 /
    60 iterations for LOBPCG).
    """
    from threadpoolctl import threadpool_limits

    if np.any(np.asarray(W.sum(axis=1)).ravel() <= 0):
        raise ValueError("laplacian_embedding: the graph has vertices without edges (remove them first; "
                         "AMGSpectralClustering does this and labels them -1)")
    n = W.shape[0]
    k = min(n_components, n)
    gen = np.random.default_rng(rng)
    info = {"method": method}
    with threadpool_limits(1):
        if method == "chebyshev":
            S, deg, dis = _normalised_adjacency(W)
            theta, V, it = chebyshev_subspace(S, k, w0=np.sqrt(deg), tol=1e-2 if tol is None else tol,
                                              maxiter=30 if maxiter is None else maxiter, rng=gen)
            info.update(eigenvalues=1.0 - theta, **it)
            if not it["converged"]:
                import warnings

                warnings.warn(f"chebyshev embedding: residual {it['residuals'].max():.2e} after {it['passes']} passes "
                              f"is above the tolerance; the clustering may be poor (raise maxiter or eigen_tol)",
                              RuntimeWarning, stacklevel=3)
            return V * dis[:, None], info
        L, deg, dis = _normalised_laplacian(W, shift)
        w0 = np.sqrt(deg)
        if method == "bootstrap-amg":
            from .smooth import bootstrap_smooth_vectors

            m = n_vectors if n_vectors is not None else k + 2
            res = bootstrap_smooth_vectors(L, max(m, k), w0=w0, relax_iters=relax_iters, tol=0.0, rng=gen)
            Q = res.vectors
            # Rayleigh–Ritz on span(Q): H = Qᵀ L Q, keep the k lowest Ritz vectors
            H = Q.T @ (L @ Q)
            theta, Y = np.linalg.eigh((H + H.T) / 2)
            V = Q @ Y[:, :k]
            info.update(ritz_values=theta[:k] - shift, factors=res.factors,
                        levels=[h.levels for h in res.hierarchies])
        elif method in ("lobpcg", "lobpcg-amg"):
            from scipy.sparse.linalg import lobpcg

            X = gen.standard_normal((n, k))
            X[:, 0] = w0
            M = None
            if method == "lobpcg-amg":
                from .precond import AMG

                M = AMG(L, "sa", smooth=None, max_coarse=50).aspreconditioner()
            theta, V = lobpcg(L, X, M=M, tol=1e-4 if tol is None else tol,
                              maxiter=60 if maxiter is None else maxiter, largest=False)
            info.update(eigenvalues=np.asarray(theta) - shift)
        else:
            raise ValueError(f"embedding must be one of {', '.join(map(repr, _EMBEDDINGS))}, got {method!r}")
    return V * dis[:, None], info


# ----------------------------------------------------------------------- estimator
def _check_positive_int(name, v, allow_none=False):
    if allow_none and v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


class AMGSpectralClustering:
    """Spectral clustering of (attributed) graphs with AMG embeddings (scikit-learn style).

    Parameters
    ----------
    n_clusters : int
        Number of clusters.
    embedding : {"chebyshev", "bootstrap-amg", "lobpcg", "lobpcg-amg"}
        How the low-frequency embedding is computed (module docstring).
        ``"chebyshev"`` is the default: on the planted-partition graphs of
        ``bench/clustering.py`` it reached the NMI of exact eigenvectors with
        17-25 block products with S, and was the fastest of the four (its
        embedding about 3x faster than scipy's LOBPCG at 10⁵ vertices).
        Expander-like graphs (random block models, social networks) have a
        large spectral gap, which a polynomial filter exploits directly,
        while their coarse levels fill in, so multigrid does not pay there.
        Use ``"bootstrap-amg"`` (D'Ambra et al.) for mesh-like graphs or to
        follow the paper.
    n_components : int, optional
        Embedding dimension (default ``n_clusters``).
    n_vectors : int, optional
        Bootstrap vector budget (default ``n_components + 2``).
    relax_iters : int
        Composite-solver iterations per bootstrap vector.  The paper's code
        uses 15; on the planted-partition graphs of ``bench/clustering.py``
        2 to 15 gave the same NMI, so the default is 5 (cost is linear in it).
    attribute_weight : float
        Weight of vertex–attribute edges in the augmented graph.
    shift : float
        σ in L + σI (``"bootstrap-amg"``, ``"lobpcg"``, ``"lobpcg-amg"``).
    eigen_tol : float, optional
        Residual tolerance of the eigensolver.  Default 1e-2 for
        ``"chebyshev"`` (‖S q − θ q‖ ≤ 1e-2 for each of the ``n_components``
        Ritz vectors: by Davis–Kahan the subspace angle is at most
        eigen_tol / gap, a few degrees for a spectral gap of 0.1-0.3, which
        k-means does not notice; on the benchmark graphs NMI was the same as
        with 1e-5), 1e-4 for LOBPCG.  ``info_["converged"]`` says whether it
        was reached.
    n_init : int
        k-means restarts; the partition of best modularity is kept.
    random_state : None, int or numpy.random.Generator
        Seed for the bootstrap vectors, LOBPCG start and k-means.

    Attributes
    ----------
    labels_ : int array (n,)
        Cluster of each vertex (-1 for isolated vertices).
    embedding_ : array (n, n_components)
        Embedding of the original vertices (rows of isolated vertices are 0).
    modularity_ : float
        Modularity of ``labels_`` on the structural graph.
    embedding_time_, total_time_ : float
        Seconds spent in the embedding and in ``fit``.
    info_ : dict
        Method details (Ritz values or eigenvalues, bootstrap factors; for
        ``"chebyshev"``: ``passes``, ``matvecs``, ``residuals``,
        ``converged``; ``kmeans_iterations``).

    Examples
    --------
    >>> import networkx as nx
    >>> from krylovlab.amg import AMGSpectralClustering
    >>> G = nx.karate_club_graph()
    >>> est = AMGSpectralClustering(2, random_state=0).fit(G)
    >>> est.labels_.shape, est.modularity_ > 0.3
    ((34,), True)
    """

    def __init__(self, n_clusters=8, *, embedding="chebyshev", n_components=None, n_vectors=None,
                 relax_iters=5, attribute_weight=1.0, shift=1e-3, eigen_tol=None, n_init=10, random_state=None):
        self.n_clusters = n_clusters
        self.embedding = embedding
        self.eigen_tol = eigen_tol
        self.n_components = n_components
        self.n_vectors = n_vectors
        self.relax_iters = relax_iters
        self.attribute_weight = attribute_weight
        self.shift = shift
        self.n_init = n_init
        self.random_state = random_state

    def _validate(self, n):
        k = _check_positive_int("n_clusters", self.n_clusters)
        if self.embedding not in _EMBEDDINGS:
            raise ValueError(f"embedding must be one of {', '.join(map(repr, _EMBEDDINGS))}, "
                             f"got {self.embedding!r}")
        nc = _check_positive_int("n_components", self.n_components, allow_none=True) or k
        _check_positive_int("n_vectors", self.n_vectors, allow_none=True)
        _check_positive_int("relax_iters", self.relax_iters)
        _check_positive_int("n_init", self.n_init)
        if not (isinstance(self.attribute_weight, numbers.Real) and self.attribute_weight > 0):
            raise ValueError(f"attribute_weight must be positive, got {self.attribute_weight!r}")
        if not (isinstance(self.shift, numbers.Real) and self.shift > 0):
            raise ValueError(f"shift must be positive, got {self.shift!r}")
        if self.eigen_tol is not None and not (isinstance(self.eigen_tol, numbers.Real) and self.eigen_tol > 0):
            raise ValueError(f"eigen_tol must be positive or None, got {self.eigen_tol!r}")
        if k > n:
            raise ValueError(f"n_clusters={k} exceeds the number of vertices with edges ({n})")
        return k, nc

    def fit(self, X, y=None, attributes=None):
        """Cluster the graph X (adjacency or networkx graph); ``attributes`` optional (n, n_attr)."""
        t0 = time.perf_counter()
        W = _as_adjacency(X)
        n = W.shape[0]
        codes = _as_attributes(attributes, n)
        deg = np.asarray(W.sum(axis=1)).ravel()
        active = deg > 0
        if codes is not None:
            active |= (codes >= 0).any(axis=1)
        idx = np.nonzero(active)[0]
        k, nc = self._validate(idx.size)
        if idx.size == n:
            Wa = W
        else:  # drop vertices without edges: their rows are empty and no column refers to them
            remap = np.cumsum(active) - 1
            Wa = sp.csr_matrix((W.data, remap[W.indices].astype(W.indices.dtype), W.indptr[np.r_[0, idx + 1]]),
                               shape=(idx.size, idx.size))
        if codes is not None:
            Wg, attr_vertex = augment_graph(Wa, codes[idx], self.attribute_weight)
        else:
            Wg, attr_vertex = Wa, None
        ncomp, comp = kamg.connected_components(Wg.indptr, Wg.indices)
        if ncomp > 1:
            sizes = np.bincount(comp)
            raise ValueError(f"the graph has {ncomp} connected components (sizes {sorted(sizes)[::-1][:5]}...); "
                             "spectral clustering needs a connected graph: cluster each component "
                             "separately (scipy.sparse.csgraph.connected_components)")
        gen = np.random.default_rng(self.random_state)
        t1 = time.perf_counter()
        U, info = laplacian_embedding(Wg, nc, method=self.embedding, shift=self.shift,
                                      n_vectors=self.n_vectors, relax_iters=self.relax_iters, tol=self.eigen_tol,
                                      rng=gen)
        self.embedding_time_ = time.perf_counter() - t1
        m = idx.size
        feats = U[:m]
        if attr_vertex is not None:
            blocks = [feats]
            for c in range(attr_vertex.shape[1]):
                av = attr_vertex[:, c]
                blk = np.zeros_like(feats)
                blk[av >= 0] = U[av[av >= 0]]
                blocks.append(blk)
            feats = np.hstack(blocks)
        # k-means restarts, keep the best modularity on the structural graph
        best, _, _, km = kmeans(feats, k, n_init=self.n_init, rng=gen, score=_Modularity(Wa))
        info["kmeans_iterations"] = km["iterations"]
        labels = -np.ones(n, dtype=np.int64)
        labels[idx] = best
        emb = np.zeros((n, U.shape[1]))
        emb[idx] = U[:m]
        self.labels_ = labels
        self.embedding_ = emb
        self.modularity_ = modularity(W, labels)
        self.info_ = info
        self.n_isolated_ = int(n - m)
        self.total_time_ = time.perf_counter() - t0
        return self

    def fit_predict(self, X, y=None, attributes=None):
        """`fit` and return ``labels_``."""
        return self.fit(X, attributes=attributes).labels_

    def get_params(self, deep=True):
        return {k: getattr(self, k) for k in ("n_clusters", "embedding", "n_components", "n_vectors",
                                              "relax_iters", "attribute_weight", "shift", "eigen_tol", "n_init",
                                              "random_state")}

    def set_params(self, **params):
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"invalid parameter {k!r}; valid: {', '.join(valid)}")
            setattr(self, k, v)
        return self

    def __repr__(self):
        return f"AMGSpectralClustering(n_clusters={self.n_clusters}, embedding={self.embedding!r})"


def spectral_clustering(adjacency, n_clusters=8, *, attributes=None, embedding="chebyshev",
                        n_init=10, random_state=None, **options):
    """Cluster a graph; return the labels (-1 for isolated vertices).

    A function form of `AMGSpectralClustering` (``**options`` are its other
    parameters).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from krylovlab.amg import spectral_clustering
    >>> B = sp.block_diag([np.ones((10, 10))] * 3).tolil()
    >>> B[0, 10] = B[10, 0] = B[10, 20] = B[20, 10] = 1
    >>> labels = spectral_clustering(B.tocsr(), 3, random_state=0)
    >>> len(set(labels[:10])), len(set(labels))
    (1, 3)
    """
    est = AMGSpectralClustering(n_clusters, embedding=embedding, n_init=n_init, random_state=random_state,
                                **options)
    return est.fit_predict(adjacency, attributes=attributes)
