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

import concurrent.futures
import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
from numba.core.event import install_timer

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
    #: samples in the resumed shards (not solved by this call)
    resumed_samples: int = 0
    #: one-time cost inside ``seconds``: compiling kernels (numba JIT) and importing solvers in this
    #: process, and with Dask, waiting for the cluster to come up after the calibration (the workers'
    #: own start-up inside their first shard is not separated out)
    warmup_seconds: float = 0.0
    #: Dask workers started (0: solved in this process; -1: an existing cluster's)
    workers: int = 0
    #: the solving phase: from the first shard handed out (locally, or to the Dask workers once the
    #: cluster is up) until the last one is merged; no imports, calibration, cluster start or final commit
    solve_seconds: float = 0.0

    @property
    def samples_per_second(self) -> float:
        return self.n_samples / self.seconds if self.seconds > 0 else math.inf

    @property
    def solve_rate(self) -> float:
        """Samples per second while solving (`solve_seconds`): the rate a longer run approaches."""
        solved = self.n_samples - self.resumed_samples
        return solved / self.solve_seconds if self.solve_seconds > 0 else math.nan

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
            f"solver: {self.solver}   time: {self.seconds:.2f} s   {self.samples_per_second:.1f} samples/s"
            + (f" ({self.solve_rate:.1f} while solving)" if self.solve_seconds > 0 else "")
            + f"   mean iterations: {self.mean_iterations:.1f}   max relative residual: {self.max_residual:.2e}",
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
                text += (f" including {self.warmup_seconds:.1f} s of one-time warm-up (kernel compilation"
                         f"{', Dask cluster start' if self.workers else ''}); "
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
#: keep the samples drawn for the ordering in memory (for the local run) up to this many bytes
_KEEP_SAMPLES_BYTES = 512 * 2**20


def _features(fam, n, seed, keep=None):
    """Feature vectors of samples 0 … n−1; the drawn samples go into ``keep`` (a dict) while they fit."""
    feats, kept = [], 0
    for i in range(n):
        params = fam.sample(sample_rng(seed, i))
        feats.append(np.asarray(fam.features(params), dtype=float))
        if keep is not None:
            kept += sum(np.asarray(v).nbytes for v in params.values())
            if kept <= _KEEP_SAMPLES_BYTES:
                keep[i] = params
    return np.stack(feats)


def _resolve_order(how: str, n: int) -> str:
    """The ordering ``how`` stands for with n samples ("auto": greedy up to 5 000, else the scalable one)."""
    if how == "auto":
        return "skr" if n <= 5000 else "scalable"
    return how


def _order(features: np.ndarray, how: str, seed: int) -> np.ndarray:
    n = features.shape[0]
    how = _resolve_order(how, n)
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
def run_shard(family_config: dict, seed: int, indices, solver: str, rtol: float, target: str,
              reference_index: int | None = None, samples: dict | None = None, with_arrays: bool = False,
              write: bool = True):
    """Solve samples ``indices`` (in this order) and write them atomically to ``target``.

    Runs in the driver or on a Dask worker; depends only on its arguments.
    ``reference_index`` (the first sample of the solving order) is the sample
    whose matrix strategies with a costly setup build it on, once per process.
    ``samples`` optionally maps sample indices to their already drawn
    parameters (the same values ``fam.sample`` would draw again).  Returns
    ``target``, or ``(target, arrays)`` with ``with_arrays``: a run in the
    driver's process (locally, or on Dask worker threads) merges the arrays
    without reading the file back.  ``write=False`` leaves writing the file
    to the caller (a local run writes it on another thread, `_solve_locally`).
    """
    with single_threaded():
        arrays = _run_shard(family_config, seed, indices, solver, rtol, reference_index, samples)
    if write:
        _write_shard(target, arrays)
    return (target, arrays) if with_arrays else target


def _write_shard(target, arrays) -> None:
    """The shard file, written atomically but not flushed: it is trusted only once read back whole (`_shard_ok`)."""
    storage.write_npz(Path(target), arrays, sync=False)


_BLAS_LOCK = threading.Lock()
_BLAS_STATE = {"users": 0, "limiter": None}


@contextlib.contextmanager
def single_threaded():
    """BLAS and numba at one thread (restored afterwards).

    Data generation parallelises over samples (Dask workers, one per core),
    not inside a solve: numpy's and scipy's OpenBLAS pools spinning next to
    numba's threads were measured to slow the solves 2-3x on our 2-core
    machines, and threaded numba kernels on a machine that is not idle ran up
    to 30x slower than serial ones (3D Darcy 32³: CG 2.2 s instead of 0.07 s
    per solve).  Serial kernels also give the same summation order — hence
    the same iteration counts — in the driver and on every worker.

    numba's thread count is per thread; the BLAS limit is per process, so it
    is counted: the first of the threads inside (Dask worker threads run
    shards side by side) sets it and the last one out restores what was
    there before the first came in.  (Nested `threadpool_limits` contexts
    left and entered by different threads would restore each other's limit
    and could leave the process at one BLAS thread.)
    """
    import numba

    from ..krylov._threads import controller

    previous = numba.get_num_threads()
    with _BLAS_LOCK:
        if _BLAS_STATE["users"] == 0:
            # through the process's controller: a new one (`threadpool_limits`) scans the loaded libraries
            # again, 1-3 ms for every shard
            limiter = controller().limit(limits=1)
            limiter.__enter__()
            _BLAS_STATE["limiter"] = limiter
        _BLAS_STATE["users"] += 1
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
        with _BLAS_LOCK:
            _BLAS_STATE["users"] -= 1
            if _BLAS_STATE["users"] == 0:
                _BLAS_STATE["limiter"].__exit__(None, None, None)
                _BLAS_STATE["limiter"] = None


def _family(family_config):
    config = dict(family_config)
    return get_family(config.pop("family"), **config)


def _reference(fam, seed, index):
    """``(key, build)`` for `strategies.make`: the matrix of sample ``index``, identified by value."""
    if index is None:
        return None
    key = (json.dumps(fam.config(), sort_keys=True), int(seed), int(index))
    return key, lambda: fam.assemble(fam.sample(sample_rng(seed, index)))[0]


def _run_shard(family_config, seed, indices, solver, rtol, reference_index=None, samples=None):
    """Solve the shard; returns its arrays."""
    fam = _family(family_config)
    strat = strategies.make(solver, fam, rtol, _reference(fam, seed, reference_index))
    try:
        arrays = _solve_samples(fam, strat, seed, indices, solver, rtol, samples or {})
    finally:
        strat.close()
    return arrays


def _solve_samples(fam, strat, seed, indices, solver, rtol, samples):
    inputs: dict[str, list] = {}
    sols, iters, resid, used = [], [], [], []
    for i in indices:
        params = samples.pop(i, None)
        if params is None:
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
    return arrays


# ------------------------------------------------------------------------------- calibration
def _per_sample(times, amortise):
    """Expected solve time per sample: the first solve pays the setup, spread over ``amortise`` samples."""
    if len(times) < 2:
        return times[0]
    steady = sum(times[1:]) / (len(times) - 1)
    return steady + (times[0] - steady) / max(amortise, 1)


def _calibrate(order, fam, seed, rtol, n_cal, requested, shard_size, n_samples, processes=1):
    """Time each candidate strategy on the first samples of the order; pick the fastest.

    Each candidate is first warmed up (so JIT time is not counted): one solve
    of the first system to a loose tolerance — on a tiny member of the family
    for the direct solver, which compiles nothing — and dropped once, after
    two samples, its estimate exceeds 1.5 times the best so far.  Solves are
    timed in CPU time of the calling thread (they run single-threaded, kernels
    and BLAS in that thread), so a Dask cluster starting up meanwhile — its
    scheduler runs in this process — or other jobs on the machine do not bias
    the choice.  A strategy's cost is its steady per-sample time plus its
    setup (the excess of its first solve: a factorisation, an AMG hierarchy),
    spread over a shard — or over all samples a process solves when the setup
    is kept across shards; such a setup is built by the warm-up, and its time
    (the warm-up's, less what numba spent compiling) is counted instead.
    A candidate is dropped after one sample already when that sample took
    more than twice the best estimate — or before any timed solve, with its
    warm-up solve as its estimate, when that alone (net of compilation) took
    so long and it has no setup to build — and a fallback candidate
    (`strategies.fallbacks`) is skipped when the strategy it stands in for
    was timed.
    """
    idx = [int(i) for i in order[:n_cal]]
    systems = [fam.assemble(fam.sample(sample_rng(seed, i))) for i in idx]
    names = strategies.candidates(fam) if requested == "auto" else [requested]
    tiny = get_family(fam.name, **{**_options_of(fam), "grid": 8})
    tiny_system = tiny.assemble(tiny.sample(sample_rng(seed, 0)))
    reference = _reference(fam, seed, int(order[0]))
    timings = {}
    warmup = 0.0
    fallback_for = strategies.fallbacks(fam)
    for name in names:
        if fallback_for.get(name) in timings:
            continue  # the strategy it stands in for works here
        t0 = time.perf_counter()
        # JIT / import warm-up.  A strategy running numba kernels is warmed up on the first calibration
        # system, to a loose tolerance: which kernels it compiles depends on the matrix (diagonal storage
        # from 10 000 rows, red–black AMG sweeps, threaded variants by size), and on a small member
        # the compilation left for the timed solves made a cold first run pick the wrong strategy (2D
        # Darcy 128²: amg-cg timed at 93 instead of 8 ms per sample, jacobi-cg chosen, 60 s instead of
        # 3 s).  Its AMG hierarchy goes to the process's pool (`reference`) and is reused below.
        real = strategies.compiled(name)
        warm = strategies.make(name, *((fam, max(rtol, 1e-2), reference) if real else (tiny, rtol)))
        compiling = []
        try:
            with install_timer("numba:compile", compiling.append):
                warm.solve(*(systems[0] if real else tiny_system))
        except (RuntimeError, ArithmeticError):
            pass
        finally:
            warm.close()
        spent = time.perf_counter() - t0
        warmup += sum(compiling) if real else spent  # compilation (and imports), not the shared setup
        # what the warm-up built for the whole process (an AMG hierarchy in the pool), net of compilation:
        # the timed solves below reuse it, so it is added to their estimate as setup
        shared_setup = max(spent - sum(compiling), 0.0) if real else 0.0
        best = min(timings.values(), default=float("inf"))
        if real and not strategies.shares_setup(name) and shared_setup > 2.0 * best:
            # its solve to the loose tolerance alone took over twice the best estimate: a lower bound for a
            # full solve, recorded as its estimate (3D Darcy 32³: rcg, 29-48 ms against 11.5 ms)
            timings[name] = shared_setup
            continue
        clock = _solve_clock()
        strat = strategies.make(name, fam, rtol, reference)
        amortise = max(n_samples // max(processes, 1), 1) if strat.setup_shared else shard_size
        times = []
        try:
            for A, b in systems:
                t0 = clock()
                strat.solve(A, b)
                times.append(clock() - t0)
                if len(times) >= 2 and _per_sample(times, amortise) > 1.5 * best or times[0] > 2.0 * best:
                    break  # clearly slower than the best so far
        except (RuntimeError, ArithmeticError):
            continue
        finally:
            strat.close()
        timings[name] = _per_sample(times, amortise) + (shared_setup / amortise if strat.setup_shared else 0.0)
    if not timings:
        raise RuntimeError(f"no solver strategy converged on the calibration samples: tried {names}")
    best = min(timings, key=timings.get)
    return best, timings, _baseline(fam, systems[:1], rtol), warmup


def _solve_clock():
    """CPU-time clock for a single-threaded solve: this thread's, unless numba's ``workqueue`` layer runs
    even a one-thread parallel region on a pool thread (then the whole process's)."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        layer = None
    return time.process_time if layer == "workqueue" else time.thread_time


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
    t0 = time.thread_time()
    with threadpool_limits(1):
        for A, b in systems:
            if spd:
                spla.cg(A, b, rtol=rtol, maxiter=20 * A.shape[0])
            else:
                spla.gmres(A, b, rtol=rtol, restart=40, maxiter=20 * A.shape[0] // 40 + 1)
    return {"method": method, "seconds_per_sample": (time.thread_time() - t0) / len(systems)}


# ---------------------------------------------------------------------------------- driver
def generate(family, n_samples: int, out, *, seed: int = 0, solver: str = "auto", rtol: float = 1e-8,
             order: str = "auto", shard_size: int | None = None, workers: int | None = None, scheduler: str | None = None,
             overwrite: bool = False, progress: bool = True, calibration_samples: int = 4,
             compression: str | None = None, **family_options) -> Summary:
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
        or one of ``direct``, ``cg``, ``jacobi-cg``, ``gmres``, ``amg-cg``, ``gmg-cg``, ``gcrodr``,
        ``rcg``.
    rtol : float
        Every stored sample satisfies ‖b − A x‖ ≤ rtol·‖b‖ (checked).
    order : {"auto", "skr", "scalable", "none"}
        Solving order: greedy nearest-neighbour (Sorting Krylov Recycling),
        its scalable variant for large N, or index order.  ``"auto"`` sorts
        (``skr`` up to 5 000 samples, else ``scalable``) only when the chosen
        solver gains from similar neighbours — not for ``direct``,
        ``amg-cg`` or ``gmg-cg``, whose solves do not depend on the previous
        sample; the calibration then uses the first samples in index order.
    shard_size : int, optional
        Samples per shard (the unit of resumption and of Dask tasks); default:
        equal shards of at most 32 samples, an even number of them.
    workers : int, optional
        Run on a Dask ``LocalCluster`` with this many single-threaded workers,
        threads of this process (the solves release the GIL); one per core.
    scheduler : str, optional
        Address of an existing Dask scheduler.
    overwrite : bool
        Replace an existing output (and discard unfinished work for it).
    progress : bool
        Show a tqdm progress bar.
    calibration_samples : int
        Samples ``solver="auto"`` times each candidate on.
    compression : {None, "lzf", "gzip"}
        HDF5 compression of the sample arrays (see `storage.DatasetWriter`;
        float64 fields barely compress, so the default stores them raw).

    Returns
    -------
    Summary
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if shard_size is None:
        shard_size = default_shard_size(int(n_samples)) if isinstance(n_samples, (int, np.integer)) else 1
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
    if compression not in storage.COMPRESSION:
        raise ValueError(f"compression must be one of {storage.COMPRESSION}, got {compression!r}")
    out = _check_output(out, overwrite)

    t_start = time.perf_counter()
    # start the cluster (importing dask.distributed takes 0.6 s) while this process samples, orders and
    # calibrates; calibration times solves in this thread's CPU time, so the start-up does not bias it
    connection = _Connection(workers, scheduler) if workers is not None or scheduler is not None else None
    try:
        return _generate(fam, n_samples, out, seed, solver, rtol, order, shard_size, workers, scheduler, overwrite,
                         progress, calibration_samples, compression, t_start, connection)
    finally:
        if connection is not None:
            connection.close()  # already closed after a Dask run; here when generate stopped before one


def _generate(fam, n_samples, out, seed, solver, rtol, order, shard_size, workers, scheduler, overwrite, progress,
              calibration_samples, compression, t_start, connection):
    work = out.with_name(out.name + ".parts")
    request = {"family": fam.config(), "n_samples": int(n_samples), "seed": int(seed), "rtol": float(rtol),
               "solver": solver, "order": order, "shard_size": int(shard_size)}
    plan = None
    # samples drawn for the ordering, reused by a local run instead of drawing them again
    drawn: dict = {} if workers is None and scheduler is None else None
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
        # processes that each build a strategy's shared setup (an AMG hierarchy): one for a local run and
        # for the worker threads of a LocalCluster (a shard running beside the first takes an unpickled copy,
        # 9 ms against a 130-190 ms build at 3D 32³), an unknown number (taken as 2) on an existing cluster.
        # Counting the threads as processes spread amg-cg's setup over half the samples, which tipped 2D
        # Darcy 128² to gmg-cg (10.9 against 8.4 iterations) on two workers and not on one.
        processes = 2 if scheduler is not None else 1
        with single_threaded():  # timed as the shards will run
            calibration = (fam, seed, rtol, min(calibration_samples, n_samples), solver, min(shard_size, n_samples),
                           n_samples, processes)
            if order == "auto":
                # calibrate on the first samples in index order, then sort only for a strategy that gains
                # from similar neighbours; the others skip the features pass (3D Darcy 32³, amg-cg, 200
                # samples: 9.2 s instead of 9.9 s locally; with 2 Dask workers the pass, run first while the
                # cluster started, was 1.5 s of a 6.9 s run).  The order is the same either way.
                chosen, timings, baseline, warmup = _calibrate(np.arange(n_samples), *calibration)
                used = _resolve_order(order, n_samples) if strategies.order_matters(chosen) else "none"
                if used == "none":
                    perm = np.arange(n_samples)
                else:
                    perm = _order(_features(fam, n_samples, seed, drawn), used, seed)
            else:
                used = _resolve_order(order, n_samples)
                perm = _order(_features(fam, n_samples, seed, drawn), used, seed)
                chosen, timings, baseline, warmup = _calibrate(perm, *calibration)
        shards = [perm[k:k + shard_size].tolist() for k in range(0, n_samples, shard_size)]
        plan = {"request": request, "order": perm.tolist(), "order_used": used, "shards": shards, "solver": chosen,
                "calibration": timings, "baseline": baseline, "version": __version__}
        compile_seconds = warmup
        work.mkdir(exist_ok=True)
        storage.write_json(work / _MANIFEST, plan, sync=False)
        # made durable while the shards run (see `storage`); joined before the final commit
        syncing = threading.Thread(target=storage.fsync_path, args=(work / _MANIFEST,), name="krylovlab-fsync")
        syncing.start()
    else:
        compile_seconds = 0.0
        syncing = None

    shard_files = [work / f"shard-{k:05d}.npz" for k in range(len(plan["shards"]))]
    done = [k for k, f in enumerate(shard_files) if _shard_ok(f, plan["shards"][k])]
    todo = [k for k in range(len(shard_files)) if k not in set(done)]
    bar = _progress(progress, n_samples, sum(len(plan["shards"][k]) for k in done), plan["solver"])
    args = (fam.config(), int(seed))
    ref = int(plan["order"][0])
    # shards go into the final file as they finish: with Dask the driver merges while the workers solve
    merge = _Merge(out, n_samples, compression, bar, tmp_dir=work)
    try:
        for k in done:
            merge.add(shard_files[k], resumed=True)
        solve_seconds = 0.0
        if todo:
            if workers is None and scheduler is None:
                solve_start = time.perf_counter()
                _solve_locally(args, plan, rtol, shard_files, todo, ref, drawn, merge)
            else:
                waited, solve_start = _run_dask(args, plan, rtol, shard_files, todo, connection, merge.add, ref)
                compile_seconds += waited
            solve_seconds = time.perf_counter() - solve_start
        if connection is not None:
            connection.close_in_background()  # shutting the cluster down overlaps the commit
        if syncing is not None:
            syncing.join()
            syncing = None
        summary = merge.commit(plan, fam)
    except BaseException:
        merge.discard()
        raise
    finally:
        if syncing is not None:
            syncing.join()
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - t_start  # the merge included
    summary.resumed_shards = len(done)
    summary.resumed_samples = sum(len(plan["shards"][k]) for k in done)
    summary.solve_seconds = solve_seconds
    summary.warmup_seconds = compile_seconds
    summary.workers = 0 if workers is None and scheduler is None else (workers or -1)
    shutil.rmtree(work, ignore_errors=True)
    return summary


def _solve_locally(args, plan, rtol, shard_files, todo, reference_index, drawn, merge):
    """Solve the shards in this thread, one after the other; each shard's file is written and merged on a
    second thread while the next shard is solved.

    A local run solves on one core and leaves the other idle; writing a
    shard (3D Darcy 32³, 25 samples: 14 MB, 27 ms with the zip checksums)
    and merging it into the dataset (15 ms) were 8 % of its time.  The loop
    does not run further ahead than one shard being stored and one waiting
    (three shards' arrays in memory with the one being solved).
    A run stopped by an error or Ctrl-C still stores the shards it solved.
    """
    def store(k, arrays):
        _write_shard(shard_files[k], arrays)
        merge.add(shard_files[k], arrays=arrays)  # what was just written: no need to read it back

    pending = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="krylovlab-store") as pool:
        try:
            for k in todo:
                _, arrays = run_shard(*args, plan["shards"][k], plan["solver"], rtol, str(shard_files[k]),
                                      reference_index, samples=drawn, with_arrays=True, write=False)
                pending.append(pool.submit(store, k, arrays))
                while len(pending) > 1:
                    pending.pop(0).result()
        except BaseException:
            concurrent.futures.wait(pending)  # the shards solved so far still reach the disk
            raise
        for done in pending:
            done.result()


def default_shard_size(n_samples: int, most: int = 32) -> int:
    """Equal shards of at most ``most`` samples, an even number of them (so two workers share them evenly)."""
    count = max(math.ceil(n_samples / most), 1)
    if count > 1 and count % 2:
        count += 1
    return max(math.ceil(n_samples / count), 1)


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


def _dask():
    try:
        from dask import distributed
    except ImportError:  # pragma: no cover - depends on the optional extra
        raise ImportError("Dask execution needs the 'dist' extra: pip install 'krylovlab[dist]'") from None
    return distributed


#: Dask settings for the cluster `generate` starts itself.  Measured on 3D Darcy 32³ (200 samples, 2 worker
#: processes, amg-cg, in the version that used processes): each worker sampled its thread stacks every 10 ms
#: for its statistical profiler and polled system metrics twice a second, which costs CPU on a fully
#: loaded core (with the nannies' MALLOC_TRIM_THRESHOLD_, which worker threads no longer meet: 9.3 s of
#: shard time with Dask's defaults, 6.7 s without).
_WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "1s",
    "distributed.admin.system-monitor.gil.enabled": False,  # polls the GIL every 1 ms where gilknocker is installed
}


class _Connection:
    """A Dask client being set up in a background thread: a new `LocalCluster` of ``workers`` single-threaded
    workers (threads of this process), or a client of an existing ``scheduler``."""

    def __init__(self, workers, scheduler):
        if importlib.util.find_spec("distributed") is None:
            _dask()  # raises the ImportError that names the extra
        self.closed = False
        self._closing = None
        self.local = scheduler is None  # workers are threads of this process
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="krylovlab-dask-start")
        self._future = pool.submit(self._open, workers, scheduler)
        pool.shutdown(wait=False)

    def _open(self, workers, scheduler):
        distributed = _dask()  # imported here: the import alone takes about half a second
        if scheduler is not None:
            client, cluster = distributed.Client(scheduler), None
        else:
            import dask

            with dask.config.set(_WORKER_CONFIG):
                # worker threads in this process: the solves are numba kernels that release the GIL, so two
                # threads use two cores (3D Darcy 32³, 2 × 25 samples: 0.67-0.95 s per shard against 0.68 s
                # in worker processes), and they start at once on the kernels and the AMG hierarchy this
                # process has loaded and built, where worker processes took 2.4 s to spawn and import
                # before a 1.4 s first shard (200 samples: 5.2 s in all against 6.5 s)
                cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=False,
                                                   dashboard_address=None)
            try:
                client = distributed.Client(cluster)
            except BaseException:
                cluster.close()
                raise
        return client, cluster

    @property
    def client(self):
        """The client (waits for the start-up; re-raises its error)."""
        return self._future.result()[0]

    def close_in_background(self) -> None:
        """Start closing (the driver commits the dataset file meanwhile); `close` waits for it."""
        if self._closing is None and not self.closed:
            self._closing = threading.Thread(target=self.close, name="krylovlab-dask-close")
            self._closing.start()

    def close(self) -> None:
        """Close the client and the cluster started for it (once; waits for a start-up in progress)."""
        if self._closing is not None and self._closing is not threading.current_thread():
            self._closing.join()
            return
        if self.closed:
            return
        self.closed = True
        try:
            client, cluster = self._future.result()
        except Exception:
            return  # it never started: nothing to close (the error surfaced where the client was used, if it was)
        client.close()
        if cluster is not None:
            cluster.close()


def _run_dask(args, plan, rtol, shard_files, todo, connection, on_shard, reference_index=None):
    """Run the shards as Dask tasks (one task per shard; workers write their shard files themselves).

    ``connection`` is a `_Connection`, started in the background while the
    driver sampled, ordered and calibrated.  Each worker loads its kernels
    and builds its per-process setup (an AMG hierarchy) in its first shard
    (earlier versions ran a warm-up task on every worker first: a barrier
    that measured no faster).  Returns the seconds spent waiting for the
    cluster after the calibration and the moment the shards were submitted.
    ``on_shard(path)`` is called in the driver for every shard as it
    completes.
    """
    as_completed = _dask().as_completed
    t0 = time.perf_counter()
    client = connection.client
    submitted = time.perf_counter()
    waited = submitted - t0
    # workers in this process hand their arrays over (no copy, no read-back of the file, which held the GIL
    # the workers need); a cluster elsewhere only names the files
    local = connection.local
    done = as_completed([client.submit(run_shard, *args, plan["shards"][k], plan["solver"], rtol,
                                       str(shard_files[k]), reference_index, with_arrays=local,
                                       key=f"krylovlab-shard-{k}-{shard_files[k].parent.name}", retries=3, pure=False)
                         for k in todo])
    for fut in done:
        result = fut.result()
        # merged shards are released at once: a worker would otherwise keep every result it computed (a
        # local run's arrays: the whole dataset) until the end, and Dask would solve again the finished shards
        # of a worker lost later, to get back results nobody needs any more
        fut.release()
        if local:
            target, arrays = result
            on_shard(Path(target), arrays=arrays)
        else:
            on_shard(Path(result))
    return waited, submitted


class _Merge:
    """The final dataset, filled from the shard files as they are finished (`storage.DatasetWriter`);
    also advances the progress bar and keeps what the `Summary` reports."""

    def __init__(self, out, n, compression, bar=None, tmp_dir=None):
        self.n = int(n)
        self.writer = storage.DatasetWriter(out, self.n, compression, tmp_dir)
        self.bar = bar
        self.iterations, self.residuals = [], []

    def add(self, shard_file, resumed=False, arrays=None) -> None:
        """Merge a shard: its file, or ``arrays``, the contents just written to it."""
        part = dict(arrays) if arrays is not None else storage.read_npz(shard_file)
        idx = part.pop("indices")
        self.iterations.append(part["iterations"])
        self.residuals.append(part["residual"])
        self.writer.add(idx, {key.replace("inputs__", "inputs/"): value for key, value in part.items()})
        if self.bar is not None and not resumed:  # resumed shards are in the bar's initial count
            self.bar.iters.extend(part["iterations"].tolist())
            self.bar.set_postfix(mean_iters=f"{np.mean(self.bar.iters):.1f}")
            self.bar.update(len(idx))

    def commit(self, plan, fam) -> Summary:
        """Write the solving ranks and the metadata and commit the file; returns the `Summary`
        (its ``seconds`` for the caller to set)."""
        rank = np.empty(self.n, dtype=np.int64)
        rank[np.asarray(plan["order"])] = np.arange(self.n)
        request = plan["request"]
        meta = {"family": fam.config(), "seed": request["seed"], "rtol": request["rtol"], "solver": plan["solver"],
                "order": request["order"], "order_used": plan.get("order_used", request["order"]),
                "shard_size": request["shard_size"], "calibration": plan["calibration"],
                "baseline": plan["baseline"], "krylovlab_version": plan["version"]}
        self.writer.commit(meta, {"solve_rank": rank})
        iters, resid = np.concatenate(self.iterations), np.concatenate(self.residuals)
        return Summary(self.writer.target, self.n, plan["solver"], 0.0, float(np.mean(iters)), float(np.max(resid)),
                       plan["calibration"], plan["baseline"])

    def discard(self) -> None:
        self.writer.discard()
