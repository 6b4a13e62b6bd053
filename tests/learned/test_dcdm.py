"""DCDM solver and the convolutional direction model."""

import os

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import krylovlab
from krylovlab import Status
from krylovlab.gallery import poisson
from krylovlab.learned import DCDM, ConvDirectionModel, default_weights_path, load_model
from krylovlab.learned._fields import diffusion_matrix, layered_field, lognormal_field


def true_rel(A, x, b):
    return np.linalg.norm(b - A @ x) / np.linalg.norm(b)


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(3)


# ------------------------------------------------------------------------------ the model
def test_shipped_weights_load_and_shapes(rng):
    path = default_weights_path()
    assert os.path.exists(path)
    assert os.path.getsize(path) < 1_000_000
    model = load_model(grid=(16, 24))
    assert model.config["dim"] == 2
    for dtype in (np.float64, np.float32):
        r = rng.standard_normal(16 * 24).astype(dtype)
        d = model(r)
        assert d.shape == (16 * 24,) and d.dtype == dtype
        assert np.all(np.isfinite(d))
    # scale invariance of the input: the network sees r/‖r‖
    np.testing.assert_allclose(model(3.0 * r), model(r), rtol=1e-5, atol=1e-6)
    assert not model(np.zeros(16 * 24)).any()


def test_model_grid_errors(rng):
    model = load_model()
    with pytest.raises(ValueError, match="no grid"):
        model(rng.standard_normal(64))
    with pytest.raises(ValueError, match="even"):
        model.with_grid((15, 16))
    with pytest.raises(ValueError, match="2-D"):
        model.with_grid((8, 8, 8))
    m = model.with_grid((8, 8))
    with pytest.raises(ValueError, match="grid"):
        m(rng.standard_normal(63))


