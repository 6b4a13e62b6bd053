"""Training the DCDM network (needs torch: ``pip install krylovlab[learn]``).

Recipe (Kaneda et al., ICML 2023, section 3 and the authors' data scripts):

1. For each training matrix A (2D variable-coefficient diffusion on small
   grids: Poisson and Darcy fields ``a = exp(σ·GRF)``), run ``m`` steps of
   Lanczos with full re-orthogonalisation from ``A·N(0, I)`` and keep the
   Ritz vectors ``v_1 … v_m`` (ascending Ritz values).
2. Right-hand sides ``b = Σ c_j v_j / ‖·‖`` with ``c_j ~ 9·N(0,1)`` for the
   lowest ``m/2 + θ`` Ritz vectors and ``c_j ~ N(0,1)`` for the rest: the
   low end of the spectrum, where A⁻¹ is large, is weighted 9:1.
3. Loss ``‖b − α·A·f(b)‖²`` with the optimal ``α = f(b)ᵀb / f(b)ᵀA f(b)``:
   f only has to approximate A⁻¹ up to a scalar; no solutions are needed.
4. Adam, seeded; a bounded wall-time budget; export to ``.npz`` for
   `krylovlab.learned.model.ConvDirectionModel` (no torch needed to solve).

Fresh right-hand sides are drawn for every batch (cheap: one product with the
Ritz basis), so there is no fixed data set to store.

Examples
--------
>>> from krylovlab.learned.train import train            # doctest: +SKIP
>>> model, log = train("my_weights.npz", minutes=2, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla

from ._fields import diffusion_matrix, face_coefficients, lognormal_field
from .model import (CONFIG_KEYS, ConvDirectionModel, block_names, check_config, coefficient_feature, plan_levels,
                    smoothed_apply)

__all__ = ["lanczos_ritz", "ritz_rhs", "dcdm_residuals", "DCDMNet", "train", "to_model", "from_model"]


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError("training DCDM needs torch: pip install 'krylovlab[learn]' (CPU: pip install torch)") from exc
    return torch


# ------------------------------------------------------------------------------------- data
def lanczos_ritz(A, m: int, *, rng=None):
    """Ritz values and vectors of symmetric ``A`` from ``m`` Lanczos steps (full re-orthogonalisation).

    Starts from ``A·g`` with ``g ~ N(0, I)`` as the authors do.  Returns
    ``(theta, V)`` with ascending ``theta`` and orthonormal columns ``V`` (n × k,
    k ≤ m; the run stops early on an invariant subspace).
    """
    rng = np.random.default_rng(rng)
    n = A.shape[0]
    m = int(min(m, n))
    if m < 1:
        raise ValueError("lanczos_ritz: m must be >= 1")
    Q = np.zeros((n, m))
    alpha = np.zeros(m)
    beta = np.zeros(m)
    q = A @ rng.standard_normal(n)
    q /= np.linalg.norm(q)
    k = m
    for j in range(m):
        Q[:, j] = q
        w = A @ q
        alpha[j] = q @ w
        # w ← w − Q_j (Q_jᵀ w), twice (full re-orthogonalisation keeps the basis orthonormal)
        w -= Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)
        w -= Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)
        beta[j] = np.linalg.norm(w)
        if j + 1 < m:
            if beta[j] <= 1e-10 * abs(alpha[j]):
                k = j + 1
                break
            q = w / beta[j]
    theta, S = sla.eigh_tridiagonal(alpha[:k], beta[: k - 1])
    return theta, Q[:, :k] @ S


def ritz_rhs(V, count: int, *, theta_extra=None, low_weight=9.0, rng=None, gram=None):
    """``count`` unit right-hand sides weighted toward the low Ritz vectors (columns of ``V``, ascending).

    With ``gram`` = VᵀA⁻¹V also returns ``bᵀA⁻¹b = cᵀ·gram·c`` of each right-hand side
    ``b = V c`` (exact, since b lies in the span of V), used by the energy loss.
    """
    rng = np.random.default_rng(rng)
    k = V.shape[1]
    extra = max(1, k // 20) if theta_extra is None else int(theta_extra)
    low = min(k, k // 2 + extra)
    c = rng.standard_normal((k, count))
    c[:low] *= low_weight
    b = V @ c
    nrm = np.linalg.norm(b, axis=0, keepdims=True)
    b /= nrm
    if gram is None:
        return b.T  # (count, n)
    c /= nrm
    return b.T, np.einsum("ic,ij,jc->c", c, gram, c)


# ------------------------------------------------------------------------------------- model
def DCDMNet(config: dict | None = None):
    """A torch ``nn.Module`` with the exact forward of `ConvDirectionModel` (same config and weight names)."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional
    cfg = check_config(dict(config or {}))
    conv_cls = nn.Conv2d if cfg["dim"] == 2 else nn.Conv3d
    pool = F.avg_pool2d if cfg["dim"] == 2 else F.avg_pool3d

    class _Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = cfg
            c = cfg["channels"]
            self.convs = nn.ModuleDict()
            bias = bool(cfg["bias"])
            self.convs["in"] = conv_cls(1 + cfg["coef"], c, 3, padding=1, bias=bias)
            for name, _ in block_names(cfg):
                self.convs[name.replace(".", "_")] = conv_cls(c, c, 3, padding=1, bias=bias)
            self.out = nn.Linear(c, 1, bias=bias)
            # zero biases (Keras' default, as in the authors' code): with torch's uniform bias init the
            # constant terms swamp the small normalised input and training stalls at loss ≈ 1
            for m in [*self.convs.values(), self.out]:
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

        def _blocks(self, group, h):
            for k in range(cfg[f"n_{group}"]):
                t = F.relu(self.convs[f"{group}_{k}_a"](h))
                h = F.relu(self.convs[f"{group}_{k}_b"](t) + h)
            return h

        def _level(self, h, depth, levels):
            h = self._blocks("pre", h)
            skip = h
            c = pool(h, 2)
            c = self._level(c, depth + 1, levels) if depth + 1 < levels else self._blocks("coarse", c)
            h = F.interpolate(c, scale_factor=2, mode="nearest") + skip
            return self._blocks("post", h)

        def forward(self, b, feature=None):
            """b: (batch, *grid) → (batch, *grid); each sample is first scaled to unit RMS.

            ``feature`` (coef=1 models): the coefficient channel, broadcastable to b
            (`krylovlab.learned.model.coefficient_feature`); None means zero."""
            grid = tuple(b.shape[1:])
            levels = plan_levels(grid, cfg)
            # RMS normalisation (each sample scaled to unit mean square), as the inference model does
            dims = tuple(range(1, b.ndim))
            rms = torch.sqrt((b * b).mean(dims, keepdim=True))
            b = b / torch.where(rms > 0, rms, torch.ones_like(rms))
            x = b.unsqueeze(1)
            if cfg["coef"]:  # unset: a zero channel, what constant coefficients give (as in the numba model)
                f = torch.zeros_like(b) if feature is None else torch.as_tensor(feature, dtype=b.dtype).expand_as(b)
                x = torch.cat([x, f.unsqueeze(1)], dim=1)
            h = self.convs["in"](x)
            h = self._level(h, 0, levels)
            h = torch.movedim(h, 1, -1)
            return self.out(h).squeeze(-1)

    return _Net()


