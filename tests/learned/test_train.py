"""Training pieces: Lanczos Ritz data, the torch loss operator, a tiny training run, the CLI."""

import json

import numpy as np
import pytest

from krylovlab.gallery import poisson
from krylovlab.learned._fields import diffusion_apply, diffusion_matrix, face_coefficients, lognormal_field
from krylovlab.learned.model import ConvDirectionModel
from krylovlab.learned.train import lanczos_ritz, ritz_rhs


def test_lanczos_ritz_pairs_are_eigenpairs_when_complete():
    A = diffusion_matrix(lognormal_field((6, 6), rng=5))  # distinct eigenvalues
    theta, V = lanczos_ritz(A, 36, rng=0)
    ref = np.linalg.eigvalsh(A.toarray())
    np.testing.assert_allclose(theta, ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(V.T @ V, np.eye(36), atol=1e-10)
    np.testing.assert_allclose(A @ V, V * theta, atol=1e-8)
    # repeated eigenvalues (Poisson): the run stops on the invariant Krylov space it reached
    theta, V = lanczos_ritz(poisson((8, 8)), 64, rng=0)
    assert V.shape[1] < 64
    np.testing.assert_allclose(poisson((8, 8)) @ V, V * theta, atol=1e-8)


def test_lanczos_partial_run_and_rhs_weighting():
    A = diffusion_matrix(lognormal_field((16, 16), rng=1))
    theta, V = lanczos_ritz(A, 60, rng=2)
    assert V.shape == (256, 60) and np.all(np.diff(theta) >= 0)
    # extreme Ritz values converge first
    ev = np.linalg.eigvalsh(A.toarray())
    assert abs(theta[-1] - ev[-1]) < 1e-6 * ev[-1]
    B = ritz_rhs(V, 400, rng=3)
    np.testing.assert_allclose(np.linalg.norm(B, axis=1), 1.0, rtol=1e-12)
    c = B @ V  # coefficients in the Ritz basis
    low = np.mean(c[:, :30] ** 2)
    high = np.mean(c[:, 36:] ** 2)
    assert 40 < low / high < 160  # 9² = 81 in expectation
    with pytest.raises(ValueError):
        lanczos_ritz(A, 0)


def test_torch_stencil_matches_matrix():
    torch = pytest.importorskip("torch")
    a = lognormal_field((6, 10), rng=4)
    A = diffusion_matrix(a)
    q = np.random.default_rng(0).standard_normal((2, 6, 10))
    faces = [torch.from_numpy(f[None]).expand(2, *f.shape) for f in face_coefficients(a)]
    Aq = diffusion_apply(faces, torch.from_numpy(q), xp=torch).numpy()
    for k in range(2):
        np.testing.assert_allclose(Aq[k].ravel(), A @ q[k].ravel(), rtol=1e-12, atol=1e-12)


def test_tiny_training_run_is_seeded_and_loadable(tmp_path):
    pytest.importorskip("torch")
    from krylovlab.learned.train import train

    kw = dict(grids=((8, 8), (16, 16)), n_fields=1, ritz=30, batch=4, max_steps=6, minutes=5, seed=7,
              config={"channels": 4}, log_every=3, verbose=False)
    m1, log1 = train(tmp_path / "a.npz", **kw)
    m2, log2 = train(None, **kw)
    assert log1["steps"] == 6 and len(log1["loss_history"]) == 2
    for k in m1.weights:  # same seed, same run (up to threaded float summation order in torch)
        np.testing.assert_allclose(m1.weights[k], m2.weights[k], rtol=1e-4, atol=1e-5)
    loaded = ConvDirectionModel.load(tmp_path / "a.npz", grid=(8, 8))
    assert loaded.config["channels"] == 4
    with np.load(tmp_path / "a.npz", allow_pickle=False) as f:
        assert json.loads(str(f["meta"]))["seed"] == 7


def test_cli_command(tmp_path):
    pytest.importorskip("torch")
    from click.testing import CliRunner

    from krylovlab.learned.cli import train_dcdm

    runner = CliRunner()
    out = tmp_path / "w.npz"
    res = runner.invoke(train_dcdm, ["--out", str(out), "--grids", "8", "--fields", "1", "--ritz", "20",
                                     "--batch", "2", "--max-steps", "2", "--channels", "4", "--log",
                                     str(tmp_path / "log.json")])
    assert res.exit_code == 0, res.output
    assert "saved" in res.output and out.exists()
    assert json.loads((tmp_path / "log.json").read_text())["steps"] == 2
    out2 = tmp_path / "w2.npz"
    res = runner.invoke(train_dcdm, ["--out", str(out2), "--grids", "16", "--fields", "1", "--ritz", "20",
                                     "--batch", "2", "--max-steps", "2", "--channels", "4", "--smooth", "1",
                                     "--jscale", "--coarsen", "--loss", "energy", "--no-bias"])
    assert res.exit_code == 0, res.output
    cfg = ConvDirectionModel.load(out2).config
    assert (cfg["smooth"], cfg["jscale"], cfg["coarsen"], cfg["bias"]) == (1, 1, 1, 0)
    res = runner.invoke(train_dcdm, ["--help"])
    assert res.exit_code == 0 and "--grids" in res.output


def test_registered_on_the_krylovlab_group():
    from click.testing import CliRunner

    from krylovlab.cli import cli

    res = CliRunner().invoke(cli, ["train-dcdm", "--help"])
    assert res.exit_code == 0 and "--seed" in res.output


def test_ritz_rhs_energy_weights_are_exact():
    import scipy.sparse.linalg as spla

    A = diffusion_matrix(lognormal_field((12, 12), rng=2))
    _, V = lanczos_ritz(A, 40, rng=1)
    gram = V.T @ spla.splu(A.tocsc()).solve(V)
    B, quad = ritz_rhs(V, 7, rng=4, gram=gram)
    B2 = ritz_rhs(V, 7, rng=4)
    np.testing.assert_array_equal(B, B2)  # same random stream with or without the weights
    ref = np.array([b @ spla.spsolve(A.tocsc(), b) for b in B])
    np.testing.assert_allclose(quad, ref, rtol=1e-8)


def test_energy_loss_training_with_smoothing_and_coarsening(tmp_path):
    pytest.importorskip("torch")
    from krylovlab.learned import DCDM
    from krylovlab.learned.train import train

    cfg = {"channels": 4, "bias": 0, "smooth": 1, "jscale": 1, "coarsen": 1}
    model, log = train(tmp_path / "e.npz", grids=((16, 16),), n_fields=1, ritz=40, batch=4, max_steps=4, minutes=5,
                       seed=3, config=cfg, log_every=2, verbose=False, loss="energy")
    assert log["loss"] == "energy" and log["steps"] == 4
    # the energy loss is a fraction of the error: in [0, 1] up to rounding
    assert all(-1e-3 <= v <= 1.0 + 1e-3 for v in log["loss_history"])
    loaded = ConvDirectionModel.load(tmp_path / "e.npz")
    assert loaded.config["coarsen"] == 1 and loaded.config["smooth"] == 1
    A = diffusion_matrix(lognormal_field((16, 16), rng=8))
    b = np.random.default_rng(0).standard_normal(256)
    res = DCDM(A, grid=(16, 16), model=tmp_path / "e.npz", rtol=1e-8, maxiter=500).solve(b)
    assert res.converged and np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b)
    with pytest.raises(ValueError, match="loss"):
        train(None, grids=((8, 8),), n_fields=0, ritz=10, max_steps=1, loss="l1", verbose=False)


