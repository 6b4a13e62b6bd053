"""The DCDM convolutional network, evaluated on krylovlab's own kernels.

Shape (Kaneda et al., ICML 2023, "model from 64", made configurable):

    input  r / rms(r) on the grid (unit mean square, so the scale the
           network sees does not depend on the grid size), and with
           ``coef=1`` the coefficient channel beside it
    conv 3×3 (1 or 2)→C (linear)
    level(h):
        n_pre residual blocks            h ← relu(h + conv_b(relu(conv_a(h))))
        skip ← h;  h ← avgpool 2×
        h ← level(h)         if another level is allowed (same weights: a
                             multigrid-like recursion), else n_coarse blocks
        h ← upsample 2× (nearest) + skip
        n_post residual blocks
    1×1 mix C→1 (linear)

All convolutions are 3×3 (3×3×3 in 3D), 'same' zero padding, with bias.  With
``levels=1`` this is the paper's shape (one pooling level with a skip).
``levels=0`` recurses with shared weights while every grid dimension stays
even and the coarse grid keeps at least ``min_coarse`` cells per side; the
weights never depend on the grid size.

Config keys ``smooth`` (ν > 0), ``omega_pct``, ``jscale`` and ``coarsen`` make
`DCDM` wrap the network in `SmoothedDirection`: ν damped-Jacobi sweeps with A
before and after it (the arrangement it is trained in; at inference a host CSR
matrix gets symmetric Gauss–Seidel sweeps instead), Jacobi scaling D^-1/2 of
its input and output, and (``coarsen=1``) evaluation on the 2× coarser grid
between 2×2 restriction and piecewise-constant prolongation (see
`smoothed_apply`).  ``coef=1`` adds a second input channel, the centred
log diag(A) on the network's grid (`coefficient_feature`), which `DCDM` sets
from each matrix (zero until set: constant coefficients).  The shipped
weights use ``smooth=2, omega_pct=80, jscale=1, coarsen=1, coef=1``.

Inference runs in float32 on ``krylovlab.kernels.cpu`` (numba) for numpy
input and ``krylovlab.kernels.gpu`` (CuPy) for CuPy input; torch is needed only
to train (`krylovlab.learned.train`).  Weights live in plain ``.npz`` files
(loaded with ``allow_pickle=False``): arrays named ``in.w``, ``in.b``,
``pre.{k}.{a|b}.{w|b}``, ``coarse.…``, ``post.…``, ``out.w``, ``out.b`` in
torch layout, and a JSON ``config`` string.
"""

from __future__ import annotations

import json
import math
import os
from importlib import resources

import numpy as np

__all__ = ["ConvDirectionModel", "SmoothedDirection", "smoothed_apply", "default_weights_path", "load_model",
           "coefficient_feature", "CONFIG_KEYS", "SGS_SWEEPS"]

#: configuration stored with the weights (and its defaults)
CONFIG_KEYS = {"dim": 2, "channels": 16, "n_pre": 1, "n_coarse": 2, "n_post": 1, "levels": 0, "min_coarse": 4,
               "bias": 1, "smooth": 0, "omega_pct": 80, "jscale": 0, "coarsen": 0, "coef": 0}

_SHIPPED = "dcdm2d_c16.npz"


def default_weights_path() -> str:
    """Path of the shipped 2D weights (trained by `krylovlab.learned.train`; see weights/README.md)."""
    return str(resources.files("krylovlab.learned").joinpath("weights", _SHIPPED))


def load_model(path=None, grid=None) -> "ConvDirectionModel":
    """Load a `ConvDirectionModel` from ``path`` (default: the shipped 2D weights)."""
    return ConvDirectionModel.load(default_weights_path() if path is None else path, grid=grid)


def block_names(cfg: dict) -> list[tuple[str, str]]:
    """(prefix, role) of every 3×3 convolution after the input layer, in evaluation order of definition."""
    out = []
    for group in ("pre", "coarse", "post"):
        for k in range(cfg[f"n_{group}"]):
            out.append((f"{group}.{k}.a", group))
            out.append((f"{group}.{k}.b", group))
    return out