def to_model(net, grid=None) -> ConvDirectionModel:
    """Export a trained `DCDMNet` as a torch-free `ConvDirectionModel`."""
    weights = {}
    for key, conv in net.convs.items():
        name = key.replace("_", ".")
        weights[f"{name}.w"] = conv.weight.detach().cpu().numpy()
        weights[f"{name}.b"] = (conv.bias.detach().cpu().numpy() if conv.bias is not None
                                else np.zeros(conv.weight.shape[0], np.float32))
    weights["out.w"] = net.out.weight.detach().cpu().numpy()[0]
    weights["out.b"] = net.out.bias.detach().cpu().numpy()[0] if net.out.bias is not None else np.float32(0)
    return ConvDirectionModel(weights, net.config, grid=grid)


def _widened(base: dict, config: dict | None) -> dict:
    """``base`` updated by ``config``, which may only add the coefficient channel."""
    cfg = check_config({**base, **(config or {})})

    def rest(c):
        return {k: v for k, v in c.items() if k != "coef"}

    if rest(cfg) != rest(base) or cfg["coef"] < base["coef"]:
        raise ValueError(f"config {config} differs from the config of the initial weights {base} by more than "
                         "an added coefficient channel")
    return cfg


def from_model(model: ConvDirectionModel, config: dict | None = None):
    """The `DCDMNet` holding a `ConvDirectionModel`'s weights (to fine-tune shipped weights).

    ``config`` may add the coefficient channel (``coef=1``) to a model without one; its
    input weights start at zero, so the network starts out computing exactly what
    ``model`` computes.  Every other key must match.
    """
    torch = _torch()
    cfg = _widened(model.config, config)
    net = DCDMNet(cfg)
    with torch.no_grad():
        for key, conv in net.convs.items():
            name = key.replace("_", ".")
            w = torch.from_numpy(model.weights[f"{name}.w"])
            if name == "in" and w.shape[1] < conv.weight.shape[1]:
                conv.weight.zero_()
                conv.weight[:, : w.shape[1]] = w
                continue
            conv.weight.copy_(w)
            if conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(model.weights[f"{name}.b"]))
        net.out.weight.copy_(torch.from_numpy(model.weights["out.w"][None, :]))
        if net.out.bias is not None:
            net.out.bias.copy_(torch.from_numpy(np.atleast_1d(model.weights["out.b"])))
    return net


