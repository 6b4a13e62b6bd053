"""Property tests (hypothesis): a reported convergence is always real.

On random SPD and random nonsymmetric systems (sizes, conditioning,
tolerances, x0 and maxiter drawn by hypothesis), whenever a classic Krylov
method says it converged, the true residual ‖b − A x‖₂ (computed here,
independently) meets ``max(atol, rtol·‖b‖₂)``; and whenever it says it did
not, ``info`` is nonzero.  Kept quick: few examples, small systems.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krylovlab._api import get_solver_class

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _spd(n, log_cond, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eig = np.logspace(0, log_cond, n)
    return (q * eig) @ q.T


def _nonsymmetric(n, skew, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n)) / np.sqrt(n)
    return np.eye(n) * (1.0 + 2.0 * skew) + skew * (a - a.T) + 0.3 * a


systems = st.fixed_dictionaries({
    "n": st.integers(2, 40),
    "seed": st.integers(0, 2**31 - 1),
    "rtol": st.sampled_from([1e-3, 1e-6, 1e-9, 1e-11]),
    "atol": st.sampled_from([0.0, 0.0, 1e-8]),
    "maxiter": st.one_of(st.none(), st.integers(1, 60)),
    "x0": st.booleans(),
    "sparse": st.booleans(),
})


def _check(method, A, p, residual):
    rng = np.random.default_rng(p["seed"] + 1)
    b = rng.standard_normal(p["n"])
    x0 = rng.standard_normal(p["n"]) if p["x0"] else None
    A_in = sp.csr_matrix(A) if p["sparse"] else A
    with np.errstate(all="ignore"):
        res = get_solver_class(method)(A_in, rtol=p["rtol"], atol=p["atol"], maxiter=p["maxiter"]).solve(b, x0)
    tol = max(p["atol"], p["rtol"] * np.linalg.norm(b))
    if res.converged:
        assert res.info == 0
        assert residual(A, res.x, b) <= tol * (1 + 1e-9), res
    else:
        assert res.info != 0 and res.status < 0
    if p["maxiter"] is not None:
        assert res.iterations <= p["maxiter"]


@pytest.mark.parametrize("method", ["cg", "minres", "gmres", "bicgstab", "cgs", "bicg", "qmr", "tfqmr",
                                    "lgmres", "gcrotmk"])
@SETTINGS
@given(p=systems, log_cond=st.floats(0.0, 8.0))
def test_spd_convergence_is_real(method, residual, p, log_cond):
    _check(method, _spd(p["n"], log_cond, p["seed"]), p, residual)


@pytest.mark.parametrize("method", ["gmres", "bicgstab", "cgs", "bicg", "qmr", "tfqmr", "lgmres", "gcrotmk"])
@SETTINGS
@given(p=systems, skew=st.floats(0.0, 3.0))
def test_nonsymmetric_convergence_is_real(method, residual, p, skew):
    _check(method, _nonsymmetric(p["n"], skew, p["seed"]), p, residual)
