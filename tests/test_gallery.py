"""Gallery matrices: shapes, symmetry, definiteness (dense eigenvalues on small
sizes), condition numbers, reproducibility, Matrix Market round trips and
errors on malformed files."""

import gzip

import numpy as np
import pytest
import scipy.sparse as sp

from krylovlab import gallery
from krylovlab.gallery import (
    anisotropic_diffusion,
    complex_hermitian,
    indefinite_symmetric,
    load_mtx,
    random_spd,
    save_mtx,
)


def _eig(a):
    return np.linalg.eigvalsh(a.toarray() if sp.issparse(a) else a)


def _is_canonical_csr(a):
    return sp.isspmatrix_csr(a) and a.has_sorted_indices and a.has_canonical_format


@pytest.mark.parametrize("theta", [0.0, np.pi / 6, np.pi / 4, 2.0])
@pytest.mark.parametrize("epsilon", [1.0, 0.01, 1e-4])
def test_anisotropic_is_spd(epsilon, theta):
    a = anisotropic_diffusion((9, 7), epsilon=epsilon, theta=theta)
    assert a.shape == (63, 63) and _is_canonical_csr(a)
    assert abs(a - a.T).max() <= 1e-14 * abs(a).max()
    ev = _eig(a)
    assert ev.min() > 0
    assert a.nnz <= 9 * 63


def test_anisotropic_matches_laplacian_when_isotropic():
    # epsilon = 1, theta = 0 is the 5-point Laplacian up to the stencil scaling
    a = anisotropic_diffusion(6, epsilon=1.0, theta=0.0).toarray()
    p = gallery.poisson((6, 6)).toarray()
    np.testing.assert_allclose(a / a[0, 0], p / p[0, 0], atol=1e-14)


def test_anisotropic_couplings_follow_epsilon_and_theta():
    # theta = 0: 5-point stencil, couplings 1 along one axis and epsilon along the other
    a = anisotropic_diffusion(6, epsilon=0.01, theta=0.0).toarray()
    i = 2 * 6 + 2  # an interior point
    c1, c2 = abs(a[i, i + 1]), abs(a[i, i + 6])
    np.testing.assert_allclose(min(c1, c2) / max(c1, c2), 0.01, rtol=1e-12)
    assert np.count_nonzero(a[i]) == 5
    # a rotated direction couples diagonal neighbours too (9-point stencil)
    b = anisotropic_diffusion(6, epsilon=0.01, theta=np.pi / 4).toarray()
    assert np.count_nonzero(b[i]) == 9


@pytest.mark.parametrize("bad", [dict(epsilon=0.0), dict(epsilon=-1.0), dict(epsilon=np.nan), dict(theta=np.inf)])
def test_anisotropic_rejects_bad_parameters(bad):
    with pytest.raises(ValueError):
        anisotropic_diffusion(5, **bad)
    with pytest.raises(ValueError):
        anisotropic_diffusion((5, 5, 5))


@pytest.mark.parametrize("cond", [1.0, 10.0, 1e6])
@pytest.mark.parametrize("density", [None, 0.05, 0.5])
def test_random_spd_condition_number(cond, density):
    n = 80
    a = random_spd(n, cond=cond, rng=7, density=density)
    if density is None:
        assert isinstance(a, np.ndarray)
    else:
        assert _is_canonical_csr(a)
        nnz_frac = a.nnz / n**2
        assert density * 0.5 <= nnz_frac <= min(1.0, density * 4), nnz_frac
    dense = a.toarray() if sp.issparse(a) else a
    np.testing.assert_array_equal(dense, dense.T)
    ev = _eig(a)
    assert ev.min() > 0
    np.testing.assert_allclose(ev.max(), 1.0, rtol=1e-10)
    np.testing.assert_allclose(ev.max() / ev.min(), cond, rtol=1e-8)
    # the 2-norm condition number as numpy computes it (from singular values)
    np.testing.assert_allclose(np.linalg.cond(dense), cond, rtol=1e-8)


def test_random_spd_is_reproducible_and_rng_dependent():
    a = random_spd(30, cond=50, rng=3, density=0.2)
    b = random_spd(30, cond=50, rng=np.random.default_rng(3), density=0.2)
    c = random_spd(30, cond=50, rng=4, density=0.2)
    assert (a != b).nnz == 0
    assert (a != c).nnz > 0
    np.testing.assert_array_equal(random_spd(10, 5, rng=1), random_spd(10, 5, rng=1))


def test_random_spd_dtype_and_errors():
    assert random_spd(5, 10, rng=0, dtype=np.float32).dtype == np.float32
    assert random_spd(1, 10, rng=0).shape == (1, 1)
    for kw in (dict(n=0), dict(n=5, cond=0.5), dict(n=5, cond=np.nan), dict(n=5, density=0.0),
               dict(n=5, density=1.5)):
        with pytest.raises(ValueError):
            random_spd(**{"cond": 10, **kw})
    with pytest.raises(TypeError):
        random_spd(5, 10, dtype=np.complex128)


@pytest.mark.parametrize("shape", [(20,), (7, 6), (4, 3, 3)])
def test_indefinite_symmetric(shape):
    a = indefinite_symmetric(shape)
    assert _is_canonical_csr(a)
    assert abs(a - a.T).max() == 0
    ev = _eig(a)
    neg = np.mean(ev < 0)
    assert 0.05 < neg < 0.5
    assert np.abs(ev).min() > 1e-6  # nonsingular


