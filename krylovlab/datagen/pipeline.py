"""sample → order → solve with carried state → store, locally or on a Dask cluster.

The plan is deterministic in its arguments: sample ``i`` is drawn from
``numpy.random.default_rng([seed, i])``; the solving order depends only on the
samples' features; the order is cut into contiguous shards of ``shard_size``
samples; each shard is solved from a fresh strategy object (so it never
depends on which worker ran the shard before it) and written atomically as
its own file.  A rerun with the same arguments therefore skips the shards
already on disk and ends with exactly the samples an uninterrupted run
would have produced — after a crash, a ``kill -9`` or a lost Dask worker.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..problems import ProblemFamily, get_family
from . import storage, strategies

__all__ = ["generate", "Summary", "sample_rng"]

_SUFFIXES = (".h5", ".hdf5", ".npz")
_MANIFEST = "manifest.json"


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator sample ``index`` is drawn from (independent of order and sharding)."""
    return np.random.default_rng([int(seed), int(index)])


@dataclasses.dataclass
class Summary:
    """What `generate` did."""

    path: Path
    n_samples: int
    solver: str
    seconds: float
    mean_iterations: float
    max_residual: float
    calibration: dict
    baseline: dict
    resumed_shards: int = 0
    #: one-time cost of compiling kernels (numba JIT) and importing solvers, inside ``seconds``
    warmup_seconds: float = 0.0

    @property
    def samples_per_second(self) -> float:
        return self.n_samples / self.seconds if self.seconds > 0 else math.inf

    @property
    def speedup(self) -> float | None:
        """Estimated speedup over independent scipy solves (from the calibration samples)."""
        per = self.baseline.get("seconds_per_sample")
        if not per or self.seconds <= 0:
            return None
        return per * self.n_samples / self.seconds

    def report(self) -> str:
        lines = [
            f"wrote {self.n_samples} samples to {self.path}",
            f"solver: {self.solver}   time: {self.seconds:.2f} s   {self.samples_per_second:.1f} samples/s   "
            f"mean iterations: {self.mean_iterations:.1f}   max relative residual: {self.max_residual:.2e}",
        ]
        if self.calibration:
            cal = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in sorted(self.calibration.items(), key=lambda kv: kv[1]))
            lines.append(f"calibration (solve time per sample): {cal}")
        if self.speedup is not None:
            per = self.baseline["seconds_per_sample"]
            text = (f"speedup over independent scipy {self.baseline['method']} ({per * 1e3:.1f} ms/sample): "
                    f"{self.speedup:.1f}x")
            if self.warmup_seconds > 0.05 * self.seconds:
                rest = max(self.seconds - self.warmup_seconds, 1e-9)
                text += (f" including {self.warmup_seconds:.1f} s of one-time kernel compilation; "
                         f"{per * self.n_samples / rest:.1f}x without it (later runs reuse the compiled kernels)")
            lines.append(text)
        if self.resumed_shards:
            lines.append(f"resumed: {self.resumed_shards} shards were already on disk")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------- validation
def _check_output(out, overwrite: bool) -> Path:
    out = Path(out)
    if out.suffix not in _SUFFIXES:
        raise ValueError(f"output {out} must end in .h5, .hdf5 or .npz")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise FileNotFoundError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder {parent} is not writable")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    if out.exists() and out.is_dir():
        raise IsADirectoryError(f"{out} is a directory")
    return out


def _resolve_family(family, family_options) -> ProblemFamily:
    if isinstance(family, ProblemFamily):
        if family_options:
            raise TypeError("family options are only accepted with a family name")
        return family
    if not isinstance(family, str):
        raise TypeError(f"family must be a name or a ProblemFamily, got {type(family).__name__}")
    return get_family(family, **family_options)


# ---------------------------------------------------------------------------------- ordering
def _features(fam, n, seed):
    return np.stack([np.asarray(fam.features(fam.sample(sample_rng(seed, i))), dtype=float) for i in range(n)])


def _order(features: np.ndarray, how: str, seed: int) -> np.ndarray:
    n = features.shape[0]
    if how == "auto":
        how = "skr" if n <= 5000 else "scalable"
    if how == "none" or n <= 2:
        return np.arange(n)
    try:
        from ..recycle import ordering
    except ImportError:  # the recycling family is optional here
        ordering = None
    if how == "skr":
        if ordering is not None and hasattr(ordering, "greedy_order"):
            return np.asarray(ordering.greedy_order(features), dtype=np.int64)
        return _greedy(features)
    if how == "scalable":
        if ordering is not None and hasattr(ordering, "scalable_order"):
            return np.asarray(ordering.scalable_order(features, rng=seed), dtype=np.int64)
        return _greedy(features)
    raise ValueError(f"order must be 'auto', 'skr', 'scalable' or 'none', got {how!r}")


