"""Data generation: stored samples meet the tolerance, resume is exact, Dask equals local, errors touch nothing."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import krylovlab
from krylovlab import datagen
from krylovlab.datagen.cli import datagen as datagen_cmd
from krylovlab.problems import get_family

REPO = Path(krylovlab.__file__).resolve().parents[1]
SMALL = dict(grid=8, seed=3, progress=False, shard_size=3)


def _params_of(data, i, fam):
    return {k: v[i] for k, v in data["inputs"].items()}


def _check_dataset(path, n, family="darcy", grid=8, rtol=1e-8):
    data = datagen.load(path)
    fam = get_family(family, grid=grid)
    assert data["solution"].shape == (n, grid, grid)
    assert sorted(data["solve_rank"].tolist()) == list(range(n))
    for i in range(n):
        A, b = fam.assemble(_params_of(data, i, fam))
        x = data["solution"][i].ravel()
        rel = np.linalg.norm(b - A @ x) / np.linalg.norm(b)
        assert rel <= rtol * (1 + 1e-6), (i, rel)
        assert data["residual"][i] == pytest.approx(rel, rel=1e-6, abs=1e-18)
    # the stored inputs are exactly the seeded samples
    for i in range(n):
        ref = fam.sample(datagen.sample_rng(data["meta"]["seed"], i))
        for key, value in ref.items():
            np.testing.assert_array_equal(data["inputs"][key][i], value)
    return data


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
@pytest.mark.parametrize("solver", ["auto", "cg", "direct"])
def test_generate_stores_converged_samples(tmp_path, suffix, solver):
    out = tmp_path / f"d{suffix}"
    summary = datagen.generate("darcy", 7, out, solver=solver, **SMALL)
    assert out.exists() and not (tmp_path / f"d{suffix}.parts").exists()
    data = _check_dataset(out, 7)
    assert summary.solver == data["meta"]["solver"]
    if solver != "auto":
        assert summary.solver == solver
    assert summary.max_residual <= 1e-8
    assert "samples/s" in summary.report()
    # the solving phase is part of the call, and its rate counts every sample
    assert 0 < summary.solve_seconds < summary.seconds
    assert summary.solve_rate == pytest.approx(7 / summary.solve_seconds)


@pytest.mark.parametrize("family, solver", [("convdiff", "gmres"), ("helmholtz", "direct"), ("poisson", "cg"),
                                            ("heat", "cg")])
def test_other_families(tmp_path, family, solver):
    out = tmp_path / "f.npz"
    datagen.generate(family, 4, out, solver=solver, **SMALL)
    _check_dataset(out, 4, family=family)


def test_resume_after_interruption_is_identical(tmp_path, monkeypatch):
    ref = tmp_path / "ref.h5"
    datagen.generate("darcy", 10, ref, solver="cg", **SMALL)

    out = tmp_path / "run.h5"
    real = datagen.pipeline.run_shard
    calls = {"n": 0}

    def crashing(*args, **kw):
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies after two shards
        calls["n"] += 1
        return real(*args, **kw)

    monkeypatch.setattr(datagen.pipeline, "run_shard", crashing)
    with pytest.raises(KeyboardInterrupt):
        datagen.generate("darcy", 10, out, solver="cg", **SMALL)
    assert not out.exists() and len(list((tmp_path / "run.h5.parts").glob("shard-*.npz"))) == 2
    # the dataset filled so far lived in the work folder and was removed; nothing else was left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.h5", "run.h5.parts"]
    assert not list((tmp_path / "run.h5.parts").glob("*.tmp"))
    monkeypatch.setattr(datagen.pipeline, "run_shard", real)
    summary = datagen.generate("darcy", 10, out, solver="cg", **SMALL)
    assert summary.resumed_shards == 2
    shards = datagen.load(out)["meta"]["shard_size"]
    assert summary.resumed_samples == 2 * shards  # the rate while solving counts only the samples solved now
    assert summary.solve_rate == pytest.approx((10 - 2 * shards) / summary.solve_seconds)
    _assert_same(datagen.load(ref), datagen.load(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.h5", "run.h5"]


def _assert_same(a, b, exact=True):
    assert a["inputs"].keys() == b["inputs"].keys()
    for key in a["inputs"]:
        np.testing.assert_array_equal(a["inputs"][key], b["inputs"][key])
    for key in ("iterations", "solve_rank"):
        np.testing.assert_array_equal(a[key], b[key])
    if exact:
        np.testing.assert_array_equal(a["solution"], b["solution"])
    else:
        np.testing.assert_allclose(a["solution"], b["solution"], rtol=1e-5, atol=1e-12)


def test_failed_shard_write_is_raised(tmp_path, monkeypatch):
    """A local run writes its shard files on a second thread: a failed write stops the run with that error,
    leaves no dataset, and the shards stored stay for a rerun, which redoes the rest."""
    real = datagen.storage.write_npz
    calls = {"n": 0}

    def failing(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(*args, **kw)

    monkeypatch.setattr(datagen.storage, "write_npz", failing)
    out = tmp_path / "w.h5"
    with pytest.raises(OSError, match="disk full"):
        datagen.generate("darcy", 12, out, solver="cg", **SMALL)
    assert not out.exists()
    # the first shard was stored, the second was not; one solved meanwhile may have been stored after it
    stored = sorted(p.name for p in (tmp_path / "w.h5.parts").glob("shard-*.npz"))
    assert stored[0] == "shard-00000.npz" and "shard-00001.npz" not in stored and len(stored) <= 2
    monkeypatch.setattr(datagen.storage, "write_npz", real)
    summary = datagen.generate("darcy", 12, out, solver="cg", **SMALL)
    assert summary.resumed_shards == len(stored)
    _check_dataset(out, 12)


def test_resume_after_kill_9(tmp_path):
    """A real SIGKILL in the middle of a run, then the same call again."""
    out = tmp_path / "k.npz"
    script = textwrap.dedent(f"""
        import time, krylovlab.datagen as dg, krylovlab.datagen.pipeline as pl
        real = pl.run_shard
        def slow(*a, **k):
            r = real(*a, **k); time.sleep(0.5); return r
        pl.run_shard = slow
        dg.generate("darcy", 12, {str(out)!r}, solver="cg", grid=8, seed=3, progress=False, shard_size=2)
    """)
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    parts = tmp_path / "k.npz.parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("shard-*.npz"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run finished before it could be killed"
    datagen.generate("darcy", 12, out, solver="cg", grid=8, seed=3, progress=False, shard_size=2)
    ref = tmp_path / "ref.npz"
    datagen.generate("darcy", 12, ref, solver="cg", grid=8, seed=3, progress=False, shard_size=2)
    _assert_same(datagen.load(ref), datagen.load(out))


@pytest.mark.parametrize("solver, grid", [("cg", 8), ("amg-cg", 16)])
def test_dask_local_cluster_matches_local_run(tmp_path, solver, grid, monkeypatch):
    """The same dataset, bit for bit: with amg-cg, shards solved at the same time on the two worker threads
    each take a hierarchy built from the same reference matrix, as the local run's shards do.  The
    calibration counts the worker threads as one process, as the local run is: they share its setup."""
    pytest.importorskip("dask.distributed")
    from krylovlab.datagen import strategies

    real = datagen.pipeline._calibrate
    processes = []

    def calibrate(*args):
        processes.append(args[-1])
        return real(*args)

    monkeypatch.setattr(datagen.pipeline, "_calibrate", calibrate)

    local, dist = tmp_path / "local.h5", tmp_path / "dist.h5"
    options = {**SMALL, "grid": grid}
    strategies.clear_shared()
    datagen.generate("darcy", 8, local, solver=solver, **options)
    strategies.clear_shared()
    summary = datagen.generate("darcy", 8, dist, solver=solver, workers=2, **options)
    assert summary.warmup_seconds > 0  # waiting for the cluster is reported
    assert 0 < summary.solve_seconds < summary.seconds - summary.warmup_seconds
    assert summary.workers == 2
    assert processes == [1, 1]
    _assert_same(datagen.load(local), datagen.load(dist), exact=True)
    _check_dataset(dist, 8, grid=grid)


def test_lost_worker_costs_only_its_shard(tmp_path):
    """A worker process killed mid-run: its shard is redone elsewhere, the shards it had finished are not
    solved again, and the dataset is the one a local run gives."""
    distributed = pytest.importorskip("dask.distributed")
    import threading

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        out, ref = tmp_path / "d.npz", tmp_path / "ref.npz"
        options = dict(solver="jacobi-cg", grid=48, seed=5, progress=False, shard_size=2)
        pids = list(client.run(os.getpid).values())
        parts = tmp_path / "d.npz.parts"
        killed = {}

        def kill_one():
            deadline = time.time() + 120
            while time.time() < deadline and len(list(parts.glob("shard-*.npz"))) < 6:
                time.sleep(0.01)
            killed["done before"] = len(list(parts.glob("shard-*.npz")))
            os.kill(pids[0], signal.SIGKILL)

        watcher = threading.Thread(target=kill_one)
        watcher.start()
        with distributed.get_task_stream(client) as stream:
            datagen.generate("darcy", 40, out, scheduler=cluster.scheduler_address, **options)
        watcher.join()
        assert killed["done before"] < 20, "every shard finished before the worker was killed"
        runs = [t["key"] for t in stream.data if "krylovlab-shard" in str(t["key"])]
        # every shard solved to the end, and at most one of them twice: the killed worker's shard, when it
        # died between writing its file and reporting it done (its earlier ones, about 3, are not redone)
        assert len(set(runs)) == 20 and len(runs) <= 21, sorted(runs)
        datagen.generate("darcy", 40, ref, **options)
        _assert_same(datagen.load(ref), datagen.load(out), exact=True)
    finally:
        client.close()
        cluster.close()


def test_dask_start_failure_is_raised(tmp_path, monkeypatch):
    """A cluster that cannot start is an error in the driver, not a hang, and leaves no dataset."""
    pytest.importorskip("dask.distributed")

    def broken(self, workers, scheduler):
        time.sleep(0.2)
        raise OSError("no cluster today")

    monkeypatch.setattr(datagen.pipeline._Connection, "_open", broken)
    out = tmp_path / "d.h5"
    with pytest.raises(OSError, match="no cluster today"):
        datagen.generate("darcy", 40, out, solver="cg", workers=2, **{**SMALL, "shard_size": 1})
    assert not out.exists()


@pytest.mark.parametrize("call, exc, match", [
    (lambda p: datagen.generate("navier", 3, p / "x.h5", progress=False), ValueError, "unknown problem family"),
    (lambda p: datagen.generate("darcy", 3, p / "x.h5", grid=2, progress=False), ValueError, "at least 4"),
    (lambda p: datagen.generate("darcy", 3, p / "missing" / "x.h5", progress=False), FileNotFoundError, "exist"),
    (lambda p: datagen.generate("darcy", 3, p / "x.csv", progress=False), ValueError, ".h5"),
    (lambda p: datagen.generate("darcy", 0, p / "x.h5", progress=False), ValueError, "n_samples"),
    (lambda p: datagen.generate("darcy", 3, p / "x.h5", solver="magic", progress=False), ValueError, "solver"),
    (lambda p: datagen.generate("convdiff", 3, p / "x.h5", solver="cg", progress=False), ValueError, "solver"),
    (lambda p: datagen.generate("convdiff", 3, p / "x.h5", solver="gmg-cg", progress=False), ValueError, "solver"),
])
def test_bad_arguments_touch_nothing(tmp_path, call, exc, match):
    with pytest.raises(exc, match=match):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder(tmp_path, monkeypatch):
    """The writability check (simulated: tests often run as root, who can write anywhere)."""
    monkeypatch.setattr(datagen.pipeline.os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError, match="not writable"):
        datagen.generate("darcy", 3, tmp_path / "x.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_target_path(tmp_path):
    """A path whose parent is a regular file cannot be written, whoever runs the test."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises((FileNotFoundError, NotADirectoryError)):
        datagen.generate("darcy", 3, blocker / "x.h5", progress=False)
    assert blocker.read_text() == "x"


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "d.npz"
    out.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite"):
        datagen.generate("darcy", 3, out, **SMALL)
    assert out.read_bytes() == b"precious" and sorted(tmp_path.iterdir()) == [out]
    datagen.generate("darcy", 3, out, overwrite=True, **SMALL)
    _check_dataset(out, 3)