def test_indefinite_symmetric_shift_and_singular_shift():
    a = indefinite_symmetric((10,), shift=1.0)
    np.testing.assert_allclose(a.diagonal(), 1.0)
    lam = 2 - 2 * np.cos(np.pi / 11)  # smallest eigenvalue of the 1-D Laplacian
    with pytest.raises(ValueError, match="singular"):
        indefinite_symmetric((10,), shift=lam)
    with pytest.raises(ValueError):
        indefinite_symmetric((1,))


@pytest.mark.parametrize("flux", [0.0, 0.1, 0.37])
def test_complex_hermitian_is_hpd(flux):
    a = complex_hermitian((6, 5), flux=flux)
    assert a.dtype == np.complex128 and _is_canonical_csr(a)
    assert abs(a - a.conj().T).max() == 0
    assert _eig(a).min() > 0
    if flux:
        assert np.abs(a.data.imag).max() > 0


def test_complex_hermitian_shift_makes_it_indefinite():
    a = complex_hermitian((6, 6), flux=0.2, shift=3.0)
    ev = _eig(a)
    assert ev.min() < 0 < ev.max()
    assert complex_hermitian(4, dtype=np.complex64).dtype == np.complex64
    with pytest.raises(TypeError):
        complex_hermitian(4, dtype=np.float64)


# ----------------------------------------------------------------------- Matrix Market
@pytest.mark.parametrize(
    "matrix",
    [
        gallery.poisson((5, 4)),
        gallery.convection_diffusion((4, 4)),
        complex_hermitian((3, 4), flux=0.3),
        random_spd(12, cond=1e3, rng=1, density=0.3),
        sp.csr_matrix((3, 3)),
    ],
    ids=["poisson", "convdiff", "complex", "random_spd", "empty"],
)
def test_mtx_round_trip(tmp_path, matrix):
    path = tmp_path / "a.mtx"
    save_mtx(path, matrix, comment="krylovlab test")
    assert path.exists() and not list(tmp_path.glob(".tmp-*"))
    b = load_mtx(path)
    assert _is_canonical_csr(b) and b.shape == matrix.shape and b.dtype == matrix.dtype
    assert (b != matrix).nnz == 0  # exact: 17 significant digits


def test_mtx_dense_pattern_integer_and_gzip(tmp_path):
    dense = np.arange(6.0).reshape(2, 3)
    save_mtx(tmp_path / "d.mtx", dense)
    np.testing.assert_array_equal(load_mtx(tmp_path / "d.mtx").toarray(), dense)
    (tmp_path / "p.mtx").write_text("%%MatrixMarket matrix coordinate pattern general\n2 2 2\n1 1\n2 2\n")
    np.testing.assert_array_equal(load_mtx(tmp_path / "p.mtx").toarray(), np.eye(2))
    (tmp_path / "i.mtx").write_text("%%MatrixMarket matrix coordinate integer symmetric\n2 2 2\n1 1 4\n2 1 -1\n")
    a = load_mtx(tmp_path / "i.mtx")
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a.toarray(), [[4, -1], [-1, 0]])
    text = (tmp_path / "i.mtx").read_bytes()
    with gzip.open(tmp_path / "i.mtx.gz", "wb") as fh:
        fh.write(text)
    assert (load_mtx(tmp_path / "i.mtx.gz") != a).nnz == 0


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "first line"),
        ("hello world\n1 2 3\n", "first line"),
        ("import os; os.system('echo pwned')\n", "first line"),
        ("%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1 1.0\n", "not a valid"),
        ("%%MatrixMarket matrix coordinate real general\n2 2 1\n5 1 1.0\n", "not a valid"),
        ("%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 abc\n", "not a valid"),
        ("%%MatrixMarket matrix bogus real general\n2 2 1\n1 1 1.0\n", "not a valid"),
        ("%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 nan\n", "NaN or Inf"),
    ],
    ids=["empty", "text", "code", "short", "out-of-range", "non-numeric", "bad-format", "nan"],
)
def test_mtx_malformed_files_raise_valueerror(tmp_path, content, match):
    path = tmp_path / "bad.mtx"
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as info:
        load_mtx(path)
    assert "bad.mtx" in str(info.value)


def test_mtx_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mtx"):
        load_mtx(tmp_path / "nope.mtx")
    with pytest.raises(ValueError, match="directory"):
        load_mtx(tmp_path)


def test_mtx_header_claiming_huge_sizes_is_refused_before_allocation(tmp_path):
    huge = tmp_path / "huge.mtx"
    huge.write_text("%%MatrixMarket matrix array real general\n100000 100000\n1.0\n")
    with pytest.raises(ValueError, match="max_entries"):
        load_mtx(huge)
    lying = tmp_path / "lying.mtx"
    lying.write_text("%%MatrixMarket matrix coordinate real general\n50000 50000 90000000\n1 1 1.0\n")
    with pytest.raises(ValueError, match="bytes long"):
        load_mtx(lying)
    over = tmp_path / "over.mtx"
    over.write_text("%%MatrixMarket matrix coordinate real general\n2 2 5\n" + "1 1 1.0\n" * 5)
    with pytest.raises(ValueError, match="for a 2 x 2 matrix"):
        load_mtx(over)
    small = tmp_path / "small.mtx"
    save_mtx(small, gallery.poisson((3,)))
    with pytest.raises(ValueError, match="max_entries"):
        load_mtx(small, max_entries=2)
    assert load_mtx(small, max_entries=7).nnz == 7
