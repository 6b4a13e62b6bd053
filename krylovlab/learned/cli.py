"""``krylovlab train-dcdm``: train DCDM weights from the command line (needs torch).

Register on the ``krylovlab`` click group with ``main.add_command(train_dcdm)``.
"""

from __future__ import annotations

import json

import click

__all__ = ["train_dcdm"]


@click.command("train-dcdm")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="Output .npz file.")
@click.option("--grids", default="32,64", show_default=True, help="Training grids, e.g. '32,64' or '32x48'.")
@click.option("--fields", "n_fields", default=3, show_default=True, help="Darcy fields per grid (plus Poisson).")
@click.option("--sigma", default=1.0, show_default=True, help="Std of log-permeability.")
@click.option("--length", default=0.1, show_default=True, help="Correlation length of the fields.")
@click.option("--ritz", default=400, show_default=True, help="Lanczos steps per training matrix.")
@click.option("--batch", default=16, show_default=True)
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--minutes", default=5.0, show_default=True, help="Wall-time budget for the optimiser.")
@click.option("--max-steps", default=20_000, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--channels", type=int, default=None, help="Model channels (default 16).")
@click.option("--n-pre", type=int, default=None)
@click.option("--n-coarse", type=int, default=None)
@click.option("--n-post", type=int, default=None)
@click.option("--levels", type=int, default=None, help="Pooling levels, 0 = recurse while possible.")
@click.option("--dim", type=int, default=None, help="2 or 3 (3D grids like '16x16x16').")
@click.option("--bias/--no-bias", default=None, help="Convolution biases (off: a positively homogeneous network).")
@click.option("--smooth", type=int, default=None,
              help="Damped-Jacobi sweeps before and after the network (0 = the bare network).")
@click.option("--omega-pct", type=int, default=None, help="Jacobi damping in percent (default 80).")
@click.option("--jscale/--no-jscale", default=None, help="Apply the network to D^-1/2 r (Jacobi scaling).")
@click.option("--coarsen/--no-coarsen", default=None,
              help="Run the network on the 2x coarser grid (needs --smooth > 0; ~4x cheaper).")
@click.option("--coef/--no-coef", default=None,
              help="Give the network A's coefficients (log of its diagonal) as a second input channel.")
@click.option("--loss", "loss", type=click.Choice(["residual", "energy"]), default="residual", show_default=True,
              help="Training loss: the paper's residual norm, or the energy-norm error left after the step.")
@click.option("--init", "init", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Start from these weights (fine-tune); their config is kept, except that --coef may add "
                   "the coefficient channel.")
@click.option("--onpolicy", type=int, default=0, show_default=True,
              help="DCDM solves per training matrix whose residuals join the data (0: Ritz data only).")
@click.option("--onpolicy-frac", type=float, default=0.5, show_default=True,
              help="Fraction of batches drawn from those residuals.")
@click.option("--onpolicy-rounds", type=int, default=1, show_default=True,
              help="Harvest the residuals this many times, evenly over the budget, with the current network.")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None, help="Write the training log (JSON).")
def train_dcdm(out, grids, n_fields, sigma, length, ritz, batch, lr, minutes, max_steps, seed, channels, n_pre,
               n_coarse, n_post, levels, dim, bias, smooth, omega_pct, jscale, coarsen, coef, loss, init, onpolicy,
               onpolicy_frac, onpolicy_rounds, threads, log_path):
    """Train a DCDM direction network on diffusion systems and save it as .npz."""
    from .train import _parse_grids, config_from_options, train

    config = config_from_options(channels=channels, n_pre=n_pre, n_coarse=n_coarse, n_post=n_post,
                                 levels=levels, dim=dim, bias=None if bias is None else int(bias), smooth=smooth,
                                 omega_pct=omega_pct, jscale=None if jscale is None else int(jscale),
                                 coarsen=None if coarsen is None else int(coarsen),
                                 coef=None if coef is None else int(coef))
    model, log = train(out, grids=_parse_grids(grids), n_fields=n_fields, sigma=sigma, length=length, ritz=ritz,
                       config=config, batch=batch, lr=lr, minutes=minutes, max_steps=max_steps, seed=seed,
                       threads=threads, loss=loss, init=init, onpolicy=onpolicy, onpolicy_frac=onpolicy_frac,
                       onpolicy_rounds=onpolicy_rounds)
    click.echo(f"saved {out}: {model.n_params} parameters, {log['steps']} steps in {log['train_seconds']} s, "
               f"final loss {log['loss_history'][-1] if log['loss_history'] else float('nan'):.5f}")
    if log_path:
        with open(log_path, "w") as f:
            json.dump(log, f, indent=1)