def test_npz_roundtrip_and_malformed_files(tmp_path, rng):
    model = load_model(grid=(8, 8))
    path = tmp_path / "w.npz"
    model.save(path)
    again = ConvDirectionModel.load(path, grid=(8, 8))
    r = rng.standard_normal(64)
    np.testing.assert_array_equal(again(r), model(r))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="cannot read"):
        ConvDirectionModel.load(bad)
    np.savez(tmp_path / "noconf.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="config"):
        ConvDirectionModel.load(tmp_path / "noconf.npz")
    weights = dict(model.weights)
    weights["in.w"] = weights["in.w"][:, :, :2]
    with pytest.raises(ValueError, match="shape"):
        ConvDirectionModel(weights, model.config)
    weights = dict(model.weights)
    weights.pop("out.b")
    with pytest.raises(ValueError, match="missing"):
        ConvDirectionModel(weights, model.config)
    # object arrays would need pickle: refused
    np.savez(tmp_path / "obj.npz", config=np.array([{"dim": 2}], dtype=object))
    with pytest.raises(ValueError):
        ConvDirectionModel.load(tmp_path / "obj.npz")


def test_model_matches_torch_module(rng):
    torch = pytest.importorskip("torch")
    from krylovlab.learned.train import DCDMNet, from_model, to_model

    for cfg, grid in [({}, (32, 16)), ({"levels": 1, "n_pre": 2, "n_coarse": 3, "n_post": 2}, (8, 12)),
                      ({"dim": 3, "channels": 4}, (8, 8, 4)), ({"bias": 0}, (16, 16))]:
        torch.manual_seed(1)
        net = DCDMNet(cfg)
        model = to_model(net, grid)
        r = rng.standard_normal(int(np.prod(grid)))
        with torch.no_grad():
            ref = net(torch.from_numpy((r / np.linalg.norm(r)).astype(np.float32)).reshape(1, *grid))
        ref = ref.numpy().ravel()
        np.testing.assert_allclose(model(r), ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
    # and the shipped file round-trips through torch
    shipped = load_model(grid=(16, 16))
    net = from_model(shipped)
    with torch.no_grad():
        ref = net(torch.from_numpy((r[:256] / np.linalg.norm(r[:256])).astype(np.float32)).reshape(1, 16, 16))
    np.testing.assert_allclose(shipped(r[:256]), ref.numpy().ravel(), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------ the solver
def test_exact_inverse_converges_in_one_iteration(rng):
    A = diffusion_matrix(lognormal_field((12, 12), rng=1))
    b = rng.standard_normal(144)
    lu = spla.splu(A.tocsc())
    res = DCDM(A, model=lu.solve, rtol=1e-10).solve(b)
    assert res.converged and res.iterations == 1
    assert true_rel(A, res.x, b) <= 1e-10


def test_identity_model_is_cg(rng):
    A = poisson((20, 20))
    b = rng.standard_normal(400)
    res = DCDM(A, model=lambda r: r, rtol=1e-8).solve(b)
    cg = krylovlab.solve(A, b, method="cg", rtol=1e-8)
    assert res.converged and abs(res.iterations - cg.iterations) <= 2
    assert true_rel(A, res.x, b) <= 1e-8


def test_kept_directions_are_A_orthogonal(rng):
    A = diffusion_matrix(lognormal_field((16, 16), rng=2))
    b = rng.standard_normal(256)
    noise = np.random.default_rng(5)

    def poor(r):  # a nonlinear, badly scaled model: the flexible method must cope
        return np.sign(r) * np.abs(r) ** 0.7 + 0.3 * noise.standard_normal(r.shape) * np.linalg.norm(r) / 16

    solver = DCDM(A, model=poor, n_keep=6, maxiter=6, rtol=1e-14)
    res = solver.solve(b)
    assert res.status == Status.MAXITER and res.iterations == 6
    P, AP = solver.kept_directions
    assert len(P) == 6
    G = np.array([[p @ ap for ap in AP] for p in P])
    d = np.sqrt(np.diag(G))
    off = np.abs(G - np.diag(np.diag(G))) / np.outer(d, d)
    assert off.max() < 1e-10
    for p, ap in zip(P, AP):
        np.testing.assert_allclose(A @ p, ap, rtol=1e-12, atol=1e-12 * np.abs(ap).max())


def test_poor_model_still_converges_or_reports(rng):
    A = poisson((16, 16))
    b = rng.standard_normal(256)
    noise = np.random.default_rng(0)
    res = DCDM(A, model=lambda r: noise.standard_normal(r.shape), rtol=1e-6, maxiter=3000,
               stagnation_window=3000).solve(b)
    # random directions still reduce the energy every step; whatever happens, no false claim
    assert res.status in (Status.RTOL, Status.MAXITER, Status.STAGNATION)
    assert res.converged == (true_rel(A, res.x, b) <= 1e-6)
    # a model that returns zeros falls back to steepest descent and converges
    res = DCDM(A, model=lambda r: np.zeros_like(r), rtol=1e-3, maxiter=5000, stagnation_window=5000).solve(b)
    assert res.converged and res.extras["fallback_steps"] == res.iterations
    assert true_rel(A, res.x, b) <= 1e-3
    # stagnation is reported as such
    res = DCDM(A, model=lambda r: noise.standard_normal(r.shape), rtol=1e-12, maxiter=500,
               stagnation_window=2).solve(b)
    assert res.status == Status.STAGNATION and not res.converged


def test_bad_models_fail_cleanly(rng):
    A = poisson((8, 8))
    b = rng.standard_normal(64)
    res = DCDM(A, model=lambda r: np.full_like(r, np.nan)).solve(b)
    assert res.status == Status.PC_FAILED and not res.converged
    with pytest.raises(ValueError, match="returned"):
        DCDM(A, model=lambda r: r[:10]).solve(b)
    with pytest.raises(TypeError, match="direction model"):
        DCDM(A, model=42)
    res = DCDM(-A, model=lambda r: r).solve(b)
    assert res.status == Status.INDEFINITE


def test_grid_errors():
    A = poisson((32, 32))
    with pytest.raises(ValueError, match="900 cells but A has 1024"):
        DCDM(A, grid=(30, 30))
    with pytest.raises(ValueError, match="grid"):
        DCDM(A)
    with pytest.raises(ValueError, match="2-D"):
        DCDM(A, grid=(16, 8, 8))
    with pytest.raises(ValueError, match="even"):
        DCDM(poisson((31, 31)), grid=(31, 31))
    with pytest.raises(ValueError, match="grid must"):
        DCDM(A, grid=1024)
    with pytest.raises(ValueError, match="n_keep"):
        DCDM(A, grid=(32, 32), n_keep=-1)


@pytest.mark.parametrize("kind", ["poisson", "darcy", "layered"])
def test_solve_front_door_with_shipped_network(kind):
    n = 32
    a = {"poisson": np.ones((n, n)), "darcy": lognormal_field((n, n), rng=11),
         "layered": layered_field((n, n), rng=4)}[kind]
    A = diffusion_matrix(a)
    b = np.random.default_rng(1).standard_normal(n * n)
    x0 = np.zeros(n * n)
    res = krylovlab.solve(A, b, x0, method="dcdm", grid=(n, n), rtol=1e-6, maxiter=300, history=True)
    # the shipped model (network between Jacobi sweeps, safeguarded) converges, and beats plain CG
    rel = true_rel(A, res.x, b)
    assert res.status == Status.RTOL and res.converged and rel <= 1e-6
    cg_full = krylovlab.solve(A, b, method="cg", rtol=1e-6)
    assert res.iterations < cg_full.iterations
    assert abs(res.rnorm - rel * np.linalg.norm(b)) <= 1e-8 * np.linalg.norm(b)
    assert not x0.any()
    # x0 given: one matvec for the first residual; then A q, A r (safeguard test) and the true residual per
    # iteration, plus one per safeguarded step (the smoother's products happen inside the model)
    assert res.nmatvec == 3 * res.iterations + res.extras["fallback_steps"] + 1
    assert len(res.history) == res.iterations + 1
    assert "cnn" in res.extras["model"]
    # the model's first directions are good ones: 5 steps beat 5 steps of CG
    early = krylovlab.solve(A, b, method="dcdm", grid=(n, n), maxiter=5)
    cg = krylovlab.solve(A, b, method="cg", maxiter=5)
    assert true_rel(A, early.x, b) < true_rel(A, cg.x, b)


def test_zero_rhs_tolerances_and_float32():
    A = poisson((16, 16))
    res = krylovlab.solve(A, np.zeros(256), method="dcdm", grid=(16, 16))
    assert res.converged and not res.x.any()
    with pytest.raises(ValueError):
        DCDM(A, grid=(16, 16), rtol=-1.0)
    b = np.ones(256, np.float32)
    res = DCDM(A.astype(np.float32), grid=(16, 16), rtol=1e-2).solve(b)
    assert res.converged and res.x.dtype == np.float32
    assert true_rel(A, res.x.astype(float), b.astype(float)) <= 1e-2


def test_pyamg_and_sparse_models(rng):
    pyamg = pytest.importorskip("pyamg")
    A = diffusion_matrix(lognormal_field((24, 24), rng=3))
    b = rng.standard_normal(576)
    ml = pyamg.smoothed_aggregation_solver(A)
    res = DCDM(A, model=ml, rtol=1e-8).solve(b)
    assert res.converged and res.iterations < 20 and true_rel(A, res.x, b) <= 1e-8
    res = DCDM(A, M=sp.diags(1.0 / A.diagonal()), rtol=1e-8).solve(b)
    assert res.converged and true_rel(A, res.x, b) <= 1e-8


def test_torch_module_as_model(rng):
    torch = pytest.importorskip("torch")
    from krylovlab.learned.train import from_model

    shipped = load_model()
    net = from_model(shipped)
    # the torch module is the bare network (no Jacobi sweeps, full grid): compare with that
    bare = ConvDirectionModel(shipped.weights, {**shipped.config, "smooth": 0, "jscale": 0, "coarsen": 0})
    A = poisson((16, 16))
    b = rng.standard_normal(256)
    res = DCDM(A, grid=(16, 16), model=net, maxiter=4, history=True).solve(b)
    ref = DCDM(A, grid=(16, 16), model=bare, maxiter=4, history=True).solve(b)
    assert res.extras["model"].startswith("torch module")
    np.testing.assert_allclose(res.history, ref.history, rtol=1e-3)


def Jacobi_like(r):
    return r / 4.0


def test_update_operator_keeps_model():
    A = poisson((16, 16))
    solver = DCDM(A, grid=(16, 16), model=Jacobi_like, rtol=1e-6)
    b = np.ones(256)
    r1 = solver.solve(b)
    A2 = diffusion_matrix(lognormal_field((16, 16), rng=9))
    solver.update_operator(A2)
    r2 = solver.solve(b)
    assert r1.converged and r2.converged and true_rel(A2, r2.x, b) <= 1e-6
    # the shipped network is re-bound too, and the grid is checked against the new operator
    net_solver = DCDM(A, grid=(16, 16), maxiter=3)
    net_solver.update_operator(A2)
    assert net_solver.solve(b).iterations == 3
    with pytest.raises(ValueError, match="cells"):
        solver.update_operator(poisson((8, 8)))


# ------------------------------------------------------------------------------ smoothing and the safeguard
def test_smoothed_model_matches_torch_and_binds_to_A(rng):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from krylovlab.learned._fields import diffusion_apply, face_coefficients
    from krylovlab.learned.model import SmoothedDirection, smoothed_apply
    from krylovlab.learned.train import DCDMNet, diffusion_diagonal, to_model

    a = lognormal_field((16, 24), rng=5)
    A = diffusion_matrix(a)
    faces = face_coefficients(a)
    np.testing.assert_allclose(diffusion_diagonal(faces).ravel(), A.diagonal(), rtol=1e-14)
    r = rng.standard_normal(A.shape[0])
    for cfg in ({"bias": 0, "smooth": 2, "jscale": 1}, {"smooth": 1, "omega_pct": 60, "coarsen": 1}):
        torch.manual_seed(2)
        net = DCDMNet(cfg)
        # DCDM binds a host CSR matrix to Gauss-Seidel sweeps, a dense one to the trained Jacobi arrangement
        assert "sgs(2/8)" in repr(DCDM(A, grid=(16, 24), model=to_model(net)))
        solver = DCDM(A.toarray(), grid=(16, 24), model=to_model(net))
        assert isinstance(solver.model, SmoothedDirection) and f"jacobi({cfg['smooth']})" in repr(solver)
        d = solver.model(r)
        fb = [torch.from_numpy(f[None]) for f in faces]

        def tnet(v, cfg=cfg, net=net):
            if not cfg.get("coarsen"):
                return net(v.float()).double()
            zc = net(F.avg_pool2d(v.unsqueeze(1), 2).squeeze(1).float()).double()
            return F.interpolate(zc.unsqueeze(1), scale_factor=2, mode="nearest").squeeze(1)

        with torch.no_grad():
            ref = smoothed_apply(tnet, lambda v: diffusion_apply(fb, v, xp=torch),
                                 torch.from_numpy(1.0 / diffusion_diagonal(faces))[None],
                                 torch.from_numpy(r).reshape(1, 16, 24), cfg["smooth"], cfg.get("omega_pct", 80) / 100,
                                 cfg.get("jscale", 0), lambda u, v: (u * v).sum((1, 2), keepdim=True), tiny=1e-300)
        np.testing.assert_allclose(d, ref.numpy().ravel(), rtol=1e-4, atol=1e-5 * np.abs(d).max())
    # the smoothed model needs an explicit diagonal, and coarsening needs grids divisible by 4
    op = spla.aslinearoperator(A)
    with pytest.raises(ValueError, match="diagonal"):
        DCDM(op, grid=(16, 24), model=to_model(DCDMNet({"smooth": 1})))
    with pytest.raises(ValueError, match="multiple of 4"):
        DCDM(poisson((6, 8)), grid=(6, 8), model=to_model(DCDMNet({"smooth": 1, "coarsen": 1})))
    with pytest.raises(ValueError, match="coarsen"):
        DCDMNet({"coarsen": 1})


def test_gauss_seidel_arrangement_matches_dense_reference(rng):
    # SmoothedDirection with a CSR matrix: pre SGS sweeps from 0, the network's line-searched correction,
    # post SGS sweeps on the remaining residual; the sweeps rebuilt here with dense triangular solves
    from scipy.linalg import solve_triangular

    from krylovlab.learned.model import SmoothedDirection

    A = diffusion_matrix(lognormal_field((16, 24), sigma=2.0, length=0.05, rng=9))
    Ad = A.toarray()
    lower, upper = np.tril(Ad), np.triu(Ad)

    def sgs(b, count):
        x = np.zeros_like(b)
        for _ in range(count):
            x += solve_triangular(lower, b - Ad @ x, lower=True)
            x += solve_triangular(upper, b - Ad @ x, lower=False)
        return x

    r = rng.standard_normal(A.shape[0])
    net = load_model(grid=(16, 24))
    for sweeps in ((2, 8), (1, 3), (0, 2)):
        model = SmoothedDirection(net, lambda v: A @ v, A.diagonal(), csr=A, sweeps=sweeps)
        x = sgs(r, sweeps[0])
        rho = r - Ad @ x
        s = 1.0 / np.sqrt(A.diagonal())
        z = s * model._net_coarse(s * rho)
        alpha = (z @ rho) / (z @ Ad @ z)
        x = x + alpha * z
        x = x + sgs(rho - alpha * (Ad @ z), sweeps[1])
        np.testing.assert_allclose(model(r), x, rtol=1e-10, atol=1e-12 * np.abs(x).max())
    with pytest.raises(ValueError, match="sweeps"):
        SmoothedDirection(net, lambda v: A @ v, A.diagonal(), csr=A, sweeps=(-1, 2))


def test_safeguard_keeps_a_poor_model_converging(rng):
    A = diffusion_matrix(lognormal_field((32, 32), rng=6))
    b = rng.standard_normal(1024)
    noise = np.random.default_rng(1)

    def stuck(r):  # random directions: each reduces the energy by about 1/n of itself
        return noise.standard_normal(r.shape)

    res = DCDM(A, model=stuck, rtol=1e-8, maxiter=2000).solve(b)
    assert res.converged and true_rel(A, res.x, b) <= 1e-8
    assert res.extras["fallback_steps"] >= res.iterations - 2
    cg = krylovlab.solve(A, b, method="cg", rtol=1e-8)
    assert res.iterations <= 2 * cg.iterations  # span{q, r} steps: within a small factor of CG
    # without the safeguard the same model stalls, and says so
    res0 = DCDM(A, model=stuck, rtol=1e-8, maxiter=2000, safeguard=0.0, stagnation_window=20).solve(b)
    assert res0.status == Status.STAGNATION and not res0.converged
    assert true_rel(A, res0.x, b) > 1e-3
    # a good model never triggers it
    ml = spla.splu(A.tocsc())
    assert DCDM(A, model=ml.solve, rtol=1e-10).solve(b).extras["fallback_steps"] == 0
    for bad in (-1.0, float("nan"), True, "yes"):
        with pytest.raises(ValueError, match="safeguard"):
            DCDM(A, model=stuck, safeguard=bad)


def test_safeguarded_directions_stay_A_orthogonal(rng):
    A = diffusion_matrix(lognormal_field((16, 16), rng=7))
    b = rng.standard_normal(256)
    fixed = np.random.default_rng(2).standard_normal(256)
    calls = []

    def sometimes(r):
        calls.append(1)
        return fixed.copy() if len(calls) % 2 else r / A.diagonal()

    solver = DCDM(A, model=sometimes, n_keep=5, maxiter=7, rtol=1e-14)
    res = solver.solve(b)
    assert res.extras["fallback_steps"] > 0
    P, AP = solver.kept_directions
    assert len(P) == 5
    G = np.array([[p @ ap for ap in AP] for p in P])
    d = np.sqrt(np.diag(G))
    assert (np.abs(G - np.diag(np.diag(G))) / np.outer(d, d)).max() < 1e-10
    for p, ap in zip(P, AP):
        np.testing.assert_allclose(A @ p, ap, rtol=1e-12, atol=1e-12 * np.abs(ap).max())


# ------------------------------------------------------------------------------ the coefficient channel
def _blind(model):
    """``model`` without its coefficient channel (its input weights dropped)."""
    if not model.config["coef"]:
        return model
    w = dict(model.weights)
    w["in.w"] = w["in.w"][:, :1]
    return ConvDirectionModel(w, {**model.config, "coef": 0}, grid=model.grid)


def _with_coef(model, scale, rng):
    """``model`` (blind) with a coefficient channel whose input weights are ``scale`` × random."""
    from krylovlab.learned.model import ConvDirectionModel as Conv

    w = dict(_blind(model).weights)
    extra = scale * rng.standard_normal(w["in.w"][:, :1].shape).astype(np.float32)
    w["in.w"] = np.concatenate([w["in.w"], extra], axis=1)
    return Conv(w, {**model.config, "coef": 1})


def test_coefficient_feature_is_centred_log_diagonal_averaged():
    from krylovlab.learned.model import coefficient_feature

    d = np.exp(np.random.default_rng(0).standard_normal((8, 12)))
    f = coefficient_feature(d.ravel(), (8, 12), (8, 12))
    np.testing.assert_allclose(f, np.log(d) - np.log(d).mean(), rtol=1e-5, atol=1e-6)
    c = coefficient_feature(d.ravel(), (8, 12), (4, 6))
    blocks = np.log(d).reshape(4, 2, 6, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(c, blocks - blocks.mean(), rtol=1e-5, atol=1e-6)
    assert c.dtype == np.float32 and abs(float(c.mean())) < 1e-6
    with pytest.raises(ValueError, match="positive"):
        coefficient_feature(-d.ravel(), (8, 12), (8, 12))
    with pytest.raises(ValueError, match="average"):
        coefficient_feature(d.ravel(), (8, 12), (3, 6))


def test_coefficient_channel_model(rng):
    from krylovlab.learned.model import coefficient_feature

    base = _blind(load_model(grid=(16, 16)))
    # zero weights on the new channel: exactly the model without it
    zero = _with_coef(base, 0.0, rng).with_grid((16, 16))
    r = rng.standard_normal(256)
    with pytest.raises(ValueError, match="shape"):
        zero.set_feature(np.zeros((8, 8)))
    zero.set_feature(rng.standard_normal((16, 16)))
    np.testing.assert_array_equal(zero(r), base(r))
    with pytest.raises(ValueError, match="no coefficient channel"):
        base.set_feature(np.zeros((16, 16)))
    # nonzero weights: the output depends on the channel, and a new grid forgets it
    model = _with_coef(base, 0.5, rng).with_grid((16, 16))
    d0 = model(r)  # unset: a zero channel, what constant coefficients give
    model.set_feature(np.zeros((16, 16)))
    np.testing.assert_array_equal(model(r), d0)
    model.set_feature(coefficient_feature(np.exp(rng.standard_normal(256)), (16, 16), (16, 16)))
    assert np.abs(model(r) - d0).max() > 1e-3 * np.abs(d0).max()
    assert model.with_grid((16, 16)).feature is None


def test_dcdm_binds_the_coefficient_channel_to_each_matrix(rng):
    base = _blind(load_model())
    model = _with_coef(base, 0.3, rng)
    grid = (32, 32)
    A1 = diffusion_matrix(lognormal_field(grid, rng=1))
    A2 = diffusion_matrix(lognormal_field(grid, rng=2))
    b = rng.standard_normal(1024)
    s1 = DCDM(A1, grid=grid, model=model, rtol=1e-8)
    s2 = DCDM(A2, grid=grid, model=model, rtol=1e-8)
    f1, f2 = s1.model._coarse.feature, s2.model._coarse.feature
    assert f1.shape == (16, 16) and not np.allclose(f1, f2)
    for s, A in ((s1, A1), (s2, A2)):
        res = s.solve(b)
        assert res.converged and true_rel(A, res.x, b) <= 1e-8
    assert model.feature is None  # the shared weights stay unbound
    # an unsmoothed coefficient model (bare network on the full grid) is bound too
    bare = _with_coef(ConvDirectionModel(base.weights, {**base.config, "smooth": 0, "coarsen": 0, "jscale": 0}),
                      0.3, rng)
    s3 = DCDM(A1, grid=grid, model=bare, rtol=1e-6, maxiter=3000)
    assert s3.model.feature.shape == grid
    res = s3.solve(b)
    assert res.converged and true_rel(A1, res.x, b) <= 1e-6
    with pytest.raises(ValueError, match="diagonal"):
        DCDM(spla.aslinearoperator(A1), grid=grid, model=bare)


def test_torch_coefficient_network_matches_the_exported_model(rng):
    torch = pytest.importorskip("torch")
    from krylovlab.learned.train import from_model

    model = _with_coef(load_model(), 0.4, rng).with_grid((16, 16))
    feat = rng.standard_normal((16, 16)).astype(np.float32)
    model.set_feature(feat)
    net = from_model(model)
    r = rng.standard_normal(256)
    with torch.no_grad():
        t = net(torch.from_numpy(r.reshape(1, 16, 16).astype(np.float32)), torch.from_numpy(feat)[None])
    np.testing.assert_allclose(model(r), t.numpy().ravel(), rtol=1e-4, atol=1e-5 * np.abs(t.numpy()).max())
    # an unset channel is zero, in torch as in the exported model
    with torch.no_grad():
        t0 = net(torch.from_numpy(r.reshape(1, 16, 16).astype(np.float32)))
    model.set_feature(np.zeros((16, 16)))
    np.testing.assert_allclose(model(r), t0.numpy().ravel(), rtol=1e-4, atol=1e-5 * np.abs(t0.numpy()).max())
    # widening a model without the channel: zero input weights, identical output
    blind = _blind(load_model())
    wide = from_model(blind, {"coef": 1})
    assert torch.count_nonzero(wide.convs["in"].weight[:, 1]) == 0
    with torch.no_grad():
        x = torch.from_numpy(r.reshape(1, 16, 16).astype(np.float32))
        np.testing.assert_array_equal(wide(x, torch.from_numpy(feat)[None]).numpy(), from_model(blind)(x).numpy())
    with pytest.raises(ValueError, match="differs"):
        from_model(blind, {"coef": 1, "channels": 8})
    with pytest.raises(ValueError, match="differs"):
        from_model(load_model(), {"coef": 0})