def check_config(cfg: dict) -> dict:
    """Fill defaults and validate a model configuration; raise ValueError on nonsense."""
    unknown = set(cfg) - set(CONFIG_KEYS)
    if unknown:
        raise ValueError(f"unknown model config keys {sorted(unknown)}; valid: {sorted(CONFIG_KEYS)}")
    out = {**CONFIG_KEYS, **cfg}
    for key, value in out.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"model config {key!r} must be an integer, got {value!r}")
        out[key] = int(value)
    if out["dim"] not in (2, 3):
        raise ValueError(f"model config dim must be 2 or 3, got {out['dim']}")
    if out["channels"] < 1 or min(out["n_pre"], out["n_coarse"], out["n_post"], out["levels"]) < 0:
        raise ValueError(f"model config has a negative or zero size: {out}")
    if out["bias"] not in (0, 1):
        raise ValueError("model config bias must be 0 or 1")
    if out["min_coarse"] < 1:
        raise ValueError("model config min_coarse must be >= 1")
    if out["smooth"] < 0 or not 0 < out["omega_pct"] < 200 or out["jscale"] not in (0, 1):
        raise ValueError("model config needs smooth >= 0, 0 < omega_pct < 200 and jscale 0 or 1")
    if out["coarsen"] not in (0, 1) or (out["coarsen"] and not out["smooth"]):
        raise ValueError("model config coarsen must be 0 or 1, and 1 needs smooth > 0")
    if out["coef"] not in (0, 1):
        raise ValueError("model config coef must be 0 or 1")
    return out


def coefficient_feature(diagonal, grid, net_grid) -> np.ndarray:
    """The coefficient channel of a ``coef=1`` network: log diag(A), block-averaged onto ``net_grid``, minus its mean.

    ``diagonal`` is A's diagonal on ``grid`` (C order); ``net_grid`` is the grid the
    network runs on (``grid`` itself, or every side divided by the same power of 2).
    For a diffusion matrix −∇·(a∇u) the diagonal is the sum of the face
    coefficients, so this is log a up to a constant: the mean is removed because
    the network's input r/rms(r) and the line search already take out the overall
    scale.  Returns float32 of shape ``net_grid``.
    """
    d = np.asarray(diagonal, dtype=np.float64).real.reshape(grid)
    if not np.all(d > 0) or not np.all(np.isfinite(d)):
        raise ValueError("the coefficient channel needs a finite, positive diagonal (A symmetric positive definite)")
    f = np.log(d)
    for axis, (g, c) in enumerate(zip(grid, net_grid)):
        if g % c:
            raise ValueError(f"cannot average grid {grid} onto {net_grid}")
        k = g // c
        if k > 1:
            f = f.reshape(f.shape[:axis] + (c, k) + f.shape[axis + 1:]).mean(axis=axis + 1)
    return (f - f.mean()).astype(np.float32)