def test_cli(tmp_path):
    runner = CliRunner()
    out = tmp_path / "c.h5"
    res = runner.invoke(datagen_cmd, ["darcy", "--grid", "8", "--samples", "5", "--out", str(out), "--no-progress",
                                      "--shard-size", "2"])
    assert res.exit_code == 0, res.output
    assert "speedup over independent scipy" in res.output
    _check_dataset(out, 5)
    res = runner.invoke(datagen_cmd, ["darcy", "--grid", "8", "--samples", "5", "--out", str(out), "--no-progress"])
    assert res.exit_code != 0 and "overwrite" in res.output
    res = runner.invoke(datagen_cmd, ["--help"])
    assert res.exit_code == 0 and "Examples" in res.output


@pytest.mark.parametrize("precision", ["double", "single"])
@pytest.mark.parametrize("dim, grid", [(2, 24), (3, 10)])
def test_fast_galerkin_update_equals_triple_products(dim, grid, precision):
    """The linear-map update of the coarse operators gives R·A·P of the new matrix, and the same V-cycle
    (to rounding in double precision, to float32's in single)."""
    import scipy.sparse as sp

    from krylovlab.datagen._galerkin import FastGalerkin
    from krylovlab.datagen.strategies import _seeded_amg

    fam = get_family("darcy", grid=grid, dim=dim)
    (A0, _), (A1, b) = [fam.assemble(fam.sample(datagen.sample_rng(5, i))) for i in range(2)]
    ref = _seeded_amg(A0, precision="double")  # seeded: both builds give the same P and R
    ref.update_operator(A1, rebuild=False)
    amg = _seeded_amg(A0, precision=precision)
    tol = 1e-12 if precision == "double" else 2e-6
    fast = FastGalerkin(amg, symmetric=True)
    assert all(plan.dtype == amg.dtype for plan in fast.plans)
    assert all(plan.symmetric for plan in fast.plans)  # the upper-triangle passes are in use
    fast.update(A1)
    lv = amg.ml.levels
    assert len(lv) >= 3
    for k in range(len(lv) - 1):
        np.testing.assert_allclose(sp.csr_matrix(ref.ml.levels[k].P).toarray(), sp.csr_matrix(lv[k].P).toarray())
        rap = (lv[k].R @ ref._As[k] @ lv[k].P).toarray()  # in double, from the double-precision hierarchy
        np.testing.assert_allclose(amg._As[k + 1].toarray(), rap, rtol=tol, atol=tol * np.abs(rap).max())
    r = np.random.default_rng(0).standard_normal(A1.shape[0])
    z = amg.apply(r)
    assert z.dtype == np.float64  # a single-precision cycle answers in the vector's precision
    np.testing.assert_allclose(z, ref.apply(r), rtol=1e3 * tol, atol=1e3 * tol * np.abs(ref.apply(r)).max())
    with pytest.raises(ValueError, match="pattern"):
        fast.update(sp.eye(A1.shape[0], format="csr"))


