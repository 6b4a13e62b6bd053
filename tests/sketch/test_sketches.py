"""Sketch operators: definitions, isometry on random subspaces, reproducibility, kernels."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.linalg import hadamard

from krylovlab.kernels import cpu
from krylovlab.kernels.cpu import _sketch as K
from krylovlab.sketch import SRHT, CountSketch, GaussianSketch, SparseSign, make_sketch

KINDS = ["gaussian", "srht", "countsketch", "sparse-sign"]


def _embedding_distortion(S, U):
    """Largest |σ − 1| of S U for U with orthonormal columns."""
    sv = np.linalg.svd(S @ U, compute_uv=False)
    return float(np.max(np.abs(sv - 1.0)))


@pytest.mark.parametrize("kind", KINDS)
def test_approximate_isometry_on_random_subspace(kind):
    rng = np.random.default_rng(0)
    m, n = 2000, 12
    d = 16 * n
    U, _ = np.linalg.qr(rng.standard_normal((m, n)))
    dist = [_embedding_distortion(make_sketch(kind, d, m, rng=seed), U) for seed in range(5)]
    # theory: ε ≈ √(n/d) = 0.25 up to constants; all five draws must embed
    assert max(dist) < 0.6, dist
    # and E‖S x‖² = ‖x‖²: the average squared norm over draws is close to 1
    x = U[:, 0]
    sq = [np.linalg.norm(make_sketch(kind, d, m, rng=100 + s) @ x) ** 2 for s in range(24)]
    assert abs(np.mean(sq) - 1.0) < 0.2


@pytest.mark.parametrize("cls", [CountSketch, SparseSign])
def test_sparse_input_equals_dense_definition(cls):
    A = sp.random(700, 30, density=0.05, format="csr", random_state=3)
    S = cls(90, 700, rng=7)
    Sd = S.tosparse().toarray()
    # columns have exactly s nonzeros of magnitude 1/√s, in distinct rows
    nnz = (Sd != 0).sum(axis=0)
    assert np.all(nnz == S.nnz_per_col)
    assert np.allclose(np.abs(Sd[Sd != 0]), 1 / np.sqrt(S.nnz_per_col))
    ref = Sd @ A.toarray()
    assert np.allclose(S @ A, ref, atol=1e-13)  # CSR kernel
    assert np.allclose(S @ A.toarray(), ref, atol=1e-13)  # dense kernel
    assert np.allclose(S @ A.tocsc(), ref, atol=1e-13)  # other sparse formats
    b = np.arange(700.0)
    assert np.allclose(S @ b, Sd @ b)


def test_countsketch_matches_scipy_definition():
    S = CountSketch(50, 400, rng=1)
    Sd = S.todense()
    assert np.all((Sd != 0).sum(axis=0) == 1)
    assert set(np.unique(Sd)) <= {-1.0, 0.0, 1.0}


@pytest.mark.parametrize("kind", KINDS)
def test_reproducible_with_seed_and_consistent_between_inputs(kind):
    rng = np.random.default_rng(5)
    A = rng.standard_normal((300, 7))
    S1, S2, S3 = (make_sketch(kind, 40, 300, rng=s) for s in (11, 11, 12))
    assert np.array_equal(S1 @ A, S2 @ A)
    assert not np.allclose(S1 @ A, S3 @ A)
    # the operator is linear and the same for matrices, vectors and sparse input
    assert np.allclose(S1 @ A[:, 2], (S1 @ A)[:, 2])
    assert np.allclose(S1 @ sp.csr_matrix(A), S1 @ A)
    assert np.allclose(S1.todense() @ A, S1 @ A)
    # a Generator is accepted and advanced
    g = np.random.default_rng(0)
    assert not np.allclose(make_sketch(kind, 40, 300, rng=g) @ A, make_sketch(kind, 40, 300, rng=g) @ A)


def test_gaussian_blocks_cover_long_inputs():
    S = GaussianSketch(8, 5000, rng=2)  # more than one generated block of columns
    D = S.todense()
    assert D.shape == (8, 5000)
    assert abs(D.std() * np.sqrt(8) - 1) < 0.05
    A = sp.random(5000, 6, density=0.1, random_state=1, format="csr")
    assert np.allclose(S @ A, D @ A.toarray())


@pytest.mark.parametrize("transform", ["dct", "hadamard"])
def test_srht_definition(transform):
    m, d = 300, 50
    S = SRHT(d, m, transform=transform, rng=4)
    D = S.todense()
    if transform == "dct":
        # rows of a scaled sample of an orthogonal transform: orthogonal, squared norm m/d
        assert np.allclose(D @ D.T, np.eye(d) * m / d, atol=1e-10)
    else:
        # columns come from a padded 2^k Hadamard matrix: entries ±√(1/d)
        assert np.allclose(np.abs(D), 1 / np.sqrt(d))
    A = sp.random(m, 9, density=0.2, random_state=0, format="csr")
    assert np.allclose(S @ A, D @ A.toarray())


def test_fwht_kernel_against_hadamard_matrix():
    X = np.random.default_rng(0).standard_normal((128, 150))
    for f in (K.fwht_rows_serial, K.fwht_rows_parallel):
        Y = X.copy()
        f(Y)
        assert np.allclose(Y, hadamard(128) @ X)
    with pytest.raises(ValueError, match="power-of-two"):
        cpu.fwht_rows(np.zeros((6, 2)))


def test_kernel_variants_agree():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((500, 140))
    As = sp.random(500, 140, density=0.05, random_state=2, format="csr")
    rows = rng.integers(0, 60, size=(500, 3))
    signs = rng.choice([-1.0, 1.0], size=(500, 3))
    ref = np.zeros((60, 500))
    for i in range(500):
        for t in range(3):
            ref[rows[i, t], i] += signs[i, t]
    for f in (K.sparse_sign_dense_serial, K.sparse_sign_dense_parallel):
        out = np.zeros((60, 140))
        f(A, rows, signs, out)
        assert np.allclose(out, ref @ A)
    for f in (K.sparse_sign_csr_serial, K.sparse_sign_csr_parallel):
        out = np.zeros((60, 140))
        f(As.indptr, As.indices, As.data, rows, signs, out)
        assert np.allclose(out, ref @ As.toarray())
    w, b = rng.standard_normal(140), rng.standard_normal(500)
    q, t = np.empty(500), np.empty(140)
    for f in (K.normal_dense_serial, K.normal_dense_parallel):
        f(A, w, b, True, q, t)
        assert np.allclose(q, b - A @ w) and np.allclose(t, A.T @ (b - A @ w))
    for f in (K.normal_csr_serial, K.normal_csr_parallel):
        f(As.indptr, As.indices, As.data, w, b, False, q, t)
        assert np.allclose(q, As @ w) and np.allclose(t, As.T @ (As @ w))


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 7, 9, 13])
@pytest.mark.parametrize("residual", [False, True])
def test_normal_dense_row_blocking_remainders(m, residual):
    """The fused pass works on four rows at a time; every remainder (m mod 4, per thread chunk) must agree."""
    rng = np.random.default_rng(m)
    A = rng.standard_normal((m, 11))
    w, b = rng.standard_normal(11), rng.standard_normal(m)
    ref_q = b - A @ w if residual else A @ w
    for f in (K.normal_dense_serial, K.normal_dense_parallel):
        q, t = np.full(m, np.nan), np.full(11, np.nan)
        f(A, w, b, residual, q, t)
        np.testing.assert_allclose(q, ref_q, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(t, A.T @ ref_q, rtol=1e-13, atol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown sketch"):
        make_sketch("fourier", 4, 10)
    with pytest.raises(ValueError, match="positive integer"):
        CountSketch(0, 10)
    with pytest.raises(ValueError, match="nnz_per_col"):
        SparseSign(5, 10, nnz_per_col=0)
    with pytest.raises(TypeError, match="rng"):
        CountSketch(5, 10, rng="seed")
    with pytest.raises(ValueError, match="columns"):
        CountSketch(5, 10) @ np.ones((11, 2))
    with pytest.raises(ValueError, match="transform"):
        SRHT(5, 10, transform="fft")


@pytest.mark.gpu
def test_gpu_sketches_match_cpu():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception:
        pytest.skip("no CUDA device")
    A = np.random.default_rng(0).standard_normal((256, 5))
    for kind in KINDS:
        S = make_sketch(kind, 32, 256, rng=1)
        assert np.allclose(cupy.asnumpy(S @ cupy.asarray(A)), S @ A)
    S = SRHT(32, 256, transform="hadamard", rng=1)
    assert np.allclose(cupy.asnumpy(S @ cupy.asarray(A)), S @ A)


@pytest.mark.parametrize("name", ["countsketch", "sparse-sign"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_sparse_sketch_on_large_dense_equals_definition(name, order):
    """Row-gather (C order, threaded above the size threshold) and column-stripe (F order) paths."""
    from krylovlab.sketch.sketches import make_sketch

    rng = np.random.default_rng(5)
    A = np.asarray(rng.standard_normal((3000, 200)), order=order)  # 600 000 entries: threaded kernels
    S = make_sketch(name, 500, 3000, rng=2)
    ref = S.tosparse() @ np.ascontiguousarray(A)
    np.testing.assert_allclose(S @ A, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(S @ A[:, 3].copy(), ref[:, 3], rtol=1e-12, atol=1e-12)
