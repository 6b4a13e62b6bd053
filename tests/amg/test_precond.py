"""AMG preconditioner and AMG-CG / AMG-GMRES: parity with pyamg, SPD-ness, errors."""

import numpy as np
import pytest
import scipy.sparse as sp

import krylovlab
from krylovlab import Status
from krylovlab.amg import AMG, AMGCG
from krylovlab.backend import cupy_available
from krylovlab.gallery import convection_diffusion, poisson


@pytest.fixture(scope="module")
def A2():
    return poisson((24, 24))


def rhs(n, seed=0):
    return np.random.default_rng(seed).standard_normal(n)


@pytest.mark.parametrize("kind, opts", [
    ("sa", {}),
    ("rs", {}),
    ("pairwise", {}),
    ("sa", {"smoother": "jacobi"}),
    ("sa", {"sweep": "forward", "presweeps": 2, "postsweeps": 2}),
])
def test_vcycle_matches_pyamg(A2, kind, opts):
    M = AMG(A2, kind, max_coarse=20, **opts)
    assert M.levels >= 2
    b = rhs(A2.shape[0])
    ours = M.apply(b)
    theirs = M.ml.aspreconditioner() @ b   # same hierarchy, same smoothers (set by AMG)
    assert np.linalg.norm(ours - theirs) <= 1e-12 * np.linalg.norm(theirs)


@pytest.mark.parametrize("kind, opts", [("sa", {}), ("rs", {}), ("sa", {"smoother": "jacobi"}),
                                        ("sa", {"sweep": "forward"})])
def test_preconditioner_is_spd(A2, kind, opts):
    M = AMG(A2, kind, max_coarse=20, **opts)
    rng = np.random.default_rng(1)
    for _ in range(5):
        x, y = rng.standard_normal((2, A2.shape[0]))
        Mx, My = M.apply(x), M.apply(y)
        assert abs(y @ Mx - x @ My) <= 1e-10 * np.linalg.norm(x) * np.linalg.norm(y) * np.linalg.norm(Mx)
        assert x @ Mx > 0


def test_dense_operator_symmetric_positive_definite():
    A = poisson((8, 8))
    M = AMG(A, max_coarse=10)
    Md = np.column_stack([M.apply(e) for e in np.eye(A.shape[0])])
    assert np.allclose(Md, Md.T, atol=1e-12)
    assert np.linalg.eigvalsh((Md + Md.T) / 2).min() > 0


@pytest.mark.parametrize("kind", ["sa", "rs", "pairwise"])
def test_amgcg_iterations_match_pyamg(kind):
    A = poisson((40, 40))
    b = rhs(A.shape[0], 2)
    amg = AMG(A, kind, max_coarse=20)
    res = AMGCG(A, amg=amg, rtol=1e-8).solve(b)
    assert res.converged and res.extras["path"] == "jitted"
    assert np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b)
    hist = []
    amg.ml.solve(b, tol=1e-8, accel="cg", residuals=hist)
    assert abs(res.iterations - (len(hist) - 1)) <= 1


def test_solve_registry_and_dense_reference():
    A = poisson((12, 12))
    b = rhs(A.shape[0], 3)
    res = krylovlab.solve(A, b, method="amg-cg", rtol=1e-10, amg_options={"max_coarse": 10})
    assert res.converged
    assert np.allclose(res.x, np.linalg.solve(A.toarray(), b), rtol=1e-7, atol=1e-9)


def test_monitor_path_matches_jitted():
    A = poisson((30, 30))
    b = rhs(A.shape[0], 4)
    amg = AMG(A)
    fast = AMGCG(A, amg=amg, rtol=1e-9).solve(b)
    seen = []
    slow = AMGCG(A, amg=amg, rtol=1e-9, monitors=[lambda info: seen.append(info.rnorm)]).solve(b)
    assert slow.extras["path"] == "python" and slow.converged
    assert abs(slow.iterations - fast.iterations) <= 1
    assert len(seen) == slow.iterations


def test_amggmres_nonsymmetric():
    A = convection_diffusion((30, 30))
    b = rhs(A.shape[0], 5)
    res = krylovlab.solve(A, b, method="amg-gmres", rtol=1e-8)
    assert res.converged
    assert np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b) * (1 + 1e-8)


def test_maxiter_is_reported_not_converged():
    A = poisson((30, 30))
    res = AMGCG(A, rtol=1e-14, maxiter=2).solve(rhs(A.shape[0]))
    assert res.status == Status.MAXITER and not res.converged and res.iterations == 2