@pytest.mark.parametrize("symmetric", [False, True])
def test_galerkin_plan_equals_triple_product(symmetric):
    """R·A·P through the plan equals scipy's product for new values on the same pattern, in both modes."""
    import scipy.sparse as sp

    from krylovlab.datagen._galerkin import GalerkinPlan

    rng = np.random.default_rng(3)
    n, nc = 60, 17
    A = sp.random(n, n, density=0.08, random_state=rng, format="csr") + sp.eye(n, format="csr")
    P = sp.random(n, nc, density=0.15, random_state=rng, format="csr")
    if symmetric:
        A = (A + A.T).tocsr()
        R = P.T.tocsr()
    else:
        R = sp.random(nc, n, density=0.15, random_state=rng, format="csr")
    A.sort_indices()
    plan = GalerkinPlan(A, R, P, symmetric=True)
    assert plan.symmetric == symmetric  # the mirrored upper triangle only when R is Pᵀ
    for _ in range(2):
        B = A.copy()
        B.data = rng.standard_normal(B.nnz)
        if symmetric:
            B = ((B + B.T) / 2).tocsr()
            B.sort_indices()
        assert np.array_equal(B.indptr, A.indptr) and np.array_equal(B.indices, A.indices)
        got = sp.csr_matrix((plan.apply(B.data), plan.indices, plan.indptr), shape=(nc, nc)).toarray()
        want = (R @ B @ P).toarray()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13 * np.abs(want).max())
        if symmetric:
            assert np.array_equal(got, got.T)
    with pytest.raises(ValueError, match="pattern"):
        plan.apply(np.ones(A.nnz + 1))


