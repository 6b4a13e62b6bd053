"""PDE families: discretisation accuracy, matrix properties, reproducibility, bad input."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from krylovlab.problems import FAMILIES, Darcy, Heat, Helmholtz, Poisson, get_family
from krylovlab.problems._fd import diffusion, interior_coordinates, node_coordinates


def _manufactured_error(n, dim):
    """Max-norm error of −∇·(a∇u) = f for u = Π sin(πx_d), a = 1 + Σ x_d²."""
    shape = (n,) * dim
    nodes = node_coordinates(shape)
    a = 1.0 + sum(c**2 for c in nodes)
    x = interior_coordinates(shape)
    u = np.prod([np.sin(np.pi * c) for c in x], axis=0)
    aa = 1.0 + sum(c**2 for c in x)
    # −∇·(a∇u) = −a Δu − ∇a·∇u, Δu = −dπ² u, ∂_d a = 2x_d
    grad_dot = 0.0
    for d in range(dim):
        others = np.prod([np.sin(np.pi * c) for k, c in enumerate(x) if k != d], axis=0)
        grad_dot = grad_dot + 2 * x[d] * np.pi * np.cos(np.pi * x[d]) * others
    f = dim * np.pi**2 * aa * u - grad_dot
    A = diffusion(a)
    uh = spla.spsolve(A.tocsc(), f.ravel())
    return np.abs(uh - u.ravel()).max()


@pytest.mark.parametrize("dim, sizes", [(2, (15, 31, 63)), (3, (7, 15))])
def test_diffusion_is_second_order(dim, sizes):
    errors = [_manufactured_error(n, dim) for n in sizes]
    rates = [np.log2(e0 / e1) for e0, e1 in zip(errors, errors[1:])]
    assert all(1.8 < r < 2.3 for r in rates), (errors, rates)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("field", ["lognormal", "two-phase"])
def test_darcy_is_spd(dim, field):
    fam = Darcy(grid=6, dim=dim, field=field)
    A, b = fam.assemble(fam.sample(3))
    dense = A.toarray()
    np.testing.assert_array_equal(dense, dense.T)
    assert np.linalg.eigvalsh(dense).min() > 0
    assert np.all(b == 1.0)


def test_two_phase_values():
    fam = Darcy(grid=8, field="two-phase")
    a = fam.sample(0)["a"]
    assert set(np.unique(a)) == {3.0, 12.0}


def test_helmholtz_is_indefinite_and_absorbing_is_complex_symmetric():
    fam = Helmholtz(grid=12, k_range=(12.0, 12.0))
    A, _ = fam.assemble(fam.sample(0))
    ev = np.linalg.eigvalsh(A.toarray())
    assert ev.min() < 0 < ev.max()
    fam = Helmholtz(grid=12, boundary="absorbing")
    A, b = fam.assemble(fam.sample(0))
    assert A.dtype == np.complex128 and b.dtype == np.complex128
    dense = A.toarray()
    np.testing.assert_allclose(dense, dense.T)
    assert np.abs(dense - dense.conj().T).max() > 0  # not Hermitian
    # impedance loss makes A nonsingular: a direct solve is finite
    assert np.all(np.isfinite(spla.spsolve(A.tocsc(), b)))


def test_heat_step_matches_theta_scheme():
    fam = Heat(grid=6, scheme="crank-nicolson", dt=0.01)
    p = fam.sample(1)
    A, b = fam.assemble(p)
    K = diffusion(p["kappa"]).toarray()
    eye = np.eye(K.shape[0])
    np.testing.assert_allclose(A.toarray(), eye + 0.005 * K)
    np.testing.assert_allclose(b, (eye - 0.005 * K) @ p["u_prev"].ravel())
    steps = list(fam.time_sequence(p, 3))
    assert len(steps) == 3 and steps[0][0].shape == A.shape
    u = steps[0][1](p["u_prev"])
    assert u.shape == (fam.n,)


def test_poisson_matrix_is_shared_and_rhs_varies():
    fam = Poisson(grid=8)
    (A1, b1), (A2, b2) = fam.assemble(fam.sample(0)), fam.assemble(fam.sample(1))
    assert A1 is A2 and not np.allclose(b1, b2)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_sampling_is_reproducible_and_features_are_finite(name):
    fam = get_family(name, grid=8)
    p1, p2, p3 = fam.sample(42), fam.sample(42), fam.sample(43)
    f1, f2, f3 = fam.features(p1), fam.features(p2), fam.features(p3)
    np.testing.assert_array_equal(f1, f2)
    assert f1.ndim == 1 and np.all(np.isfinite(f1)) and not np.array_equal(f1, f3)
    A, b = fam.assemble(p1)
    assert A.shape == (fam.n, fam.n) and b.shape == (fam.n,)
    assert A.format == "csr" and A.has_sorted_indices


@pytest.mark.parametrize("kwargs, match", [
    ({"grid": 2}, "at least 4"),
    ({"grid": (8, 8, 8, 8)}, "2-D or 3-D"),
    ({"grid": "big"}, "grid must be"),
    ({"grid": 8, "dim": 4}, "dim must be"),
])
def test_bad_grid(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Darcy(**kwargs)


def test_unknown_family_lists_choices():
    with pytest.raises(ValueError, match="darcy"):
        get_family("navier-stokes")


def test_diffusion_rejects_nonpositive_coefficient():
    a = np.ones((6, 6))
    a[2, 3] = 0.0
    with pytest.raises(ValueError, match="positive"):
        diffusion(a)


def _diffusion_reference(a):
    """−∇·(a∇u) assembled entry by entry (COO), the definition the fast assembly must match."""
    import scipy.sparse as sp

    shape = tuple(s - 2 for s in a.shape)
    dim, N = len(shape), int(np.prod(shape))
    rows, cols, vals = [], [], []
    for p in range(N):
        idx = np.unravel_index(p, shape)
        node = tuple(i + 1 for i in idx)
        diag = 0.0
        for axis in range(dim):
            h2 = (1.0 / (shape[axis] + 1)) ** 2
            for step in (-1, 1):
                nb = list(node)
                nb[axis] += step
                lo, hi = a[node], a[tuple(nb)]
                face = 2.0 * lo * hi / (lo + hi) / h2
                diag += face
                q = list(idx)
                q[axis] += step
                if 0 <= q[axis] < shape[axis]:
                    rows.append(p)
                    cols.append(np.ravel_multi_index(q, shape))
                    vals.append(-face)
        rows.append(p)
        cols.append(p)
        vals.append(diag)
    return sp.csr_matrix((vals, (rows, cols)), shape=(N, N))


@pytest.mark.parametrize("shape", [(4, 6), (5, 4, 6)])
def test_fast_assembly_matches_entrywise_reference(shape):
    a = np.exp(np.random.default_rng(7).standard_normal(tuple(s + 2 for s in shape)))
    A = diffusion(a)
    ref = _diffusion_reference(a)
    assert A.has_sorted_indices and A.format == "csr"
    np.testing.assert_allclose(A.toarray(), ref.toarray(), rtol=1e-13, atol=0)
    # two samples share the pattern but not the arrays (callers may modify theirs)
    B = diffusion(a * 2.0)
    np.testing.assert_array_equal(A.indices, B.indices)
    assert A.indices is not B.indices and A.indptr is not B.indptr
    np.testing.assert_allclose(B.data, 2.0 * A.data, rtol=1e-13)


@pytest.mark.parametrize("shape", [(16, 16), (9, 11), (8, 8, 6)])
def test_grf_variance_matches_the_spectrum(shape):
    """Point variance of the field equals Σ_k std_k² of the full complex spectrum (the FNO convention)."""
    from krylovlab.problems._grf import gaussian_random_field

    dim, alpha, tau = len(shape), 2.5, 7.0
    sigma = tau ** (alpha - dim / 2)
    k2 = sum(np.fft.fftfreq(n, d=1.0 / n).reshape([-1 if a == ax else 1 for a in range(dim)]) ** 2
             for ax, n in enumerate(shape))
    std = np.sqrt(2.0) * sigma * (4 * np.pi**2 * k2 + tau**2) ** (-alpha / 2)
    std.flat[0] = 0.0
    expected = float(np.sum(std**2))
    fields = np.stack([gaussian_random_field(shape, i) for i in range(400)])
    assert fields.shape[1:] == shape
    np.testing.assert_allclose(fields.mean(axis=tuple(range(1, dim + 1))), 0.0, atol=1e-12)
    assert abs(fields.var() / expected - 1) < 0.08, (fields.var(), expected)