def test_zero_rhs_and_x0_untouched(A2):
    s = AMGCG(A2, rtol=1e-8)
    res = s.solve(np.zeros(A2.shape[0]))
    assert res.converged and not res.x.any()
    x0 = rhs(A2.shape[0], 7)
    keep = x0.copy()
    b = rhs(A2.shape[0], 8)
    res = s.solve(b, x0)
    assert np.array_equal(x0, keep) and res.converged
    assert np.linalg.norm(b - A2 @ res.x) <= 1e-8 * np.linalg.norm(b)


def test_negative_definite_is_not_reported_converged():
    A = -poisson((20, 20))
    res = AMGCG(A, rtol=1e-8).solve(rhs(A.shape[0]))
    assert not res.converged and res.status in (Status.PC_FAILED, Status.INDEFINITE)


def test_single_level_is_exact():
    A = poisson((3, 3))
    M = AMG(A)
    assert M.levels == 1
    b = rhs(9)
    assert np.allclose(M.apply(b), np.linalg.solve(A.toarray(), b))


def test_usable_as_M_everywhere(A2):
    b = rhs(A2.shape[0], 9)
    M = AMG(A2)
    x, info = krylovlab.cg(A2, b, rtol=1e-8, M=M)
    assert info == 0 and np.linalg.norm(b - A2 @ x) <= 1e-8 * np.linalg.norm(b)
    import scipy.sparse.linalg as spla
    x, info = spla.cg(A2, b, rtol=1e-8, M=M.aspreconditioner())
    assert info == 0


def test_update_operator_reuse_and_rebuild():
    A = poisson((20, 20))
    M = AMG(A, rebuild_threshold=0.1)
    assert M.n_rebuilds == 1
    A2 = (A * 1.01).tocsr()
    assert M.update_operator(A2) is False and M.n_rebuilds == 1
    b = rhs(A.shape[0])
    res = AMGCG(A2, amg=M, rtol=1e-8).solve(b)
    assert res.converged and np.linalg.norm(b - A2 @ res.x) <= 1e-8 * np.linalg.norm(b)
    assert M.update_operator((A * 2.0).tocsr()) is True and M.n_rebuilds == 2
    assert M.update_operator(A, rebuild=True) is True
    # sequence interface on the solver
    s = AMGCG(A, rtol=1e-8)
    s.update_operator(A2)
    assert s.solve(b).converged


@pytest.mark.parametrize("opts", [{}, dict(sweep="red-black", precision="single"), dict(kind="rs")])
def test_pickle_round_trip(small_dia, opts):
    """A hierarchy and an AMG-CG solver survive pickling: the same cycle, the same solve, and pyamg's
    own ml.solve (its smoothers and coarse solver are made again) still runs."""
    import pickle

    A = poisson((30, 30))
    b = rhs(A.shape[0])
    M = AMG(A, **opts)
    M2 = pickle.loads(pickle.dumps(M))
    r = np.random.default_rng(1).standard_normal(A.shape[0])
    assert M2.red_black == M.red_black and M2.dtype == M.dtype
    np.testing.assert_array_equal(M2.apply(r), M.apply(r))
    np.testing.assert_array_equal(M2.ml.solve(b, maxiter=2), M.ml.solve(b, maxiter=2))
    s = AMGCG(A, amg=M, rtol=1e-8)
    first = s.solve(b)
    s2 = pickle.loads(pickle.dumps(s))
    again = s2.solve(b)
    assert again.converged and again.iterations == first.iterations
    np.testing.assert_array_equal(again.x, first.x)
    assert np.linalg.norm(b - A @ again.x) <= 1e-8 * np.linalg.norm(b)
    # the copy is independent: a new operator on it leaves the original alone
    s2.update_operator((A * 2.0).tocsr())
    np.testing.assert_array_equal(s.solve(b).x, first.x)


@pytest.mark.parametrize("bad, exc", [
    (dict(kind="nope"), ValueError),
    (dict(smoother="sor"), ValueError),
    (dict(sweep="sideways"), ValueError),
    (dict(presweeps=-1), ValueError),
    (dict(omega=3.0), ValueError),
    (dict(precision="half"), ValueError),
    (dict(presmoother=("jacobi", {})), TypeError),
])
def test_bad_options(A2, bad, exc):
    kw = dict(bad)
    kind = kw.pop("kind", "sa")
    with pytest.raises(exc):
        AMG(A2, kind, **kw)


def test_bad_matrices():
    with pytest.raises(ValueError, match="square"):
        AMG(sp.random(5, 6, density=0.5, format="csr"))
    Z = poisson((5, 5)).tolil()
    Z[3, 3] = 0
    with pytest.raises(ValueError, match="diagonal"):
        AMG(Z.tocsr())
    with pytest.raises(TypeError, match="complex"):
        AMG(poisson((5, 5)).astype(complex))
    M = AMG(poisson((5, 5)))
    with pytest.raises(ValueError, match="length"):
        M.apply(np.ones(3))
    with pytest.raises(TypeError):
        AMGCG(poisson((5, 5)), amg="not an AMG")