@pytest.mark.parametrize("solver", ["amg-cg", "gmg-cg"])
def test_amg_shards_do_not_depend_on_what_ran_before(tmp_path, solver):
    """The per-process AMG hierarchy is shared by shards; a shard's output must not depend on earlier shards."""
    from krylovlab.datagen import pipeline, storage, strategies

    cfg = get_family("darcy", grid=12, dim=3).config()
    strategies._SHARED_AMG.clear()
    pipeline.run_shard(cfg, 1, [4, 5, 6], solver, 1e-8, str(tmp_path / "b_alone.npz"), 0)
    strategies._SHARED_AMG.clear()
    pipeline.run_shard(cfg, 1, [0, 1, 2, 3], solver, 1e-8, str(tmp_path / "a.npz"), 0)
    pipeline.run_shard(cfg, 1, [4, 5, 6], solver, 1e-8, str(tmp_path / "b_after.npz"), 0)
    alone, after = storage.read_npz(tmp_path / "b_alone.npz"), storage.read_npz(tmp_path / "b_after.npz")
    assert set(alone["solver"]) == {solver}
    for key in alone:
        np.testing.assert_array_equal(alone[key], after[key])


@pytest.mark.parametrize("solver", ["amg-cg", "gmg-cg"])
def test_resume_with_amg_is_identical(tmp_path, monkeypatch, solver):
    ref = tmp_path / "ref.npz"
    datagen.generate("darcy", 9, ref, solver=solver, grid=16, seed=2, progress=False, shard_size=3)
    out = tmp_path / "run.npz"
    real = datagen.pipeline.run_shard
    calls = {"n": 0}

    def crashing(*args, **kw):
        if calls["n"] == 1:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(*args, **kw)

    monkeypatch.setattr(datagen.pipeline, "run_shard", crashing)
    with pytest.raises(KeyboardInterrupt):
        datagen.generate("darcy", 9, out, solver=solver, grid=16, seed=2, progress=False, shard_size=3)
    monkeypatch.setattr(datagen.pipeline, "run_shard", real)
    datagen.strategies._SHARED_AMG.clear()  # as in a fresh process
    datagen.generate("darcy", 9, out, solver=solver, grid=16, seed=2, progress=False, shard_size=3)
    _assert_same(datagen.load(ref), datagen.load(out))
    _check_dataset(out, 9, grid=16)


