"""The ``krylovlab`` command.

``krylovlab solve`` solves one sparse system with krylovlab and with the
matching scipy solver and prints both side by side.  ``krylovlab methods``
lists the methods this installation can run.

The command is a click group.  Other parts of krylovlab add subcommands
without this module importing them up front: add a line
``"name": "krylovlab.module.path:click_command"`` to `LAZY_SUBCOMMANDS`; the
module is imported only when that subcommand runs (or ``--help`` lists it),
and a subcommand whose module does not exist yet is simply not shown.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import time

import click
import numpy as np

__all__ = ["cli", "main", "LAZY_SUBCOMMANDS", "PROBLEMS"]

#: subcommand name -> "module:attribute" of a click command, imported on use
LAZY_SUBCOMMANDS: dict[str, str] = {
    # --- other families register their subcommands here, one line each ---
    "datagen": "krylovlab.datagen.cli:datagen",
    "train-dcdm": "krylovlab.learned.cli:train_dcdm",
}

#: problem name -> (description, default grid size per side, default method)
PROBLEMS: dict[str, tuple[str, int, str]] = {
    "poisson1d": ("1-D Poisson, 3-point stencil (SPD)", 1000, "cg"),
    "poisson2d": ("2-D Poisson, 5-point stencil (SPD)", 256, "cg"),
    "poisson3d": ("3-D Poisson, 7-point stencil (SPD)", 32, "cg"),
    "anisotropic": ("2-D rotated anisotropic diffusion, epsilon=0.01, theta=pi/6 (SPD)", 128, "cg"),
    "convdiff": ("2-D upwind convection-diffusion, eps=0.01, v=(1, 0.5) (nonsymmetric)", 128, "gmres"),
}

#: krylovlab method -> the scipy.sparse.linalg function it is compared with
SCIPY_PEERS = {m: m for m in ("cg", "gmres", "bicgstab", "minres", "cgs", "bicg", "qmr", "tfqmr", "lgmres", "gcrotmk")}


class LazyGroup(click.Group):
    """A click group whose extra subcommands are imported only when used."""

    def __init__(self, *args, lazy_subcommands=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def _available_lazy(self):
        out = []
        for name, target in self.lazy_subcommands.items():
            module = target.split(":")[0]
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:
                found = False
            if found:
                out.append(name)
        return out

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._available_lazy()))

    def get_command(self, ctx, cmd_name):
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in self._available_lazy():
            module, attr = self.lazy_subcommands[cmd_name].split(":")
            try:
                cmd = getattr(importlib.import_module(module), attr)
            except ImportError as exc:  # an optional dependency (torch, dask, ...) is missing
                return _unavailable(cmd_name, exc)
            if not isinstance(cmd, click.Command):
                raise click.ClickException(f"{module}:{attr} is not a click command")
            return cmd
        return None


def _unavailable(name: str, exc: Exception) -> click.Command:
    """A stand-in for a subcommand whose module cannot be imported here."""

    def fail(args):
        raise click.ClickException(f"'krylovlab {name}' cannot run in this installation: {exc}. "
                                   "Install the optional dependencies it needs (see the README's extras).")

    return click.Command(name, callback=fail, help=f"(unavailable here: {exc})",
                         params=[click.Argument(["args"], nargs=-1)],
                         context_settings={"ignore_unknown_options": True})


@click.group(cls=LazyGroup, lazy_subcommands=LAZY_SUBCOMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="krylovlab", message="krylovlab %(version)s")
def cli():
    """krylovlab: sparse linear-system solvers in the SciPy style.

    \b
    Try:
      krylovlab solve                       2-D Poisson 256x256 with CG, against scipy
      krylovlab solve --problem convdiff    a nonsymmetric problem (GMRES)
      krylovlab solve matrix.mtx -m gmres   your own Matrix Market file
      krylovlab methods                     what --method accepts

    Run 'krylovlab COMMAND --help' for the options of a command.
    """


# ---------------------------------------------------------------------------------- helpers
def available_methods() -> tuple[list[str], list[str]]:
    """(methods that import in this installation, registered methods that do not yet)."""
    from . import _api

    ok, missing = ["auto"], []
    for name in _api.methods():
        if name == "auto":
            continue
        module = "krylovlab." + _api._METHODS[name].split(":")[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        (ok if found else missing).append(name)
    return ok, missing


def _build_problem(name: str, n: int):
    from . import gallery

    if name == "poisson1d":
        return gallery.poisson((n,))
    if name == "poisson2d":
        return gallery.poisson((n, n))
    if name == "poisson3d":
        return gallery.poisson((n, n, n))
    if name == "anisotropic":
        return gallery.anisotropic_diffusion((n, n), epsilon=0.01, theta=math.pi / 6)
    if name == "convdiff":
        return gallery.convection_diffusion((n, n))
    raise click.BadParameter(f"unknown problem {name!r}", param_hint="--problem")  # pragma: no cover


def _best_time(fn, repeat: int):
    """Minimum wall time over ``repeat`` calls (after the caller's warm-up) and the last result."""
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _true_relres(A, b, x) -> float:
    r = b - A @ x
    return float(np.linalg.norm(r) / np.linalg.norm(b))


def _scipy_peer(method: str, symmetric: bool) -> str:
    return SCIPY_PEERS.get(method, "cg" if symmetric else "gmres")


def _run_scipy(name: str, A, b, rtol, atol, maxiter, repeat, blas):
    import scipy.sparse.linalg as spla
    from threadpoolctl import threadpool_limits

    fn = getattr(spla, name)
    accepted = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in dict(rtol=rtol, atol=atol, maxiter=maxiter).items() if k in accepted}
    if name == "gmres" and maxiter is not None:
        # scipy's gmres counts restart cycles (restart=20 by default); krylovlab counts iterations
        kwargs["maxiter"] = max(1, math.ceil(maxiter / 20))
    if atol and "atol" not in accepted:
        click.echo(f"note: scipy's {name} has no atol; it runs with rtol only", err=True)

    def run(callback=None):
        extra = {"callback": callback} if callback else {}
        if name == "gmres":
            extra["callback_type"] = "pr_norm"  # one call per inner iteration
        return fn(A, b, **kwargs, **extra)

    def timed():
        if blas == "installed":
            return _best_time(run, repeat)
        with threadpool_limits(limits=1):
            return _best_time(run, repeat)

    # iterations are counted in a separate, untimed run (a callback costs time);
    # it doubles as scipy's warm-up
    count = [0]
    run(lambda *_: count.__setitem__(0, count[0] + 1))
    elapsed, (x, info) = timed()
    if blas == "best":
        t_installed, _ = _best_time(run, repeat)
        elapsed = min(elapsed, t_installed)
    return elapsed, x, info, count[0]