@pytest.mark.gpu
@pytest.mark.skipif(not cupy_available(), reason="needs CuPy and a CUDA device")
def test_gpu_vcycle_matches_cpu_jacobi():
    import cupy

    A = poisson((30, 30))
    M = AMG(A, smoother="jacobi").to_device()
    b = rhs(A.shape[0])
    z_gpu = M.apply(cupy.asarray(b)).get()
    assert np.allclose(z_gpu, M.apply(b), rtol=1e-10, atol=1e-12)


def test_thread_settings_agree():
    A = poisson((145, 145))  # fine level (21 025) just above the threading threshold
    b = rhs(A.shape[0], 11)
    its = []
    for mode in (True, False, "auto"):
        amg = AMG(A, parallel=mode)
        res = AMGCG(A, amg=amg, rtol=1e-8).solve(b)
        assert res.converged and np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b)
        its.append(res.iterations)
    assert max(its) - min(its) <= 1
    with pytest.raises(ValueError):
        AMG(A, parallel="sometimes")


def test_dense_input_and_linear_operator_rejected():
    A = poisson((10, 10))
    b = rhs(100, 12)
    res = AMGCG(A.toarray(), rtol=1e-9, amg_options={"max_coarse": 10}).solve(b)
    assert res.converged and np.linalg.norm(b - A @ res.x) <= 1e-9 * np.linalg.norm(b)
    import scipy.sparse.linalg as spla
    with pytest.raises(TypeError):
        AMGCG(spla.aslinearoperator(A))


# ------------------------------------------------- red–black sweeps and a single-precision cycle
@pytest.fixture
def small_dia(monkeypatch):
    """Let the finest level of small test problems take diagonal storage."""
    from krylovlab.amg import precond

    monkeypatch.setattr(precond, "_DIA_MIN_ROWS", 50)


def _reference_vcycle(M, b, sweeps=1):
    """One V-cycle in numpy on M's hierarchy: ``sweeps`` symmetric red–black Gauss–Seidel sweeps (red,
    black, red) on the finest level with the colours of M, symmetric lexicographic Gauss–Seidel (pyamg)
    below, before and after the coarse correction."""
    from pyamg.relaxation.relaxation import gauss_seidel

    lv = M.ml.levels
    red = M._packed._colour == 0

    def smooth(k, A, x, b):
        if k > 0:
            return gauss_seidel(A, x, b, iterations=sweeps, sweep="symmetric")
        d = A.diagonal()
        for _ in range(sweeps):
            for mask in (red, ~red, red):
                r = b - A @ x
                x[mask] += r[mask] / d[mask]

    def cycle(k, b):
        A = lv[k].A.tocsr()
        if k == len(lv) - 1:
            return np.linalg.pinv(A.toarray()) @ b
        x = np.zeros_like(b)
        smooth(k, A, x, b)
        x += lv[k].P @ cycle(k + 1, lv[k].R @ (b - A @ x))
        smooth(k, A, x, b)
        return x

    return cycle(0, b)


@pytest.mark.parametrize("shape, sweeps", [((30, 24), 1), ((9, 8, 7), 1), ((25, 22), 2)])
def test_red_black_vcycle_matches_reference_and_is_spd(small_dia, shape, sweeps):
    A = poisson(shape)
    M = AMG(A, max_coarse=20, sweep="red-black", presweeps=sweeps, postsweeps=sweeps)
    assert M.red_black and M.levels >= 2
    colour = M._packed._colour
    coo = A.tocoo()
    off = coo.row != coo.col
    assert np.all(colour[coo.row[off]] != colour[coo.col[off]])  # a valid two-colouring
    rng = np.random.default_rng(2)
    for _ in range(3):
        x, y = rng.standard_normal((2, A.shape[0]))
        Mx, My = M.apply(x), M.apply(y)
        want = _reference_vcycle(M, x, sweeps)
        assert np.linalg.norm(Mx - want) <= 1e-12 * np.linalg.norm(want)
        assert abs(y @ Mx - x @ My) <= 1e-10 * np.linalg.norm(x) * np.linalg.norm(y) * np.linalg.norm(Mx)
        assert x @ Mx > 0
    b = rhs(A.shape[0])
    res = AMGCG(A, amg=M, rtol=1e-10).solve(b)
    assert res.converged and np.linalg.norm(b - A @ res.x) <= 1e-10 * np.linalg.norm(b)
    lex = AMGCG(A, amg=AMG(A, max_coarse=20, presweeps=sweeps, postsweeps=sweeps), rtol=1e-10).solve(b)
    assert abs(res.iterations - lex.iterations) <= 2