def _greedy(features):
    """Greedy nearest-neighbour tour from sample 0 (fallback when krylovlab.recycle is absent)."""
    n = features.shape[0]
    sq = np.einsum("ij,ij->i", features, features)
    visited = np.zeros(n, dtype=bool)
    order = np.empty(n, dtype=np.int64)
    cur = 0
    for k in range(n):
        order[k] = cur
        visited[cur] = True
        if k == n - 1:
            break
        d = sq - 2 * features @ features[cur]
        d[visited] = np.inf
        cur = int(np.argmin(d))
    return order


# ------------------------------------------------------------------------------- one shard
def run_shard(family_config: dict, seed: int, indices, solver: str, rtol: float, target: str) -> str:
    """Solve samples ``indices`` (in this order) and write them atomically to ``target``.

    Runs in the driver or on a Dask worker; depends only on its arguments.
    """
    from threadpoolctl import threadpool_limits

    # BLAS at one thread while solving: numpy's and scipy's OpenBLAS pools spinning next to
    # numba's threads were measured to slow the solves 2-3x on our 2-core machines
    with threadpool_limits(1):
        return _run_shard(family_config, seed, indices, solver, rtol, target)


def _run_shard(family_config, seed, indices, solver, rtol, target):
    config = dict(family_config)
    fam = get_family(config.pop("family"), **config)
    strat = strategies.make(solver, fam, rtol)
    inputs: dict[str, list] = {}
    sols, iters, resid, used = [], [], [], []
    for i in indices:
        params = fam.sample(sample_rng(seed, i))
        A, b = fam.assemble(params)
        name = solver
        try:
            x, it = strat.solve(A, b)
        except (RuntimeError, ArithmeticError):
            x, it = strategies.Direct(fam, rtol).solve(A, b)  # never store an unconverged sample
            name = f"{solver}->direct"
        rel = float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))
        if not rel <= rtol * (1 + 1e-6):
            x, it = strategies.Direct(fam, rtol).solve(A, b)
            name = f"{solver}->direct"
            rel = float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))
            if not rel <= rtol * (1 + 1e-6):
                raise RuntimeError(f"sample {i}: residual {rel:.2e} above rtol={rtol:g} even with a direct solve")
        for key, value in params.items():
            inputs.setdefault(key, []).append(np.asarray(value))
        sols.append(np.asarray(x).reshape(fam.grid))
        iters.append(it)
        resid.append(rel)
        used.append(name)
    arrays = {f"inputs__{k}": np.stack(v) for k, v in inputs.items()}
    arrays.update(indices=np.asarray(indices, dtype=np.int64), solution=np.stack(sols),
                  iterations=np.asarray(iters, dtype=np.int64), residual=np.asarray(resid),
                  solver=np.asarray(used))
    storage.write_npz(Path(target), arrays)
    return target


# ------------------------------------------------------------------------------- calibration
def _per_sample(times, shard_size):
    """Expected solve time per sample over a shard: the first solve pays the setup, the rest run warm."""
    if len(times) < 2:
        return times[0]
    steady = sum(times[1:]) / (len(times) - 1)
    return (times[0] + (shard_size - 1) * steady) / shard_size


def _calibrate(fam, order, seed, rtol, n_cal, requested, shard_size):
    """Time each candidate strategy on the first samples of the order; pick the fastest.

    Each candidate is first compiled on a tiny member of the family (so JIT time
    is not counted) and dropped once it has spent twice the best total.  A
    strategy's cost is its first solve (which pays any setup: a factorisation,
    an AMG hierarchy) amortised over a shard plus its steady per-sample time.
    """
    idx = [int(i) for i in order[:n_cal]]
    systems = [fam.assemble(fam.sample(sample_rng(seed, i))) for i in idx]
    names = strategies.candidates(fam) if requested == "auto" else [requested]
    tiny = get_family(fam.name, **{**_options_of(fam), "grid": 8})
    tiny_system = tiny.assemble(tiny.sample(sample_rng(seed, 0)))
    timings = {}
    warmup = 0.0
    for name in names:
        t0 = time.perf_counter()
        try:
            strategies.make(name, tiny, rtol).solve(*tiny_system)  # JIT / import warm-up
        except (RuntimeError, ArithmeticError):
            pass
        warmup += time.perf_counter() - t0
        strat = strategies.make(name, fam, rtol)
        best = min(timings.values(), default=float("inf"))
        times = []
        try:
            for A, b in systems:
                t0 = time.perf_counter()
                strat.solve(A, b)
                times.append(time.perf_counter() - t0)
                if sum(times) > 2 * best * len(systems):
                    break  # cannot win even if its remaining samples were free
        except (RuntimeError, ArithmeticError):
            continue
        timings[name] = _per_sample(times, shard_size)
    if not timings:
        raise RuntimeError(f"no solver strategy converged on the calibration samples: tried {names}")
    best = min(timings, key=timings.get)
    return best, timings, _baseline(fam, systems, rtol), warmup