# ------------------------------------------------------------------------------------- training
def diffusion_diagonal(faces) -> np.ndarray:
    """Diagonal of the diffusion matrix (on the grid) from its face coefficients."""
    diag = 0.0
    for d, f in enumerate(faces):
        m = f.shape[d] - 1
        diag = diag + np.take(f, range(m), axis=d) + np.take(f, range(1, m + 1), axis=d)
    return diag


def _training_systems(grids, n_fields, sigma, length, ritz, rng, verbose=False):
    from threadpoolctl import threadpool_limits

    systems = []
    for grid in grids:
        fields = [np.ones(grid)] + [lognormal_field(grid, sigma=sigma, length=length, rng=rng) for _ in range(n_fields)]
        for a in fields:
            A = diffusion_matrix(a)
            with threadpool_limits(limits=1, user_api="blas"):
                _, V = lanczos_ritz(A, min(ritz, A.shape[0]), rng=rng)
            gram = V.T @ spla.splu(A.tocsc()).solve(V)  # VᵀA⁻¹V, for the energy loss
            systems.append((grid, face_coefficients(a), V, 0.5 * (gram + gram.T), A))
            if verbose:
                print(f"training matrix {len(systems)}: grid {grid}, {V.shape[1]} Ritz vectors", flush=True)
    return systems


def dcdm_residuals(A, grid, model, count, *, rng=None, rtol=1e-6, maxiter=300, lu=None):
    """The residuals DCDM hands its direction model while solving ``A x = b`` for ``count`` right-hand sides.

    Half the right-hand sides are white noise (what `bench/dcdm.py` solves), half
    smooth (white noise after 20 damped-Jacobi sweeps).  Each solve runs DCDM with
    ``model`` (a `ConvDirectionModel`, or anything DCDM's ``model=`` accepts) and
    records every vector the model is applied to.  Returns ``(R, energy)``: the
    recorded residuals as unit rows (float64, ``(k, n)``) and ``rᵀA⁻¹r`` of each,
    computed with a sparse LU of A (``lu`` to reuse one).

    These are the inputs the model meets in use.  After the first step they are
    dominated by what the model handled worst, which a Ritz-vector training set
    of a large grid barely contains; training on them ("on-policy" data) aims
    the loss at the iterations DCDM actually spends.
    """
    from .dcdm import DCDM

    rng = np.random.default_rng(rng)
    A = A.tocsr()
    n = A.shape[0]
    lu = spla.splu(A.tocsc()) if lu is None else lu
    dinv = 1.0 / A.diagonal()
    seen = []
    solver = DCDM(A, grid=grid, model=model, rtol=rtol, maxiter=maxiter)
    inner = solver.model

    def recording(r):
        seen.append(np.array(r, dtype=np.float64))
        return inner(r)

    solver.model = recording
    for j in range(count):
        b = rng.standard_normal(n)
        if j % 2:
            x = np.zeros(n)
            for _ in range(20):
                x += 0.8 * dinv * (b - A @ x)
            b = x
        solver.solve(b)
    R = np.array(seen)
    R /= np.linalg.norm(R, axis=1, keepdims=True)
    energy = np.einsum("ij,ji->i", R, lu.solve(R.T))
    return R, energy