def test_red_black_falls_back_where_it_cannot_apply(small_dia):
    """A 9-point stencil has no two-colouring, a small matrix no diagonal copy: lexicographic sweeps, the
    symmetric cycle exactly."""
    import pyamg

    A9 = pyamg.gallery.stencil_grid(np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], float), (20, 20),
                                    format="csr")
    b = rhs(A9.shape[0])
    for A in (A9, poisson((6, 6))):
        np.random.seed(0)  # pyamg draws random vectors for its spectral radius estimates
        M = AMG(A, max_coarse=10, sweep="red-black")
        assert not M.red_black
        np.random.seed(0)
        ref = AMG(A, max_coarse=10, sweep="symmetric")
        assert np.array_equal(M.apply(b[: A.shape[0]]), ref.apply(b[: A.shape[0]]))


@pytest.mark.parametrize("sweep", ["symmetric", "red-black"])
def test_single_precision_cycle_in_double_cg(small_dia, sweep):
    """A float32 cycle inside float64 AMG-CG: products and residuals stay in double, so the solve reaches
    1e-10 on the true residual in about as many iterations as the double cycle."""
    A = poisson((40, 40))
    b = rhs(A.shape[0])
    np.random.seed(0)
    M = AMG(A, max_coarse=20, sweep=sweep, precision="single")
    assert M.dtype == np.float32 and M.matrix_dtype == np.float64
    z = M.apply(b)
    assert z.dtype == np.float64
    np.random.seed(0)
    double = AMG(A, max_coarse=20, sweep=sweep)
    assert np.linalg.norm(z - double.apply(b)) <= 1e-5 * np.linalg.norm(z)
    res = AMGCG(A, amg=M, rtol=1e-10).solve(b)
    assert res.converged and res.extras["path"] == "jitted"
    assert np.linalg.norm(b - A @ res.x) <= 1e-10 * np.linalg.norm(b)
    ref = AMGCG(A, amg=double, rtol=1e-10).solve(b)
    assert abs(res.iterations - ref.iterations) <= 1
    # the monitored (Python) path takes the same cycle
    seen = []
    mon = AMGCG(A, amg=M, rtol=1e-10, monitors=[lambda info: seen.append(info.rnorm)]).solve(b)
    assert mon.converged and abs(mon.iterations - res.iterations) <= 1 and seen


def test_amgcg_products_from_diagonals_follow_new_values(small_dia):
    """AMG-CG's products read a diagonal copy of A, kept per pattern: a new matrix with the same pattern,
    or the same matrix with values changed in place, must be what the solve sees."""
    A = poisson((30, 30))
    b = rhs(A.shape[0])
    s = AMGCG(A, rtol=1e-10)
    assert s.solve(b).converged
    assert s._outer.offsets.size == 5
    B = A.copy()
    B.data = B.data * np.linspace(1.0, 3.0, B.nnz)
    B = ((B + B.T) / 2).tocsr()
    B.sort_indices()
    s.update_operator(B)
    res = s.solve(b)
    assert res.converged and np.linalg.norm(b - B @ res.x) <= 1e-10 * np.linalg.norm(b)
    B.data *= 2.0  # in place: same object, new values
    s.update_operator(B)
    res = s.solve(b)
    assert res.converged and np.linalg.norm(b - B @ res.x) <= 1e-10 * np.linalg.norm(b)


def test_red_black_threaded_cycle_matches_serial():
    """Above the threading threshold the red–black passes run on row blocks over threads, in place: each
    row of a colour reads only rows of the other colour, so the cycle equals the serial one to rounding
    (the threaded restriction and products sum in another order)."""
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two numba threads")  # the point is the threaded pass
    A = poisson((150, 150))  # 22 500 rows, above PARALLEL_THRESHOLD
    b = rhs(A.shape[0], 5)
    np.random.seed(0)
    M = AMG(A, sweep="red-black", parallel=True)
    assert M.red_black and M.thread_threshold() <= A.shape[0]
    threaded = M.apply(b)
    M.parallel = False
    serial = M.apply(b)
    assert np.linalg.norm(threaded - serial) <= 1e-12 * np.linalg.norm(serial)
    M.parallel = True
    res = AMGCG(A, amg=M, rtol=1e-10).solve(b)
    assert res.converged and np.linalg.norm(b - A @ res.x) <= 1e-10 * np.linalg.norm(b)
