"""Shared test fixtures: the case list built from `krylovlab.gallery`.

Every case is a small linear system with a known solution ``x_true``
(``b = A @ x_true``) and a set of tags saying what kind of system it is, so
generic tests can pick the solvers that apply:

=================  ==========================================================
tag                meaning
=================  ==========================================================
``spd``            Hermitian positive definite (CG applies)
``hermitian``      Hermitian, possibly indefinite (MINRES applies)
``nonsymmetric``   only general methods apply (GMRES, BiCGSTAB, ...)
``float32``        single precision: use rtol ≥ 1e-4
``complex``        complex dtype
``hard``           near-singular: a method may honestly fail, never lie
``zero_rhs``       b = 0
``breakdown``      built so that short-recurrence methods break down
=================  ==========================================================

Family folders have their own conftest files; this one stays generic.
Fixtures: ``case`` (parametrised over every case), ``case_by_name`` and
``method_applies`` (functions), ``residual`` (an independent ‖b − A x‖), and
``classic_method``, parametrised over the ``krylov.`` entries of the method
registry (entries whose module does not exist yet are skipped with a reason).
"""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest
import scipy.sparse as sp

from krylovlab import gallery


@dataclasses.dataclass
class Case:
    name: str
    A: object
    b: np.ndarray
    x_true: np.ndarray
    tags: frozenset

    @property
    def n(self) -> int:
        return self.A.shape[0]

    @property
    def dtype(self):
        return np.result_type(self.A.dtype, self.b.dtype)

    @property
    def rtol(self) -> float:
        """A tolerance every applicable method should reach on this case."""
        return 1e-4 if "float32" in self.tags else 1e-8

    def dense(self) -> np.ndarray:
        return self.A.toarray() if sp.issparse(self.A) else np.asarray(self.A)


def _with_solution(name, A, tags, seed):
    rng = np.random.default_rng(seed)
    dtype = A.dtype
    x = rng.standard_normal(A.shape[0])
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(A.shape[0])
    x = x.astype(dtype)
    b = np.asarray(A @ x).astype(dtype)
    return Case(name, A, b, x, frozenset(tags))


def _breakdown_case():
    # A = [[0, 1], [1, 0]] ⊗ I (symmetric, indefinite, nonsingular) with b = e_1:
    # bᴴAb = 0, so CG meets zero curvature at its first step and BiCG/CGS a zero inner product.
    m = 8
    A = sp.kron(sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]])), sp.identity(m), format="csr")
    b = np.zeros(2 * m)
    b[0] = 1.0
    x = np.zeros(2 * m)
    x[m] = 1.0
    return Case("breakdown-f64", A, b, x, frozenset({"hermitian", "breakdown"}))


def _build_cases() -> dict[str, Case]:
    cases = []
    for dim, shape in ((1, (40,)), (2, (10, 10)), (3, (5, 5, 5))):
        A = gallery.poisson(shape)
        cases.append(_with_solution(f"poisson{dim}d-f64", A, {"spd", "hermitian"}, dim))
        cases.append(_with_solution(f"poisson{dim}d-f32", A.astype(np.float32), {"spd", "hermitian", "float32"},
                                    dim))
    cases.append(_with_solution("convdiff-f64", gallery.convection_diffusion((10, 10)), {"nonsymmetric"}, 4))
    cases.append(_with_solution("indefinite-f64", gallery.indefinite_symmetric((10, 10)), {"hermitian"}, 5))
    cases.append(_with_solution("hermitian-c128", gallery.complex_hermitian((8, 8)),
                                {"spd", "hermitian", "complex"}, 6))
    cases.append(_with_solution("nearsingular-f64", gallery.random_spd(40, cond=1e10, rng=7),
                                {"spd", "hermitian", "hard"}, 7))
    z = _with_solution("zero-rhs-f64", gallery.poisson((10, 10)), {"spd", "hermitian", "zero_rhs"}, 8)
    z.b = np.zeros_like(z.b)
    z.x_true = np.zeros_like(z.x_true)
    cases.append(z)
    cases.append(_breakdown_case())
    return {c.name: c for c in cases}


CASES = _build_cases()


def applies(method: str, case: Case) -> bool:
    """Whether ``method`` is meant to solve ``case`` (by the case's tags)."""
    if method == "cg":
        return "spd" in case.tags
    if method == "minres":
        return "hermitian" in case.tags
    return True


def classic_method_names() -> list:
    """Entries ``krylov.*`` of the registry, each a pytest param (skipped when its module is missing)."""
    from krylovlab._api import _METHODS

    out = []
    for name, target in _METHODS.items():
        module = target.split(":")[0]
        if not module.startswith("krylov."):
            continue
        if importlib.util.find_spec(f"krylovlab.{module}") is None:
            out.append(pytest.param(name, marks=pytest.mark.skip(reason=f"krylovlab.{module} does not exist yet")))
        else:
            out.append(name)
    return out


@pytest.fixture(params=sorted(CASES), ids=str)
def case(request) -> Case:
    """Each case of the shared list (a fresh copy of b, so tests may not corrupt it)."""
    c = CASES[request.param]
    return dataclasses.replace(c, b=c.b.copy(), x_true=c.x_true.copy())


@pytest.fixture
def case_by_name():
    """``case_by_name("poisson2d-f64")`` → that case (b copied)."""

    def get(name):
        c = CASES[name]
        return dataclasses.replace(c, b=c.b.copy(), x_true=c.x_true.copy())

    return get


def true_residual(A, x, b) -> float:
    """‖b − A x‖₂ computed independently in double (or double complex) precision."""
    dt = np.result_type(np.asarray(x).dtype, np.float64)
    A64 = A.astype(dt) if hasattr(A, "astype") else np.asarray(A, dtype=dt)
    r = np.asarray(b, dtype=dt) - A64 @ np.asarray(x, dtype=dt)
    return float(np.linalg.norm(r))


@pytest.fixture
def residual():
    """The independent true-residual function ``residual(A, x, b)``."""
    return true_residual


@pytest.fixture
def method_applies():
    """``method_applies(method, case)``: whether the method is meant for the case."""
    return applies


def pytest_generate_tests(metafunc):
    # a test that asks for ``classic_method`` runs once per classic Krylov method in the registry
    if "classic_method" in metafunc.fixturenames:
        metafunc.parametrize("classic_method", classic_method_names())