@pytest.mark.parametrize("n, size", [(200, 25), (7, 7), (32, 32), (33, 17), (1000, 32)])
def test_default_shard_size(n, size):
    from krylovlab.datagen.pipeline import default_shard_size

    assert default_shard_size(n) == size
    count = -(-n // size)
    assert count == 1 or count % 2 == 0


@pytest.mark.parametrize("compression", ["lzf", "gzip"])
def test_compressed_hdf5_reads_back(tmp_path, compression):
    out = tmp_path / "c.h5"
    datagen.generate("darcy", 4, out, solver="cg", compression=compression, **SMALL)
    _check_dataset(out, 4)
    with pytest.raises(ValueError, match="compression"):
        datagen.generate("darcy", 4, tmp_path / "d.h5", compression="zip", **SMALL)


@pytest.mark.parametrize("name", ["w.h5", "w.npz"])
def test_dataset_writer_refuses_bad_input_and_leaves_nothing(tmp_path, name):
    from krylovlab.datagen import storage

    with pytest.raises(ValueError, match="compression"):
        storage.DatasetWriter(tmp_path / name, 3, compression="zip")
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        with storage.DatasetWriter(tmp_path / name, 3) as writer:
            writer.add([0, 3], {"solution": np.zeros((2, 4, 4))})
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        with storage.DatasetWriter(tmp_path / name, 3) as writer:
            writer.add([-1], {"solution": np.zeros((1, 4, 4))})
    assert list(tmp_path.iterdir()) == []  # no target, no temporary file


def test_merge_places_rows_by_sample_index(tmp_path):
    """Shards hold interleaved samples and solver names of different lengths; the merge puts every row at its
    sample index and refuses shards that do not cover every sample exactly once."""
    from krylovlab.datagen import pipeline, storage

    fam = get_family("darcy", grid=4)
    shards = [[3, 0, 4], [1, 5, 2]]
    files = []
    for k, idx in enumerate(shards):
        idx = np.asarray(idx)
        names = ["cg"] * 3 if k == 0 else ["cg", "cg->direct", "cg"]
        arrays = {"inputs__a": idx[:, None, None] + np.zeros((3, 6, 6)), "indices": idx,
                  "solution": -idx[:, None, None] + np.zeros((3, 4, 4)), "iterations": 10 * idx,
                  "residual": 1e-9 * (idx + 1), "solver": np.asarray(names)}
        files.append(tmp_path / f"shard-{k}.npz")
        storage.write_npz(files[-1], arrays, sync=False)
    plan = {"request": {"n_samples": 6, "seed": 0, "rtol": 1e-8, "order": "auto", "shard_size": 3},
            "order": [3, 0, 4, 1, 5, 2], "solver": "cg", "calibration": {}, "baseline": {}, "version": "test"}
    for out in ("out.h5", "out.npz"):
        merge = pipeline._Merge(tmp_path / out, 6, None)
        for f in files[::-1]:  # in any order
            merge.add(f)
        summary = merge.commit(plan, fam)
        assert summary.mean_iterations == 25 and summary.max_residual == pytest.approx(6e-9)
        data = datagen.load(tmp_path / out)
        np.testing.assert_array_equal(data["inputs"]["a"][:, 0, 0], np.arange(6))
        np.testing.assert_array_equal(data["solution"][:, 0, 0], -np.arange(6))
        np.testing.assert_array_equal(data["iterations"], 10 * np.arange(6))
        assert data["solver"].tolist() == ["cg", "cg", "cg", "cg", "cg", "cg->direct"]
        np.testing.assert_array_equal(data["solve_rank"], [1, 3, 5, 0, 2, 4])
        assert data["meta"]["solver"] == "cg"
    for out in ("bad.h5", "bad.npz"):
        merge = pipeline._Merge(tmp_path / out, 6, None)
        merge.add(files[0])
        merge.add(files[0])
        with pytest.raises(RuntimeError, match="exactly once"):
            merge.commit(plan, fam)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "out.npz", "shard-0.npz", "shard-1.npz"]