def _fmt_time(t: float) -> str:
    return f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.3f} s"


# ------------------------------------------------------------------------------------ solve
@cli.command("solve", context_settings={"max_content_width": 100})
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--problem", "-p", type=click.Choice(list(PROBLEMS)), default=None,
              help="Built-in test problem (default: poisson2d, unless FILE is given).")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Grid points per side for --problem (defaults: " + ", ".join(
                  f"{k} {v[1]}" for k, v in PROBLEMS.items()) + ").")
@click.option("--method", "-m", default=None, metavar="NAME",
              help="Solver (see 'krylovlab methods'); default: cg for SPD problems, gmres for "
                   "convdiff, auto for files.")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-8, show_default=True,
              help="Relative tolerance: stop when ||b - Ax|| <= max(atol, rtol*||b||).")
@click.option("--atol", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Absolute tolerance.")
@click.option("--maxiter", type=click.IntRange(min=1), default=None,
              help="Iteration limit for both solvers (default: each method's own); scipy's gmres "
                   "counts restart cycles, so it gets ceil(maxiter/20) cycles.")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Timed runs after one warm-up run; the fastest is reported.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random right-hand side.")
@click.option("--scipy/--no-scipy", "with_scipy", default=True, show_default=True,
              help="Also run the matching scipy solver.")
@click.option("--peer-blas", type=click.Choice(["1", "installed", "best"]), default="1", show_default=True,
              help="BLAS threads for scipy: 1, as installed, or the faster of both.")
def solve_cmd(file, problem, n, method, rtol, atol, maxiter, repeat, seed, with_scipy, peer_blas):
    """Solve A x = b with krylovlab and with scipy, and compare.

    A comes from FILE (a Matrix Market .mtx file, possibly .gz) or from a
    built-in problem; b is uniform random in [0, 1) (--seed).  Each solver
    runs once to warm up (numba compiles or loads its cache), then --repeat
    times; the table shows the fastest time, the iterations, and the true
    relative residual ||b - Ax|| / ||b|| computed afresh for both.

    \b
    Problems (--problem, with the default --n):
      poisson1d    1-D Poisson, 3-point stencil, SPD (n=1000)
      poisson2d    2-D Poisson, 5-point stencil, SPD (256 x 256)
      poisson3d    3-D Poisson, 7-point stencil, SPD (32 x 32 x 32)
      anisotropic  2-D rotated anisotropic diffusion, eps=0.01, theta=pi/6, SPD (128 x 128)
      convdiff     2-D upwind convection-diffusion, eps=0.01, v=(1, 0.5), nonsymmetric (128 x 128)
    """
    import krylovlab
    from . import gallery

    if file is not None and problem is not None:
        raise click.UsageError("give either FILE or --problem, not both")
    if file is not None and n is not None:
        raise click.UsageError("--n applies to built-in problems, not to FILE")
    if file is not None:
        try:
            A = gallery.load_mtx(file)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        if A.shape[0] != A.shape[1]:
            raise click.ClickException(f"{file}: the matrix is {A.shape[0]}x{A.shape[1]}; a square matrix is needed")
        if A.shape[0] == 0:
            raise click.ClickException(f"{file}: the matrix is empty")
        label, default_method = file, "auto"
    else:
        problem = problem or "poisson2d"
        desc, default_n, default_method = PROBLEMS[problem]
        n = n or default_n
        A = _build_problem(problem, n)
        label = f"{problem} (n={n}: {desc})"

    ok, missing = available_methods()
    method = (method or default_method).lower()
    if method not in ok:
        hint = f"valid methods: {', '.join(ok)}"
        if method in missing:
            raise click.BadParameter(f"{method!r} is registered but not available in this installation yet; {hint}",
                                     param_hint="--method")
        raise click.BadParameter(f"unknown method {method!r}; {hint}", param_hint="--method")

    b = np.random.default_rng(seed).uniform(0.0, 1.0, A.shape[0]).astype(A.dtype)
    symmetric = bool(abs(A - A.conj().T).max() == 0) if A.nnz else True
    opts = dict(rtol=rtol, atol=atol)
    if maxiter is not None:
        opts["maxiter"] = maxiter

    def run_krylovlab():
        return krylovlab.solve(A, b, method=method, **opts)

    try:
        run_krylovlab()  # warm-up: JIT compile or cache load
        t_kl, res = _best_time(run_krylovlab, repeat)
    except (ValueError, TypeError) as exc:
        raise click.ClickException(f"krylovlab could not run {method!r}: {exc}") from None
    except ImportError as exc:  # e.g. "auto" chose a method whose module is not installed yet
        raise click.ClickException(f"method {method!r} needs a solver that is not available in this "
                                   f"installation yet ({exc})") from None
    used = res.extras.get("auto_choice", method)

    click.echo(f"problem : {label}")
    click.echo(f"matrix  : {A.shape[0]:,} unknowns, {A.nnz:,} nonzeros, {A.dtype}, "
               f"{'symmetric' if symmetric else 'nonsymmetric'}")
    click.echo(f"stopping: ||b - Ax|| <= max({atol:g}, {rtol:g}*||b||), best of {repeat} after a warm-up")
    rows = [("krylovlab", used if method != "auto" else f"auto -> {used}", t_kl, res.iterations,
             _true_relres(A, b, res.x), res.status.name)]
    if with_scipy:
        peer = _scipy_peer(used, symmetric)
        try:
            t_sp, x_sp, info, its = _run_scipy(peer, A, b, rtol, atol, maxiter, repeat, peer_blas)
            status = "converged" if info == 0 else (f"info={info}")
            rows.append((f"scipy {_scipy_version()}", peer, t_sp, its, _true_relres(A, b, x_sp), status))
        except Exception as exc:  # the comparison must not hide krylovlab's own result
            click.echo(f"scipy {peer} failed: {type(exc).__name__}: {exc}", err=True)
            with_scipy = False
    click.echo("")
    click.echo("| solver | method | time | iterations | ||b-Ax||/||b|| | status | speedup |")
    click.echo("|---|---|---:|---:|---:|---|---:|")
    ref_t = rows[-1][2] if with_scipy else rows[0][2]
    for who, m, t, its, rel, status in rows:
        click.echo(f"| {who} | {m} | {_fmt_time(t)} | {its} | {rel:.2e} | {status} | {ref_t / t:.2f}x |")
    if with_scipy:
        click.echo(f"\nspeedup = scipy time / time (scipy BLAS threads: {peer_blas}).")
    if not res.converged:
        click.echo(f"\nkrylovlab did not converge: {res.message}", err=True)


def _scipy_version() -> str:
    import scipy

    return scipy.__version__


# ---------------------------------------------------------------------------------- methods
@cli.command("methods")
def methods_cmd():
    """List the solver methods 'krylovlab solve --method' accepts."""
    ok, missing = available_methods()
    for name in ok:
        click.echo(name)
    if missing:
        click.echo(f"(registered, not yet available: {', '.join(missing)})")


def main(argv=None):
    """Entry point of the ``krylovlab`` console script."""
    return cli.main(args=argv, prog_name="krylovlab")


if __name__ == "__main__":  # pragma: no cover
    main()