def train(out=None, *, grids=((32, 32), (64, 64)), n_fields=3, sigma=1.0, length=0.1, ritz=400,
          config=None, batch=16, lr=2e-3, minutes=5.0, max_steps=20_000, seed=0, log_every=50,
          threads=None, verbose=True, loss="residual", init=None, onpolicy=0, onpolicy_frac=0.5,
          onpolicy_rounds=1):
    """Train a DCDM network on 2D/3D diffusion systems and optionally save it to ``out`` (.npz).

    Parameters
    ----------
    out : path, optional
        Where to write the weights (atomic write).
    grids : sequence of tuples
        Training grids (all even; mixing sizes exercises the shared-weight recursion).
    n_fields : int
        Darcy fields per grid, besides the constant (Poisson) one.
    sigma, length : float
        Log-permeability standard deviation and correlation length of the fields.
    ritz : int
        Lanczos steps per training matrix.
    config : dict, optional
        Model configuration (`krylovlab.learned.model.CONFIG_KEYS`).
    batch, lr, minutes, max_steps : training budget; Adam with cosine learning-rate decay, stopping at
        whichever of ``minutes`` and ``max_steps`` comes first (the decay follows the one further along, so
        runs bounded by ``max_steps`` are reproducible; runs cut by ``minutes`` depend on machine speed).
    loss : {"residual", "energy"}
        ``"residual"``: the paper's ‖b − α·A·f(b)‖² with the optimal α.
        ``"energy"``: 1 − (qᵀb)²/(qᵀAq · bᵀA⁻¹b), q = f(b), the fraction of the
        energy error A⁻¹b that remains after the best step along q — what
        DCDM's convergence depends on (bᵀA⁻¹b exactly, from VᵀA⁻¹V computed once
        per training matrix with a sparse factorisation).
    seed : int
        Seeds numpy (fields, Lanczos, right-hand sides) and torch (initial weights).
    init : path or ConvDirectionModel, optional
        Start from these weights (fine-tuning).  ``config`` may only add the coefficient channel
        (``{"coef": 1}``, input weights starting at zero; see `from_model`).
    onpolicy : int
        DCDM solves per training matrix whose residuals (`dcdm_residuals`) join the data;
        0 trains on Ritz right-hand sides only (the paper's recipe).
    onpolicy_frac : float
        Fraction of batches drawn from those residuals (on matrices that have them).
    onpolicy_rounds : int
        How often the residuals are harvested, evenly over the budget, each time with
        the network as trained so far (1: once, with the initial network).

    Returns
    -------
    model : ConvDirectionModel
    log : dict
        Settings, steps done, wall time and the loss history (averaged every ``log_every`` steps).
    """
    torch = _torch()
    loss_kind = loss
    if loss_kind not in ("residual", "energy"):
        raise ValueError(f"loss must be 'residual' (the paper's) or 'energy', got {loss!r}")
    if threads is not None:
        torch.set_num_threads(int(threads))
    init_name = None if init is None or isinstance(init, ConvDirectionModel) else str(init)
    if init is not None:
        init = init if isinstance(init, ConvDirectionModel) else ConvDirectionModel.load(init)
        config = _widened(init.config, config)  # checked before the data is built
    counts = (onpolicy, onpolicy_rounds)
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in counts) or onpolicy < 0 \
            or onpolicy_rounds < 1 or not 0.0 <= onpolicy_frac <= 1.0:
        raise ValueError("need integers onpolicy >= 0 and onpolicy_rounds >= 1, and 0 <= onpolicy_frac <= 1")
    cfg = check_config(dict(config or {}))
    grids = [tuple(int(g) for g in grid) for grid in grids]
    for grid in grids:
        if len(grid) != cfg["dim"]:
            raise ValueError(f"training grid {grid} does not match the model dimension {cfg['dim']}")
        plan_levels(tuple(g // 2 for g in grid) if cfg["coarsen"] else grid, cfg)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    systems = _training_systems(grids, n_fields, sigma, length, ritz, rng, verbose)
    t_data = time.perf_counter() - t0

    def feature(grid, faces):  # the coefficient channel on the network's grid (coef=1), else None
        if not cfg["coef"]:
            return None
        net_grid = tuple(g // 2 for g in grid) if cfg["coarsen"] else grid
        return torch.from_numpy(coefficient_feature(diffusion_diagonal(faces).ravel(), grid, net_grid)[None])

    tsystems = [(grid, [torch.from_numpy(f[None].astype(np.float32)) for f in faces], (V, gram),
                 torch.from_numpy((1.0 / diffusion_diagonal(faces))[None].astype(np.float32)), feature(grid, faces))
                for grid, faces, V, gram, _ in systems]
    net = DCDMNet(cfg) if init is None else from_model(init, cfg)
    lus = {}  # sparse LU of each harvested matrix, kept for the later rounds
    pools, harvests, t_harvest = [None] * len(systems), 0, 0.0

    def harvest():
        nonlocal t_harvest
        th = time.perf_counter()
        current = to_model(net)
        for i, (grid, *_, A) in enumerate(systems):
            if cfg["coarsen"] and any(g % 4 for g in grid):
                continue  # the smoothed model needs multiples of 4
            if i not in lus:
                lus[i] = spla.splu(A.tocsc())
            pools[i] = dcdm_residuals(A, grid, current, onpolicy, rng=rng, lu=lus[i])
        t_harvest += time.perf_counter() - th
        if verbose:
            print(f"on-policy residuals: {sum(len(p[0]) for p in pools if p)} from {len(systems)} matrices "
                  f"({time.perf_counter() - th:.1f} s)", flush=True)

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    from ._fields import diffusion_apply

    def coarse_net(v, feat):  # restrict (2×2 sums), the network on the coarse grid, prolong (piecewise constant)
        F = torch.nn.functional
        pool = F.avg_pool2d if cfg["dim"] == 2 else F.avg_pool3d
        zc = net(pool(v.unsqueeze(1), 2).squeeze(1), feat)
        return F.interpolate(zc.unsqueeze(1), scale_factor=2, mode="nearest").squeeze(1)

    budget = 60.0 * minutes
    t1 = time.perf_counter()
    history, running, step = [], 0.0, 0
    while step < max_steps and time.perf_counter() - t1 - t_harvest < budget:
        progress = min(1.0, max(step / max_steps, (time.perf_counter() - t1 - t_harvest) / budget))
        if onpolicy and harvests < onpolicy_rounds and progress >= harvests / onpolicy_rounds:
            harvest()
            harvests += 1
        pick = int(rng.integers(len(tsystems)))
        grid, faces, (V, gram), dinv, feat = tsystems[pick]
        if pools[pick] is not None and rng.random() < onpolicy_frac:
            R, energy = pools[pick]
            rows = rng.integers(len(R), size=batch)
            b, bAinvb = R[rows], energy[rows]
        else:
            b, bAinvb = ritz_rhs(V, batch, rng=rng, gram=gram)
        b = torch.from_numpy(b.astype(np.float32)).reshape(batch, *grid)
        fb = [f.expand(batch, *f.shape[1:]) for f in faces]
        dims = tuple(range(1, b.ndim))
        if cfg["smooth"]:
            q = smoothed_apply((lambda v: coarse_net(v, feat)) if cfg["coarsen"] else (lambda v: net(v, feat)),
                               lambda v: diffusion_apply(fb, v, xp=torch),
                               dinv, b, cfg["smooth"],
                               cfg["omega_pct"] / 100.0, cfg["jscale"],
                               lambda u, v: (u * v).sum(dims, keepdim=True), tiny=1e-30)
        else:
            q = net(b, feat)
        Aq = diffusion_apply(fb, q, xp=torch)
        qb, qaq = (q * b).sum(dims), (q * Aq).sum(dims)
        if loss_kind == "energy":
            # fraction of the energy error e = A⁻¹b left after the best step along q: 1 − cos²_A(q, e)
            loss = (1.0 - qb**2 / ((qaq + 1e-30) * torch.from_numpy(bAinvb.astype(np.float32)))).mean()
        else:
            alpha = (qb / (qaq + 1e-30)).reshape(-1, *(1,) * len(dims))
            loss = ((b - alpha * Aq) ** 2).sum(dims).mean()
        opt.zero_grad()
        loss.backward()
        # cosine decay over whichever budget (steps or wall time, harvests excluded) is further along
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * progress))
        opt.step()
        running += float(loss.detach())
        step += 1
        if step % log_every == 0:
            history.append(running / log_every)
            if verbose:
                print(f"step {step:6d}  loss {history[-1]:.5f}  {time.perf_counter() - t1:7.1f} s", flush=True)
            running = 0.0
    model = to_model(net)
    log = {"seed": seed, "grids": [list(g) for g in grids], "n_fields": n_fields, "sigma": sigma, "length": length,
           "ritz": ritz, "loss": loss_kind, "batch": batch, "lr": lr, "steps": step, "max_steps": max_steps,
           "minutes": minutes, "init": init_name, "onpolicy": onpolicy,
           "onpolicy_frac": onpolicy_frac, "onpolicy_rounds": onpolicy_rounds,
           "harvests": harvests, "harvest_seconds": round(t_harvest, 1), "config": cfg,
           "data_seconds": round(t_data, 1), "train_seconds": round(time.perf_counter() - t1, 1),
           "loss_history": [round(v, 6) for v in history], "torch": torch.__version__}
    if out is not None:
        model.save(out, meta={k: v for k, v in log.items() if k != "loss_history"})
    return model, log


def _parse_grids(text: str):
    grids = []
    for part in text.split(","):
        dims = tuple(int(s) for s in part.lower().split("x"))
        grids.append(dims if len(dims) > 1 else (dims[0], dims[0]))
    return grids


def config_from_options(**opts) -> dict:
    """Model config from CLI-style options (unset ones take `CONFIG_KEYS` defaults)."""
    return {k: v for k, v in opts.items() if k in CONFIG_KEYS and v is not None}


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(CONFIG_KEYS))