def _options_of(fam):
    config = dict(fam.config())
    config.pop("family")
    return config


def _baseline(fam, systems, rtol):
    """Independent scipy solves (CG for SPD families, GMRES(40) otherwise), BLAS at 1 thread."""
    import scipy.sparse.linalg as spla
    from threadpoolctl import threadpool_limits

    spd = fam.symmetric and fam.definite
    method = "cg" if spd else "gmres"
    t0 = time.perf_counter()
    with threadpool_limits(1):
        for A, b in systems:
            if spd:
                spla.cg(A, b, rtol=rtol, maxiter=20 * A.shape[0])
            else:
                spla.gmres(A, b, rtol=rtol, restart=40, maxiter=20 * A.shape[0] // 40 + 1)
    return {"method": method, "seconds_per_sample": (time.perf_counter() - t0) / len(systems)}


# ---------------------------------------------------------------------------------- driver
def generate(family, n_samples: int, out, *, seed: int = 0, solver: str = "auto", rtol: float = 1e-8,
             order: str = "auto", shard_size: int = 32, workers: int | None = None, scheduler: str | None = None,
             overwrite: bool = False, progress: bool = True, calibration_samples: int = 4,
             **family_options) -> Summary:
    """Generate ``n_samples`` solved systems of a PDE family and store them in ``out``.

    Parameters
    ----------
    family : str or ProblemFamily
        A name from `krylovlab.problems.FAMILIES` (options such as ``grid``,
        ``dim`` go in ``family_options``) or a family object.
    n_samples : int
    out : path
        ``.h5``/``.hdf5`` (HDF5, chunked and compressed) or ``.npz``.
    seed : int
        Sample i is drawn from ``default_rng([seed, i])``.
    solver : str
        ``"auto"`` (calibrate on the first samples and pick the fastest),
        or one of ``direct``, ``cg``, ``gmres``, ``amg-cg``, ``gcrodr``, ``rcg``.
    rtol : float
        Every stored sample satisfies ‖b − A x‖ ≤ rtol·‖b‖ (checked).
    order : {"auto", "skr", "scalable", "none"}
        Solving order: greedy nearest-neighbour (Sorting Krylov Recycling),
        its scalable variant for large N, or index order.
    shard_size : int
        Samples per shard (the unit of resumption and of Dask tasks).
    workers : int, optional
        Run on a Dask ``LocalCluster`` with this many single-threaded workers.
    scheduler : str, optional
        Address of an existing Dask scheduler.
    overwrite : bool
        Replace an existing output (and discard unfinished work for it).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    Summary
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if isinstance(shard_size, bool) or not isinstance(shard_size, (int, np.integer)) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer, got {shard_size!r}")
    if not (isinstance(rtol, (int, float)) and 0 < rtol < 1):
        raise ValueError(f"rtol must be in (0, 1), got {rtol!r}")
    if workers is not None and scheduler is not None:
        raise ValueError("give workers or scheduler, not both")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    fam = _resolve_family(family, family_options)
    valid = strategies.available(fam)
    if solver != "auto" and solver not in valid:
        raise ValueError(f"solver {solver!r} does not apply to {fam.name} here; choose from auto, {', '.join(valid)}")
    if order not in ("auto", "skr", "scalable", "none"):
        raise ValueError(f"order must be 'auto', 'skr', 'scalable' or 'none', got {order!r}")
    out = _check_output(out, overwrite)

    t_start = time.perf_counter()
    work = out.with_name(out.name + ".parts")
    request = {"family": fam.config(), "n_samples": int(n_samples), "seed": int(seed), "rtol": float(rtol),
               "solver": solver, "order": order, "shard_size": int(shard_size)}
    plan = None
    if work.exists():
        manifest = work / _MANIFEST
        old = storage.read_json(manifest) if manifest.exists() else None
        if old is not None and old.get("request") == request:
            plan = old
        elif overwrite:
            shutil.rmtree(work)
        else:
            raise FileExistsError(f"{work} holds unfinished work for different arguments; rerun those arguments "
                                  "to resume it, or pass overwrite=True (--overwrite)")
    if plan is None:
        feats = _features(fam, n_samples, seed)
        perm = _order(feats, order, seed)
        chosen, timings, baseline, warmup = _calibrate(fam, perm, seed, rtol, min(calibration_samples, n_samples),
                                                       solver, min(shard_size, n_samples))
        shards = [perm[k:k + shard_size].tolist() for k in range(0, n_samples, shard_size)]
        plan = {"request": request, "order": perm.tolist(), "shards": shards, "solver": chosen,
                "calibration": timings, "baseline": baseline, "version": __version__}
        compile_seconds = warmup
        work.mkdir(exist_ok=True)
        storage.write_json(work / _MANIFEST, plan)
    else:
        compile_seconds = 0.0

    shard_files = [work / f"shard-{k:05d}.npz" for k in range(len(plan["shards"]))]
    done = [k for k, f in enumerate(shard_files) if _shard_ok(f, plan["shards"][k])]
    todo = [k for k in range(len(shard_files)) if k not in set(done)]
    bar = _progress(progress, n_samples, sum(len(plan["shards"][k]) for k in done), plan["solver"])
    args = (fam.config(), int(seed))
    try:
        if todo:
            if workers is None and scheduler is None:
                for k in todo:
                    run_shard(*args, plan["shards"][k], plan["solver"], rtol, str(shard_files[k]))
                    _advance(bar, shard_files[k])
            else:
                _run_dask(args, plan, rtol, shard_files, todo, workers, scheduler, bar)
    finally:
        if bar is not None:
            bar.close()
    summary = _merge(out, work, plan, shard_files, fam, time.perf_counter() - t_start)
    summary.resumed_shards = len(done)
    summary.warmup_seconds = compile_seconds
    shutil.rmtree(work, ignore_errors=True)
    return summary


def _shard_ok(path: Path, indices) -> bool:
    if not path.exists():
        return False
    try:
        data = storage.read_npz(path)
    except Exception:  # a damaged shard is simply redone
        return False
    return np.array_equal(data.get("indices"), np.asarray(indices))


def _progress(enabled, total, initial, solver):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, unit="sample", desc=f"solving ({solver})", dynamic_ncols=True)
    bar.iters = []
    return bar


def _advance(bar, shard_file):
    if bar is None:
        return
    data = storage.read_npz(shard_file)
    bar.iters.extend(data["iterations"].tolist())
    bar.set_postfix(mean_iters=f"{np.mean(bar.iters):.1f}")
    bar.update(len(data["indices"]))


def _run_dask(args, plan, rtol, shard_files, todo, workers, scheduler, bar):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - depends on the optional extra
        raise ImportError("Dask execution needs the 'dist' extra: pip install 'krylovlab[dist]'") from None
    cluster = None
    if scheduler is None:
        single = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                  "MKL_NUM_THREADS": "1"}
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, env=single)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = [client.submit(run_shard, *args, plan["shards"][k], plan["solver"], rtol, str(shard_files[k]),
                                 key=f"krylovlab-shard-{k}-{shard_files[k].parent.name}", retries=3, pure=False)
                   for k in todo]
        for fut in as_completed(futures):
            _advance(bar, Path(fut.result()))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _merge(out, work, plan, shard_files, fam, seconds):
    n = plan["request"]["n_samples"]
    parts = [storage.read_npz(f) for f in shard_files]
    idx = np.concatenate([p["indices"] for p in parts])
    if not np.array_equal(np.sort(idx), np.arange(n)):
        raise RuntimeError("shards do not cover every sample exactly once; rerun with --overwrite")
    where = np.argsort(idx)
    arrays = {}
    for key in parts[0]:
        if key == "indices":
            continue
        name = key.replace("inputs__", "inputs/")
        arrays[name] = np.concatenate([p[key] for p in parts])[where]
    rank = np.empty(n, dtype=np.int64)
    rank[np.asarray(plan["order"])] = np.arange(n)
    arrays["solve_rank"] = rank
    meta = {"family": fam.config(), "seed": plan["request"]["seed"], "rtol": plan["request"]["rtol"],
            "solver": plan["solver"], "order": plan["request"]["order"], "shard_size": plan["request"]["shard_size"],
            "calibration": plan["calibration"], "baseline": plan["baseline"], "krylovlab_version": plan["version"]}
    storage.write_dataset(out, arrays, meta)
    return Summary(out, n, plan["solver"], seconds, float(np.mean(arrays["iterations"])),
                   float(np.max(arrays["residual"])), plan["calibration"], plan["baseline"])
