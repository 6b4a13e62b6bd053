"""``krylovlab datagen``: the command-line face of `krylovlab.datagen.generate`."""

from __future__ import annotations

import click

from ..problems import FAMILIES

_EPILOG = """\b
Examples:
  krylovlab datagen darcy --grid 64 --samples 1000 --out darcy.h5
  krylovlab datagen darcy --grid 32 --dim 3 --samples 200 --out d3.h5 --workers 2
  krylovlab datagen helmholtz --grid 64 --samples 500 --out h.npz --solver gmres

Rerunning the same command after an interruption resumes where it stopped.
Load the result with krylovlab.datagen.load(PATH).
"""


@click.command("datagen", epilog=_EPILOG)
@click.argument("family", type=click.Choice(sorted(FAMILIES)))
@click.option("--grid", default=64, show_default=True, type=click.IntRange(min=4),
              help="Interior grid points per axis.")
@click.option("--dim", default=2, show_default=True, type=click.Choice(["2", "3"]), help="Space dimension.")
@click.option("--samples", "n_samples", default=100, show_default=True, type=click.IntRange(min=1),
              help="Number of samples to generate.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .h5/.hdf5 (HDF5) or .npz.")
@click.option("--seed", default=0, show_default=True, type=int, help="Sample i is drawn from default_rng([seed, i]).")
@click.option("--solver", default="auto", show_default=True,
              type=click.Choice(["auto", "direct", "cg", "jacobi-cg", "gmres", "amg-cg", "gmg-cg", "gcrodr", "rcg"]),
              help="Solver strategy; auto times the candidates on the first samples and keeps the fastest.")
@click.option("--rtol", default=1e-8, show_default=True, type=float,
              help="Every sample satisfies ||b - Ax|| <= rtol ||b||.")
@click.option("--order", default="auto", show_default=True, type=click.Choice(["auto", "skr", "scalable", "none"]),
              help="Solving order (skr: greedy nearest neighbour on the samples' features; auto: skr or, for "
                   "many samples, scalable - only when the chosen solver gains from similar neighbours).")
@click.option("--shard-size", default=None, type=click.IntRange(min=1),
              help="Samples per shard: the unit of resumption and of parallel tasks "
                   "[default: equal shards of at most 32, an even number of them].")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Run on a local Dask cluster with this many single-threaded workers "
                   "(threads of this process; one per core).")
@click.option("--scheduler", default=None, help="Address of an existing Dask scheduler (tcp://host:port).")
@click.option("--compression", default="none", show_default=True, type=click.Choice(["none", "lzf", "gzip"]),
              help="HDF5 compression (float64 fields shrink only 14-18%, at 18-30x the writing time).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def datagen(family, grid, dim, n_samples, out, seed, solver, rtol, order, shard_size, workers, scheduler,
            compression, overwrite, no_progress):
    """Generate a dataset of solved PDE systems for training neural operators.

    FAMILY is one of the problem families (darcy, poisson, heat, convdiff,
    helmholtz). Samples are drawn, sorted so that neighbours are similar,
    solved in that order with a solver that carries what it learns, checked
    against the tolerance, and stored.
    """
    from .pipeline import generate

    try:
        summary = generate(family, n_samples, out, seed=seed, solver=solver, rtol=rtol, order=order,
                           shard_size=shard_size, workers=workers, scheduler=scheduler, overwrite=overwrite,
                           progress=not no_progress, grid=grid, dim=int(dim),
                           compression=None if compression == "none" else compression)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(summary.report())