def test_dcdm_residuals_are_what_the_model_sees():
    from krylovlab.learned.train import dcdm_residuals

    A = diffusion_matrix(lognormal_field((16, 16), rng=9))
    calls = []

    def model(r):  # a Jacobi direction model that counts its calls
        calls.append(r.copy())
        return r / A.diagonal()

    R, energy = dcdm_residuals(A, (16, 16), model, 3, rng=1, rtol=1e-6)
    # every call of the model, over the 3 solves, is one row
    assert R.shape == (len(calls), 256) and len(calls) > 3
    np.testing.assert_allclose(np.linalg.norm(R, axis=1), 1.0, rtol=1e-12)
    for row, r in zip(R, calls):
        np.testing.assert_allclose(row, r / np.linalg.norm(r), rtol=1e-12)
    dense = np.linalg.inv(A.toarray())
    np.testing.assert_allclose(energy, np.einsum("ij,jk,ik->i", R, dense, R), rtol=1e-9)


def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    pytest.importorskip("torch")
    from krylovlab.learned.train import train

    cfg = {"channels": 4, "bias": 0, "smooth": 1, "jscale": 1, "coarsen": 1}
    base, _ = train(tmp_path / "base.npz", grids=((16, 16),), n_fields=1, ritz=30, batch=4, max_steps=2, minutes=5,
                    seed=1, config=cfg, verbose=False, loss="energy")
    # no steps: the weights come back unchanged (the export/import round trip is exact)
    same, log = train(None, grids=((16, 16),), n_fields=0, ritz=10, max_steps=0, init=tmp_path / "base.npz",
                      verbose=False)
    assert log["steps"] == 0 and log["init"] == str(tmp_path / "base.npz") and same.config == base.config
    for k, w in base.weights.items():
        np.testing.assert_array_equal(same.weights[k], w)
    # on-policy fine-tuning: residuals harvested twice, the weights move and stay finite
    tuned, log = train(None, grids=((16, 16),), n_fields=1, ritz=30, batch=4, max_steps=6, minutes=5, seed=2,
                       init=base, onpolicy=2, onpolicy_rounds=2, verbose=False, loss="energy", log_every=2)
    assert log["steps"] == 6 and log["onpolicy"] == 2 and log["harvests"] == 2
    assert any(not np.array_equal(tuned.weights[k], w) for k, w in base.weights.items())
    assert all(np.all(np.isfinite(w)) for w in tuned.weights.values())
    with pytest.raises(ValueError, match="differs"):
        train(None, grids=((16, 16),), n_fields=0, ritz=10, max_steps=0, init=base, config={"channels": 8},
              verbose=False)
    for bad in (dict(onpolicy=-1), dict(onpolicy=2.5), dict(onpolicy=1, onpolicy_rounds=0),
                dict(onpolicy=1, onpolicy_frac=1.5)):
        with pytest.raises(ValueError, match="onpolicy"):
            train(None, grids=((16, 16),), n_fields=0, ritz=10, max_steps=0, verbose=False, **bad)
