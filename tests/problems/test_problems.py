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