@pytest.mark.parametrize("solver, used", [("amg-cg", "none"), ("direct", "none"), ("cg", "skr"), ("rcg", "skr")])
def test_auto_order_sorts_only_for_strategies_that_gain(tmp_path, solver, used):
    out = tmp_path / "x.npz"
    datagen.generate("darcy", 9, out, solver=solver, grid=12, seed=4, progress=False, shard_size=3)
    data = _check_dataset(out, 9, grid=12)
    assert data["meta"]["order"] == "auto" and data["meta"]["order_used"] == used
    rank = data["solve_rank"].tolist()
    if used == "none":
        assert rank == list(range(9))
    else:  # the greedy tour: starts at sample 0 and is (for these fields) not the index order
        assert rank[0] == 0 and rank != list(range(9))
    forced = tmp_path / "forced.npz"
    datagen.generate("darcy", 9, forced, solver=solver, order="skr", grid=12, seed=4, progress=False, shard_size=3)
    meta = datagen.load(forced)["meta"]
    assert meta["order_used"] == "skr"


def test_shards_at_the_same_time_take_hierarchies_of_the_reference():
    """Two amg-cg shards running at once in one process (Dask worker threads) each hold a hierarchy, both built
    from the reference matrix, so each gives what it would alone; a later shard reuses a free one."""
    from krylovlab.datagen import strategies
    from krylovlab.datagen.pipeline import _reference

    fam = get_family("darcy", grid=12, dim=2)
    systems = [fam.assemble(fam.sample(datagen.sample_rng(4, i))) for i in range(3)]
    strategies.clear_shared()
    ref = _reference(fam, 4, 0)
    first, second = (strategies.make("amg-cg", fam, 1e-8, ref) for _ in range(2))
    x1, _ = first.solve(*systems[1])
    x2, _ = second.solve(*systems[2])  # the first still holds its hierarchy: a second one from the reference
    pool = strategies._SHARED_AMG[("amg-cg", ref[0])]
    assert len(pool) == 2 and first._solver is not second._solver
    # the second is an unpickled copy of the first build (no second build), with its own packed arrays
    assert ("amg-cg", ref[0]) in strategies._TEMPLATES
    assert first._solver.amg._packed.a_dat is not second._solver.amg._packed.a_dat
    assert np.shares_memory(second._fast.mats[1].data, second._solver.amg._packed.a_dat)  # views rebound on unpickling
    for a, b in zip(first._solver.amg.ml.levels[:-1], second._solver.amg.ml.levels[:-1]):
        assert (a.P != b.P).nnz == 0
    first.close()
    second.close()
    alone = strategies.make("amg-cg", fam, 1e-8, ref)
    np.testing.assert_array_equal(alone.solve(*systems[2])[0], x2)  # a free pooled hierarchy, same answer
    assert len(pool) == 2
    alone.close()
    strategies.clear_shared()