def plan_levels(grid: tuple[int, ...], cfg: dict) -> int:
    """Number of pooling levels used on ``grid`` (at least 1; raises if the grid cannot pool once)."""
    if any(g % 2 for g in grid) or min(grid) < 2:
        raise ValueError(f"the DCDM network pools by 2, so every grid dimension must be even and >= 2; got {grid}")
    depth, dims = 1, tuple(g // 2 for g in grid)
    limit = cfg["levels"] if cfg["levels"] > 0 else 64
    while depth < limit and all(d % 2 == 0 for d in dims) and min(dims) // 2 >= cfg["min_coarse"]:
        depth += 1
        dims = tuple(d // 2 for d in dims)
    return depth


class ConvDirectionModel:
    """The DCDM network as a direction model ``d = model(r)`` (see module docstring).

    Parameters
    ----------
    weights : dict of str → array
        Arrays in torch layout (see module docstring).
    config : dict
        Keys of `CONFIG_KEYS`.
    grid : tuple of int, optional
        Grid shape; ``prod(grid)`` must equal the length of the vectors the
        model is applied to.  May be set later with `with_grid`.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.learned.model import load_model
    >>> model = load_model(grid=(32, 32))
    >>> d = model(np.random.default_rng(0).standard_normal(32 * 32))
    >>> d.shape, d.dtype
    ((1024,), dtype('float64'))
    """

    def __init__(self, weights: dict, config: dict, grid=None):
        self.config = check_config(dict(config))
        c, dim = self.config["channels"], self.config["dim"]
        k = (3,) * dim
        expect = {"in.w": (c, 1 + self.config["coef"], *k), "in.b": (c,), "out.w": (c,), "out.b": ()}
        for name, _ in block_names(self.config):
            expect[f"{name}.w"] = (c, c, *k)
            expect[f"{name}.b"] = (c,)
        missing = sorted(set(expect) - set(weights))
        if missing:
            raise ValueError(f"DCDM weights are missing arrays {missing}")
        extra = sorted(set(weights) - set(expect))
        if extra:
            raise ValueError(f"DCDM weights have unexpected arrays {extra}")
        self.weights = {}
        for name, shape in expect.items():
            a = np.asarray(weights[name])
            if a.shape != shape:
                raise ValueError(f"DCDM weight {name!r} has shape {a.shape}, expected {shape}")
            if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
                raise ValueError(f"DCDM weight {name!r} must be finite floating point")
            self.weights[name] = np.array(a, dtype=np.float32, order="C")
        self._device_weights = None
        self._work: dict = {}
        self.grid = None
        self.feature = None
        if grid is not None:
            self.set_grid(grid)

    # ---------------------------------------------------------------------------- io
    @classmethod
    def load(cls, path, grid=None) -> "ConvDirectionModel":
        """Read weights from an ``.npz`` file (no pickle; malformed files raise ValueError)."""
        try:
            with np.load(os.fspath(path), allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"cannot read DCDM weights from {path!r}: {exc}") from exc
        if "config" not in arrays:
            raise ValueError(f"{path!r} is not a krylovlab DCDM weight file (no 'config' entry)")
        try:
            config = json.loads(str(arrays.pop("config")))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path!r}: the 'config' entry is not valid JSON") from exc
        if not isinstance(config, dict):
            raise ValueError(f"{path!r}: the 'config' entry must be a JSON object")
        arrays.pop("meta", None)
        return cls(arrays, config, grid=grid)

    def save(self, path, meta: dict | None = None) -> None:
        """Write the weights to ``path`` (.npz, atomic: temp file then rename)."""
        path = os.fspath(path)
        tmp = path + ".tmp.npz"
        extra = {"config": np.array(json.dumps(self.config))}
        if meta is not None:
            extra["meta"] = np.array(json.dumps(meta))
        np.savez(tmp, **self.weights, **extra)
        os.replace(tmp, path)

    @property
    def n_params(self) -> int:
        return int(sum(a.size for a in self.weights.values()))

    # -------------------------------------------------------------------------- grid
    def set_grid(self, grid) -> None:
        """Fix the grid shape the model runs on (checks it against the model's dimension)."""
        if np.isscalar(grid):
            raise ValueError(f"grid must be a tuple of {self.config['dim']} ints, got {grid!r}")
        grid = tuple(int(g) for g in grid)
        if len(grid) != self.config["dim"]:
            raise ValueError(f"this DCDM model is {self.config['dim']}-D, but grid={grid} has {len(grid)} dimensions")
        self.levels = plan_levels(grid, self.config)
        if grid != self.grid:
            self.feature = None
        self.grid = grid
        self.n = int(np.prod(grid))

    def with_grid(self, grid) -> "ConvDirectionModel":
        """A model sharing these weights on another grid (with no coefficient channel set)."""
        other = object.__new__(type(self))
        other.config, other.weights = self.config, self.weights
        other._device_weights, other._work, other.grid, other.feature = None, {}, None, None
        other.set_grid(grid)
        return other

    def set_feature(self, feature) -> None:
        """Set the coefficient channel of a ``coef=1`` model (see `coefficient_feature`), shape ``grid``.

        `DCDM` sets it from A's diagonal.  Until it is set the channel is zero,
        which is what a constant-coefficient matrix gives.
        """
        if not self.config["coef"]:
            raise ValueError("this DCDM model has no coefficient channel (config coef=0)")
        if self.grid is None:
            raise ValueError("set the model's grid before its coefficient channel")
        f = np.asarray(feature, dtype=np.float32)
        if f.shape != self.grid or not np.all(np.isfinite(f)):
            raise ValueError(f"the coefficient channel must be finite with shape {self.grid}, got {f.shape}")
        self.feature = f
        for bufs in self._work.values():
            self._fill_feature(bufs)

    def with_coefficients(self, diagonal, grid=None) -> "ConvDirectionModel":
        """A copy on this grid whose coefficient channel is set from A's diagonal (host or device array).

        ``grid`` is the grid of ``diagonal`` (default: this model's grid; a finer
        grid is block-averaged, see `coefficient_feature`).  A copy, because the
        channel belongs to one matrix while the weights are shared.
        """
        from ..backend import get_backend

        other = self.with_grid(self.grid)
        host = get_backend(diagonal).to_host(diagonal)
        other.set_feature(coefficient_feature(host, grid or self.grid, self.grid))
        return other

    def _fill_feature(self, bufs):
        if self.feature is not None:
            from ..backend import get_backend

            inner = (1,) + (slice(1, -1),) * len(self.grid)
            bufs["input"][inner] = get_backend(bufs["input"]).xp.asarray(self.feature)

    # ------------------------------------------------------------------------ forward
    def __call__(self, r):
        """Apply the network to the vector ``r`` (length prod(grid)); returns a vector of r's dtype."""
        if self.grid is None:
            raise ValueError("the DCDM model has no grid: pass grid=(nx, ny[, nz]) to DCDM or call set_grid")
        if r.ndim != 1 or r.shape[0] != self.n:
            raise ValueError(f"the DCDM model runs on grid {self.grid} ({self.n} cells) but got a vector of shape {r.shape}")
        if type(r).__module__.split(".")[0] == "cupy":
            from ..kernels.gpu import _conv as kern

            xp = __import__("cupy")
            weights = self._gpu_weights()
        else:
            from ..kernels.cpu import _conv as kern

            xp = np
            weights = self.weights
        bufs = self._buffers(xp)
        nrm = float(xp.linalg.norm(r)) if xp is not np else float(np.sqrt(np.dot(r, r).real))
        y = bufs["y"]
        if nrm == 0.0 or not math.isfinite(nrm):
            y[...] = 0.0 if nrm == 0.0 else np.nan
            return y.astype(r.dtype, copy=True)
        ops = _Ops(kern, self.config["dim"])
        x0 = bufs["input"]
        ops.load(r, math.sqrt(self.n) / nrm, x0)  # input ← r / rms(r): unit mean square on any grid
        top = bufs["levels"][0]
        ops.conv(x0, weights["in.w"], weights["in.b"], None, False, top[0])
        h = self._level(ops, weights, bufs["levels"], 0, top[0])
        ops.mix(h, weights["out.w"], float(self.weights["out.b"]), y)
        return y.astype(r.dtype, copy=True)

    def _level(self, ops, wts, levels, depth, h):
        cfg = self.config
        bufs = levels[depth]
        free = [b for b in bufs if b is not h]
        h = self._blocks(ops, wts, "pre", cfg["n_pre"], h, free, bufs)
        skip = h
        coarse = levels[depth + 1][0]
        ops.pool(skip, coarse)
        if depth + 1 < self.levels:
            c = self._level(ops, wts, levels, depth + 1, coarse)
        else:
            cb = levels[depth + 1]
            c = self._blocks(ops, wts, "coarse", cfg["n_coarse"], coarse, [b for b in cb if b is not coarse], cb)
        out = next(b for b in bufs if b is not skip)
        ops.up(c, skip, out)
        return self._blocks(ops, wts, "post", cfg["n_post"], out, [b for b in bufs if b is not out], bufs)

    @staticmethod
    def _blocks(ops, wts, group, count, h, free, bufs):
        # one residual block: t ← relu(conv_a(h)); h ← relu(conv_b(t) + h)
        for k in range(count):
            t, y = free[0], free[1]
            ops.conv(h, wts[f"{group}.{k}.a.w"], wts[f"{group}.{k}.a.b"], None, True, t)
            ops.conv(t, wts[f"{group}.{k}.b.w"], wts[f"{group}.{k}.b.b"], h, True, y)
            free = [t, h]
            h = y
        return h

    def _buffers(self, xp):
        key = xp.__name__
        if key not in self._work or self._work[key]["grid"] != self.grid:
            c = self.config["channels"]
            levels = []
            dims = self.grid
            for _ in range(self.levels + 1):
                shape = (c, *(d + 2 for d in dims))
                levels.append([xp.zeros(shape, dtype=xp.float32) for _ in range(3)])
                dims = tuple(d // 2 for d in dims)
            self._work[key] = {
                "grid": self.grid,
                "levels": levels,
                "input": xp.zeros((1 + self.config["coef"], *(d + 2 for d in self.grid)), dtype=xp.float32),
                "y": xp.zeros(self.n, dtype=xp.float32),
            }
            self._fill_feature(self._work[key])
        return self._work[key]

    def _gpu_weights(self):
        if self._device_weights is None:
            import cupy

            self._device_weights = {k: cupy.asarray(v) for k, v in self.weights.items()}
        return self._device_weights

    def macs_per_cell(self) -> float:
        """Multiply-adds per grid cell of one application (for cost estimates)."""
        c, dim = self.config["channels"], self.config["dim"]
        taps = 3**dim
        conv = c * c * taps
        cfg = self.config
        total, scale = 0.0, 1.0
        levels = self.levels if self.grid is not None else 1
        for _ in range(levels):
            total += scale * 2 * (cfg["n_pre"] + cfg["n_post"]) * conv
            scale /= 2**dim
        total += scale * 2 * cfg["n_coarse"] * conv
        return total + c * taps * (1 + cfg["coef"]) + c

    def __repr__(self):
        return f"ConvDirectionModel(config={self.config}, grid={self.grid}, params={self.n_params})"


class _Ops:
    """Dispatch to the 2D or 3D kernels of one backend."""

    def __init__(self, kern, dim):
        sfx = "2d" if dim == 2 else "3d"
        self._conv = getattr(kern, f"conv3x3_{sfx}")
        self.pool = getattr(kern, f"avgpool2_{sfx}")
        self.up = getattr(kern, f"upsample2_add_{sfx}")
        self._mix = getattr(kern, f"mix_out_{sfx}")
        self._load = getattr(kern, f"load_input_{sfx}")
        self._empty = np.empty((0,) * (dim + 1), dtype=np.float32)
        self._kern = kern

    def conv(self, inp, w, b, skip, relu, out):
        if skip is None:
            skip = self._empty if isinstance(inp, np.ndarray) else inp[:0]
        self._conv(inp, w, b, skip, relu, out)

    def mix(self, h, w, b, y):
        self._mix(h, w, np.float32(b), y)

    def load(self, r, scale, out):
        self._load(r, scale, out)


# ------------------------------------------------------------------------------ smoothed direction
def smoothed_apply(net, matvec, dinv, r, nu, omega, jscale, dot, tiny=0.0):
    """The network between damped-Jacobi sweeps (training, and inference without a host CSR matrix).

    With x = 0 and the running residual ρ = r − A x:

        ν times:  x ← x + ω D⁻¹ ρ                  (pre-smoothing: local, high-frequency error)
        z ← S·net(S·ρ),  S = D^{-1/2} if jscale else I
        x ← x + (zᵀρ / zᵀA z)·z                    (the network's correction, scaled by a line search)
        ν times:  x ← x + ω D⁻¹ ρ                  (post-smoothing)

    ``matvec`` applies A, ``dinv`` is 1/diag(A) (broadcastable to ``r``), ``dot``
    an inner product over the grid that keeps the batch dimension (torch) or
    returns a scalar (numpy).  The smoother sees A itself, so the part of the
    direction it supplies adapts to the coefficients; the network supplies the
    smooth (global) part.  Costs 2ν + 1 products with A.
    """
    x = None
    rho = r
    for _ in range(nu):
        dx = omega * (dinv * rho)
        x = dx if x is None else x + dx
        rho = rho - matvec(dx)
    if jscale:
        s = dinv ** 0.5
        z = s * net(s * rho)
    else:
        z = net(rho)
    Az = matvec(z)
    zaz = dot(z, Az)
    if tiny:  # training: keep the division finite
        alpha = dot(z, rho) / (zaz + tiny)
    else:
        zaz = float(zaz)
        alpha = float(dot(z, rho)) / zaz if zaz > 0 else 0.0
    x = alpha * z if x is None else x + alpha * z
    for k in range(nu):
        rho = rho - alpha * Az if k == 0 else rho - matvec(dx)
        dx = omega * (dinv * rho)
        x = x + dx
    return x


#: symmetric Gauss–Seidel sweeps (before, after) the network when DCDM has A as a host CSR matrix
SGS_SWEEPS = (2, 8)


class SmoothedDirection:
    """A `ConvDirectionModel` whose config asks for smoothing (``smooth`` = ν > 0), bound to an operator.

    ``d = model(r)`` is the network between smoothing sweeps with A (float64
    arithmetic around the float32 network).  Two smoothers:

    * ``csr`` given (a real scipy CSR matrix on the host): symmetric
      Gauss–Seidel, ``sweeps = (pre, post)`` sweeps (default `SGS_SWEEPS`)::

          x ← pre SGS sweeps on A x = r from x = 0;   ρ ← r − A x
          z ← S·net(S·ρ);   x ← x + (zᵀρ / zᵀAz)·z;   ρ ← ρ − (zᵀρ / zᵀAz)·Az
          x ← x + (post SGS sweeps on A e = ρ from e = 0)

      The network was trained behind 2 Jacobi sweeps; one or two SGS sweeps
      give it residuals of the same smoothness, while more sweeps before it
      made the solve worse (Poisson 256²: 10 iterations with 2, 19 with 4).
      After it, more sweeps cost little (one sweep is about two products with A)
      and remove the local error that the network cannot see, so the split
      is uneven.
    * otherwise (GPU, dense or implicit operators): the damped-Jacobi
      arrangement the network was trained with, `smoothed_apply`.
    """

    def __init__(self, net: ConvDirectionModel, matvec, diagonal, csr=None, sweeps=SGS_SWEEPS):
        if diagonal is None:
            raise ValueError("the shipped DCDM model smooths with A's diagonal: pass an explicit matrix (sparse or "
                             "dense), or a plain model via model=...")
        d = diagonal.real if hasattr(diagonal, "real") else diagonal
        if not bool((d > 0).all()):
            raise ValueError("the smoothed DCDM model needs a positive diagonal (A symmetric positive definite)")
        self.grid = net.grid
        if net.config["coarsen"]:  # the network runs on the 2× coarser grid, between restriction and prolongation
            if any(g % 4 for g in net.grid):
                raise ValueError(f"this DCDM model runs on the 2x coarser grid, so every grid dimension must be a "
                                 f"multiple of 4; got {net.grid}")
            self._coarse = net.with_grid(tuple(g // 2 for g in net.grid))
            if net.config["coef"]:
                self._coarse = self._coarse.with_coefficients(diagonal, self.grid)
        else:
            self._coarse = None
            if net.config["coef"]:
                net = net.with_coefficients(diagonal)
        self.net = net
        self.matvec = matvec
        self.dinv = 1.0 / d
        cfg = net.config
        self.nu, self.omega, self.jscale = cfg["smooth"], cfg["omega_pct"] / 100.0, bool(cfg["jscale"])
        self.sweeps = None
        if csr is not None:
            pre, post = (int(v) for v in sweeps)
            if pre < 0 or post < 0:
                raise ValueError(f"sweeps must be two counts >= 0, got {sweeps!r}")
            from ..kernels.cpu import split_diagonal

            csr = csr if csr.has_sorted_indices else csr.sorted_indices()
            self._csr = (csr.indptr, csr.indices, np.ascontiguousarray(csr.data, dtype=np.float64))
            self._lo, self._up = split_diagonal(csr.indptr, csr.indices)
            self._dinv64 = np.ascontiguousarray(self.dinv, dtype=np.float64)
            self._scale = np.sqrt(self._dinv64) if self.jscale else 1.0  # Jacobi scaling D^-1/2, once
            self.sweeps = (pre, post)

    def _net_coarse(self, v):
        """restrict (2×2 sums) → network on the coarse grid → prolong (piecewise constant)."""
        grid = self.grid
        dim = len(grid)
        split = tuple(x for g in grid for x in (g // 2, 2))
        vc = v.reshape(split).sum(axis=tuple(range(1, 2 * dim, 2)))
        zc = self._coarse(vc.reshape(-1)).reshape(tuple(g // 2 for g in grid))
        for ax in range(dim):
            zc = zc.repeat(2, axis=ax)
        return zc.reshape(-1)

    def _sgs(self, rhs, count, residual=True):
        """``count`` symmetric Gauss–Seidel sweeps on A x = rhs from x = 0; returns (x, rhs − A x),
        the residual only when asked for (else None)."""
        from ..kernels.cpu._amg import _lower_residual_serial, _sgs_fused

        indptr, indices, data = self._csr
        x = np.zeros_like(rhs)
        s = np.empty_like(rhs)
        for k in range(count):
            _sgs_fused(indptr, indices, data, self._dinv64, self._lo, self._up, x, rhs, s, k == 0)
        if not residual:
            return x, None
        _lower_residual_serial(indptr, indices, data, self._lo, x, s)  # s ← rhs − A x (fused with the sweep)
        return x, s

    def __call__(self, r):
        net = self.net if self._coarse is None else self._net_coarse
        if self.sweeps is None or not isinstance(r, np.ndarray) or r.dtype != np.float64:
            dot = (lambda u, v: np.dot(u, v)) if isinstance(r, np.ndarray) else (lambda u, v: float((u * v).sum()))
            return smoothed_apply(net, self.matvec, self.dinv, r, self.nu, self.omega, self.jscale, dot)
        pre, post = self.sweeps
        if pre:
            x, rho = self._sgs(r, pre)
        else:
            x, rho = np.zeros_like(r), r.copy()
        s = self._scale
        z = s * net(s * rho)
        Az = self.matvec(z)
        zaz = float(np.dot(z, Az))
        if zaz > 0:
            alpha = float(np.dot(z, rho)) / zaz
            x += alpha * z
            rho -= alpha * Az
        if post:
            x += self._sgs(rho, post, residual=False)[0]
        return x

    def describe(self) -> str:
        if self.sweeps is None:
            return f"jacobi({self.nu})"
        return f"sgs({self.sweeps[0]}/{self.sweeps[1]})"

    def __repr__(self):
        return f"SmoothedDirection(smoother={self.describe()}, jscale={self.jscale}, net={self.net!r})"