def test_single_threaded_limits_blas_and_numba():
    """Inside `single_threaded` every BLAS pool and numba run one thread; the settings come back after."""
    import numba
    from threadpoolctl import threadpool_info

    from krylovlab.datagen.pipeline import single_threaded

    def blas():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before, numba_before = blas(), numba.get_num_threads()
    assert before  # numpy's BLAS at least
    with single_threaded():
        assert set(blas()) == {1}
        assert numba.get_num_threads() == 1
        with single_threaded():  # nested (a worker thread inside the driver's block): still one
            assert set(blas()) == {1}
        assert set(blas()) == {1}
    assert blas() == before and numba.get_num_threads() == numba_before


def test_single_threaded_restores_blas_across_threads(monkeypatch):
    """Worker threads enter and leave `single_threaded` interleaved (A in, B in, A out, B out).  With a
    process-wide BLAS setting (a stand-in here: how OpenBLAS's setting looks from other threads varies by
    version), the limit holds while any thread is inside and the setting from before the first comes back
    after the last leaves.  Each thread restoring what it saw on entry would leave B's view: one thread."""
    import threading

    from krylovlab.datagen.pipeline import single_threaded
    from krylovlab.krylov import _threads

    setting = {"threads": 4}

    class ProcessWideLimit:  # a limiter's context protocol over one process-wide number
        def __init__(self, limits=None, user_api=None):
            self.limits = limits

        def __enter__(self):
            self.saved = setting["threads"]
            setting["threads"] = self.limits
            return self

        def __exit__(self, *exc):
            setting["threads"] = self.saved

    class Controller:  # stands in for the process's `threadpoolctl.ThreadpoolController`
        def limit(self, limits=None, user_api=None):
            return ProcessWideLimit(limits, user_api)

    monkeypatch.setattr(_threads, "_controller", Controller())
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with single_threaded():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with single_threaded():
            b_in.set()
            a_out.wait(5)
            seen["inside after A left"] = setting["threads"]

    threads = [threading.Thread(target=f) for f in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["inside after A left"] == 1
    assert setting["threads"] == 4


def test_calibration_does_not_time_compilation(monkeypatch):
    """A strategy whose kernels compile only for matrices past a size (as diagonal storage and red–black
    sweeps do from 10 000 rows) is warmed up on a real system: the compilation goes to the warm-up, not
    to the timed solves (a cold first run once picked the wrong strategy that way); an AMG hierarchy
    the warm-up builds for the process is still counted, as setup."""
    import numba

    from krylovlab.datagen import pipeline, strategies

    compiled = []

    class CompilesForBigMatrices(strategies.CGWarm):
        def solve(self, A, b):
            if A.shape[0] >= 100 and not compiled:
                kernel = numba.njit(lambda v: np.sqrt(v * v + 1.0).sum())  # a new function: compiled now
                compiled.append(kernel(np.ones(3)))
            return super().solve(A, b)

    monkeypatch.setitem(strategies._CLASSES, "cg", CompilesForBigMatrices)
    fam = get_family("darcy", grid=16, dim=2)  # 256 rows; the tiny member has 64
    order = np.arange(3)
    best, timings, _, warmup = pipeline._calibrate(order, fam, 0, 1e-8, 3, "cg", 1, 3)
    assert compiled and best == "cg"
    steady = []
    s = strategies.make("cg", fam, 1e-8)
    for i in range(3):
        A, b = fam.assemble(fam.sample(datagen.sample_rng(0, i)))
        t0 = time.thread_time()
        s.solve(A, b)
        steady.append(time.thread_time() - t0)
    # the estimate (first solve counted whole, shard_size=1) is a solve, not a solve plus a compilation
    assert warmup >= 0.02  # numba needs tens of milliseconds for any function
    assert timings["cg"] < 0.5 * warmup + 5 * max(steady)
    # amg-cg: the warm-up built the pooled hierarchy; its build time still enters the estimate
    strategies.clear_shared()
    _, t_amg, _, _ = pipeline._calibrate(order, fam, 0, 1e-8, 3, "amg-cg", 1, 3)
    clock = pipeline._solve_clock()
    t0 = clock()
    strategies.make("amg-cg", fam, 1e-8).solve(*fam.assemble(fam.sample(datagen.sample_rng(0, 0))))
    build_and_solve = clock() - t0
    assert t_amg["amg-cg"] >= 0.25 * build_and_solve  # the setup amortised over n_samples / processes = 3
    strategies.clear_shared()


def test_grid_multigrid_is_a_candidate_for_spd_grid_families_only():
    from krylovlab.datagen import strategies

    assert "gmg-cg" in strategies.candidates(get_family("darcy", grid=32, dim=3))
    assert "gmg-cg" not in strategies.available(get_family("convdiff", grid=32))
    s = strategies.make("gmg-cg", get_family("darcy", grid=10, dim=3), 1e-8)
    fam = get_family("darcy", grid=10, dim=3)
    A, b = fam.assemble(fam.sample(datagen.sample_rng(0, 0)))
    x, its = s.solve(A, b)
    assert s._solver.amg.kind == "grid" and 0 < its <= 10
    assert np.linalg.norm(b - A @ x) <= 1e-8 * np.linalg.norm(b)
    s.close()


def test_galerkin_plan_fuses_its_passes_for_an_aggregation():
    """With P an aggregation and R = ½Pᵀ every entry of A lands in one coarse entry: one pass, same values."""
    import scipy.sparse as sp

    from krylovlab.datagen._galerkin import GalerkinPlan
    from krylovlab.gallery import poisson

    A = poisson((9, 8)).tocsr()
    A.sort_indices()
    agg = np.arange(A.shape[0]) // 3
    T = sp.csr_matrix((np.ones(A.shape[0]), (np.arange(A.shape[0]), agg)))
    plan = GalerkinPlan(A, (0.5 * T.T).tocsr(), T)
    assert plan.second is None and plan.first.nnz == A.nnz
    values = np.random.default_rng(1).standard_normal(A.nnz)
    B = sp.csr_matrix((values, A.indices, A.indptr), shape=A.shape)
    got = sp.csr_matrix((plan.apply(values), plan.indices, plan.indptr), shape=(T.shape[1],) * 2).toarray()
    want = (0.5 * T.T @ B @ T).toarray()
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13 * np.abs(want).max())
    # smoothed aggregation's R·(A·P) spreads entries: two passes stay
    P = (sp.eye(A.shape[0]) - 0.3 * A / 4) @ T
    assert GalerkinPlan(A, P.T.tocsr(), P.tocsr()).second is not None


@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf, np.nan])
def test_fast_update_refuses_a_matrix_without_a_positive_diagonal(bad):
    """A new matrix whose diagonal is not positive and finite is refused before the hierarchy uses it."""
    from krylovlab.datagen._galerkin import FastGalerkin
    from krylovlab.datagen.strategies import _seeded_amg

    fam = get_family("darcy", grid=10, dim=3)
    (A0, _), (A1, _) = [fam.assemble(fam.sample(datagen.sample_rng(2, i))) for i in range(2)]
    fast = FastGalerkin(_seeded_amg(A0, kind="grid", grid=fam.grid), symmetric=True)
    fast.update(A1)  # a good one passes
    B = A1.copy()
    B.data[np.flatnonzero(B.indices == np.repeat(np.arange(B.shape[0]), np.diff(B.indptr)))[7]] = bad
    with pytest.raises(ArithmeticError, match="positive diagonal"):
        fast.update(B)


def test_calibration_skips_a_candidate_whose_warm_up_is_already_too_slow(monkeypatch):
    """A candidate without a shared setup whose loose warm-up solve alone takes over twice the best
    estimate is not timed further; a fallback is skipped once the strategy it stands in for was timed."""
    from krylovlab.datagen import pipeline, strategies

    timed = []

    class Slow(strategies.CGWarm):
        name = "cg"

        def solve(self, A, b):
            timed.append(self.rtol)
            time.sleep(0.2)  # wall time: what the warm-up is measured in
            return super().solve(A, b)

    monkeypatch.setitem(strategies._CLASSES, "cg", Slow)
    monkeypatch.setattr(strategies, "candidates", lambda fam: ["jacobi-cg", "cg"])
    fam = get_family("darcy", grid=12, dim=2)
    best, timings, _, _ = pipeline._calibrate(np.arange(3), fam, 0, 1e-8, 3, "auto", 3, 3)
    assert best == "jacobi-cg" and timings["cg"] >= 0.2
    assert timed == [1e-2]  # only the warm-up, at the loose tolerance: no timed solve
    # 3-D: amg-cg stands in for gmg-cg and is not calibrated when gmg-cg worked
    monkeypatch.setattr(strategies, "candidates", lambda fam: ["gmg-cg", "amg-cg"])
    strategies.clear_shared()
    fam3 = get_family("darcy", grid=10, dim=3)
    best, timings, _, _ = pipeline._calibrate(np.arange(3), fam3, 0, 1e-8, 3, "auto", 3, 3)
    assert best == "gmg-cg" and set(timings) == {"gmg-cg"}
