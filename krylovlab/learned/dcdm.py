"""DCDM: the deep conjugate direction method (truncated flexible conjugate directions).

Kaneda, Akar, Chen, Kala, Hyde, Teran, "A Deep Conjugate Direction Method for
Iteratively Solving Linear Systems", ICML 2023 (PMLR 202:15720–15736).

Algorithm (A symmetric positive definite), from x₀ with r₀ = b − A x₀:

    for k = 1, 2, …
        q  ← f(r)                         a direction model, f ≈ c·A⁻¹ (any c)
        q  ← q − Σ_j (qᵀA p_j / p_jᵀA p_j) p_j   over the last n_keep directions
        α  ← qᵀr / qᵀA q                  exact line search in the A-norm
        x  ← x + α q;   r ← b − A x       (true residual, every iteration)
        keep (q, A q); drop the oldest beyond n_keep

With f = a fixed SPD preconditioner this is truncated flexible CG (Notay
2000); with the shipped convolutional network it is the paper's method
(n_keep = 2).  Every step minimises the A-norm error along q, so the energy
error never grows whatever f returns.

Safeguard (``safeguard=τ``, default 1): a step along q lowers the squared
energy error by (qᵀr)²/qᵀAq, a steepest-descent step by (rᵀr)²/rᵀAr.  When
the first is smaller than τ times the second (the model is worse than no
model), the step also goes along r, A-orthogonalised against the kept
directions and q, and the two line searches minimise the energy over
span{q, r} exactly; both directions are kept.  Flexible-CG theory then
guarantees at least steepest-descent progress every iteration, so a poor
model slows the solve down instead of stalling it at a large residual.
These steps are counted in ``extras["fallback_steps"]``.  ``safeguard=0``
turns the test off (one product with A less per iteration); a direction
with no component along r (|cos(q, r)| < 1e-6) is then still replaced by r.

Monitored norm: the true residual ‖b − A x‖₂, recomputed every iteration (the
convergence test is scipy's ``‖b − A x‖ ≤ max(atol, rtol‖b‖)``).
Cost per iteration: one model application, 3 matvecs (A q, A r for the
safeguard test, the true residual; one more on a safeguarded step), about
n_keep + 5 dot products.  Workspace: 2·n_keep + 5 n-vectors plus the model's
own (the CNN holds about 4·channels feature maps of the grid, float32).

Stops with `Status.STAGNATION` when the best residual has not improved by
``1e-3`` relatively for ``stagnation_window`` iterations, `Status.INDEFINITE`
when qᵀAq ≤ 0 or rᵀAr ≤ 0 (A not positive definite), `Status.PC_FAILED` when
the model returns NaN/Inf.
"""

from __future__ import annotations

import math
import os
from collections import deque

import numpy as np

from .._operator import as_preconditioner
from .._result import Status
from .._solver import Outcome, Problem, Solver
from .model import ConvDirectionModel, SmoothedDirection, load_model

__all__ = ["DCDM"]

#: below this |cos(q, r)| the model's direction is replaced by r (a near-orthogonal q makes no progress)
_MIN_COS = 1e-6


class DCDM(Solver):
    """Deep conjugate direction method with a pluggable direction model.

    Parameters
    ----------
    A : matrix-like
        SPD operator (scipy sparse, dense, LinearOperator, callable).
    grid : tuple of int, optional
        Grid shape of the unknowns (C order), required by the convolutional
        model: ``prod(grid)`` must equal ``A.shape[0]`` and every dimension
        must be even.  Ignored by other models.
    model : optional
        The direction model ``d = model(r)`` (≈ c·A⁻¹ r):

        * ``None`` — the shipped 2D model (`krylovlab.learned.model`): the
          network between smoothing sweeps with A (`SmoothedDirection`;
          symmetric Gauss–Seidel for a CSR matrix on the host, damped Jacobi
          otherwise);
        * a path to a ``.npz`` weight file, or a `ConvDirectionModel`;
        * a torch ``nn.Module`` mapping (batch, *grid) → (batch, *grid);
        * a pyamg hierarchy or anything with ``aspreconditioner()``, a matrix
          or `LinearOperator` approximating A⁻¹;
        * any callable ``r -> d``.
    n_keep : int
        Previous directions to A-orthogonalise against (2 in the paper; 0
        gives steepest descent along the model's directions).
    stagnation_window : int
        Iterations without a 0.1% improvement of the best residual before
        stopping with `Status.STAGNATION`.
    safeguard : float
        τ ≥ 0 of the steepest-descent safeguard (module docstring); 0 turns it off.
    rtol, atol, maxiter, monitors, history
        As for every `krylovlab.Solver`; ``maxiter`` defaults to 1000.
    M : optional
        Accepted as an alias of ``model`` (a preconditioner is a direction model).

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.learned import DCDM
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((64, 64))
    >>> res = DCDM(A, grid=(64, 64), rtol=1e-6).solve(np.ones(64 * 64))
    >>> res.converged, res.iterations < 100
    (True, True)
    >>> bool(np.linalg.norm(np.ones(64 * 64) - A @ res.x) <= 1e-6 * 64)
    True
    """

    method = "dcdm"
    norm = "true residual 2-norm ||b - Ax|| (recomputed every iteration)"
    supports_device = True

    def __init__(self, A=None, *, grid=None, model=None, n_keep: int = 2, stagnation_window: int = 50,
                 safeguard: float = 1.0, rtol=1e-5, atol=0.0, maxiter=None, M=None, monitors=(), history=False):
        if isinstance(n_keep, bool) or not isinstance(n_keep, (int, np.integer)) or n_keep < 0:
            raise ValueError(f"n_keep must be a non-negative integer, got {n_keep!r}")
        if isinstance(stagnation_window, bool) or not isinstance(stagnation_window, (int, np.integer)) \
                or stagnation_window < 1:
            raise ValueError(f"stagnation_window must be a positive integer, got {stagnation_window!r}")
        if isinstance(safeguard, bool) or not isinstance(safeguard, (int, float, np.integer, np.floating)) \
                or not math.isfinite(safeguard) or safeguard < 0:
            raise ValueError(f"safeguard must be a finite number >= 0, got {safeguard!r}")
        if model is not None and M is not None:
            raise ValueError("pass the direction model as model= or M=, not both")
        self.n_keep = int(n_keep)
        self.safeguard = float(safeguard)
        self.stagnation_window = int(stagnation_window)
        self.grid = None if grid is None else _check_grid(grid)
        self._model_source = model if model is not None else M
        self.model = None
        #: (directions p_j, products A p_j) kept at the end of the last solve, for inspection
        self.kept_directions: tuple[list, list] = ([], [])
        super().__init__(A, rtol=rtol, atol=atol, maxiter=maxiter, M=None, monitors=monitors, history=history)

    def default_maxiter(self, n: int) -> int:
        return 1000

    # ------------------------------------------------------------------ model binding
    def _operator_changed(self, old, new) -> None:
        self.model = _resolve_model(self._model_source, self.grid, new)

    def set_model(self, model) -> None:
        """Replace the direction model (checked against the current operator and grid)."""
        self._model_source = model
        if self.A is not None:
            self.model = _resolve_model(model, self.grid, self.A)

    # ------------------------------------------------------------------ iteration
    def _iterate(self, pb: Problem) -> Outcome:
        from threadpoolctl import threadpool_limits

        # user models may call BLAS; one thread avoids numpy/scipy pool fights on small cores
        with threadpool_limits(limits=1, user_api="blas"):
            return self._loop(pb)

    def _loop(self, pb: Problem) -> Outcome:
        xp = pb.xp
        x, b = pb.x, pb.b
        n = b.shape[0]
        model = self.model
        nmv = 0
        if pb.x0_given:
            r = pb.residual(x)  # r ← b − A x₀
            nmv += 1
        else:
            r = b.copy()
        rn = pb.norm(r)
        history = [rn] if pb.record_history else None
        extras = {"n_keep": self.n_keep, "model": _describe(model), "fallback_steps": 0,
                  "safeguard": self.safeguard}
        if rn <= pb.tol:
            return Outcome(x, _done(pb), 0, rn, nmv, 0, history, extras, rnorm_is_true=True)
        P, AP, PAP = deque(), deque(), deque()
        Aq = xp.empty_like(r)
        best, since_best = rn, 0
        status, it = Status.MAXITER, pb.maxiter
        for k in range(1, pb.maxiter + 1):
            q = model(r)  # q ← f(r) ≈ c·A⁻¹ r
            if getattr(q, "shape", None) != (n,):
                q = xp.asarray(q).reshape(-1)
                if q.shape != (n,):
                    raise ValueError(f"the direction model returned {q.shape[0]} values for a vector of length {n}")
            q = xp.array(q, dtype=pb.dtype, copy=True)  # own copy: it is kept as a direction
            if not bool(xp.isfinite(q).all()):
                status, it = Status.PC_FAILED, k - 1
                break
            self._orthogonalise(pb, q, None, P, AP, PAP)
            qr = pb.dot(q, r)
            qn = pb.norm(q)
            pb.matvec(q, Aq)  # Aq ← A q
            nmv += 1
            qaq = pb.dot(q, Aq)
            c = float(np.real(qaq))
            if not math.isfinite(c):
                status, it = Status.NANORINF, k - 1
                break
            if c <= 0.0 and qn > 0:
                status, it = Status.INDEFINITE, k - 1
                break
            gain_q = float(abs(qr)) ** 2 / c if c > 0 else 0.0  # energy-norm² decrease of a step along q
            extra = None
            if self.safeguard > 0:
                # compare with steepest descent: gain_r = (rᵀr)² / rᵀAr (one more product with A)
                Ar = pb.matvec(r)
                nmv += 1
                rar = float(np.real(pb.dot(r, Ar)))
                if not rar > 0.0:
                    status, it = (Status.INDEFINITE if math.isfinite(rar) else Status.NANORINF), k - 1
                    break
                if not gain_q >= self.safeguard * rn ** 4 / rar:
                    extra = r.copy()
            elif not (abs(qr) > _MIN_COS * qn * rn):
                extra = r.copy()  # the model gave (almost) nothing along r
            if c <= 0.0:  # q = 0: only the residual direction remains
                if extra is None:
                    extra = r.copy()
                use_q = False
            else:
                use_q = True
            if extra is not None:
                # safeguard: also step along the residual, A-orthogonalised against the kept directions and q
                # (the two line searches then minimise the energy over span{q, r} exactly)
                extras["fallback_steps"] += 1
                self._orthogonalise(pb, extra, None, P, AP, PAP)
                if use_q:
                    pb.k.axpby(-(pb.dot(Aq, extra) / qaq), q, 1.0, extra)
                Aw = pb.matvec(extra)
                nmv += 1
                waw = pb.dot(extra, Aw)
                if not float(np.real(waw)) > 0.0:
                    extra = None
                    if not use_q:
                        status, it = Status.BREAKDOWN, k - 1
                        break
            if use_q:
                pb.k.axpby(qr / qaq, q, 1.0, x)  # x ← x + α q,  α = qᵀr / qᵀAq
            if extra is not None:
                pb.k.axpby(pb.dot(extra, r) / waw, extra, 1.0, x)
            pb.residual(x, r)  # r ← b − A x (true residual)
            nmv += 1
            rn = pb.norm(r)
            if history is not None:
                history.append(rn)
            if not math.isfinite(rn):
                status, it = Status.NANORINF, k
                break
            if rn <= pb.tol:
                status, it = _done(pb), k
                pb.notify(k, rn, lambda: x)
                break
            if pb.notify(k, rn, lambda: x):
                status, it = Status.USER_STOP, k
                break
            if rn < (1.0 - 1e-3) * best:
                best, since_best = rn, 0
            else:
                since_best += 1
                if since_best >= self.stagnation_window:
                    status, it = Status.STAGNATION, k
                    break
            if self.n_keep:
                new = ([(q, Aq, qaq)] if use_q else []) + ([(extra, Aw, waw)] if extra is not None else [])
                for d, ad, dad in new:
                    if len(P) == self.n_keep:  # drop the oldest
                        P.popleft(); AP.popleft(); PAP.popleft()  # noqa: E702
                    P.append(d)
                    AP.append(ad)
                    PAP.append(dad)
                Aq = xp.empty_like(r)
        self.kept_directions = (list(P), list(AP))
        return Outcome(x, status, it, rn, nmv, 0, history, extras, rnorm_is_true=True)

    @staticmethod
    def _orthogonalise(pb, v, Av, P, AP, PAP):
        """v ← v − Σ_j (vᵀA p_j / p_jᵀA p_j) p_j over the kept directions (and Av alongside when given)."""
        for p, ap, pap in zip(P, AP, PAP):
            beta = pb.dot(ap, v) / pap
            pb.k.axpby(-beta, p, 1.0, v)
            if Av is not None:
                pb.k.axpby(-beta, ap, 1.0, Av)

    def __repr__(self):
        base = super().__repr__()[:-1]
        return f"{base}, grid={self.grid}, n_keep={self.n_keep}, model={_describe(self.model)})"


# ---------------------------------------------------------------------------------- helpers
def _done(pb: Problem) -> Status:
    return Status.ATOL if pb.solver.atol > 0 and pb.tol == pb.solver.atol else Status.RTOL


def _check_grid(grid) -> tuple[int, ...]:
    if np.isscalar(grid) or not hasattr(grid, "__len__"):
        raise ValueError(f"grid must be a tuple like (nx, ny) or (nx, ny, nz), got {grid!r}")
    out = []
    for g in grid:
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1:
            raise ValueError(f"grid must hold positive integers, got {grid!r}")
        out.append(int(g))
    if not 1 <= len(out) <= 3:
        raise ValueError(f"grid must have 1 to 3 dimensions, got {grid!r}")
    return tuple(out)


def _check_cells(grid, n):
    if grid is not None and int(np.prod(grid)) != n:
        raise ValueError(f"grid {grid} has {int(np.prod(grid))} cells but A has {n} unknowns")


def _resolve_model(source, grid, op):
    """Turn the user's model argument into a callable ``r -> d`` bound to this operator."""
    n = op.n
    _check_cells(grid, n)
    if source is None or isinstance(source, (str, os.PathLike)) or isinstance(source, ConvDirectionModel):
        if grid is None:
            raise ValueError("the DCDM network needs the grid shape: pass grid=(nx, ny) (or (nx, ny, nz)), "
                             "with prod(grid) == A.shape[0]")
        if source is None:
            model = load_model()
        elif isinstance(source, ConvDirectionModel):
            model = source
        else:
            model = ConvDirectionModel.load(source)
        if len(grid) != model.config["dim"]:
            raise ValueError(f"the DCDM network is {model.config['dim']}-D but grid={grid} has {len(grid)} "
                             "dimensions")
        model = model.with_grid(grid) if model.grid != grid else model
        if model.config["smooth"]:  # the network between smoothing sweeps with this A
            host_csr = op.kind == "csr" and not op.device and op.dtype == np.float64
            return SmoothedDirection(model, op.matvec, op.diagonal, csr=op.csr if host_csr else None)
        if model.config["coef"]:  # a private copy reading this A's coefficients
            if op.diagonal is None:
                raise ValueError("this DCDM model reads A's coefficients from its diagonal: pass an explicit "
                                 "matrix (sparse or dense)")
            model = model.with_coefficients(op.diagonal)
        return model
    if _is_torch_module(source):
        if grid is None:
            raise ValueError("a torch direction model needs grid=(nx, ny[, nz]) to reshape vectors")
        return _TorchDirection(source, grid)
    if hasattr(source, "aspreconditioner") or hasattr(source, "matvec") or hasattr(source, "shape"):
        return _PrecDirection(as_preconditioner(source, n, name="model"))
    if callable(source):
        return source
    raise TypeError(f"cannot use {type(source).__name__} as a DCDM direction model: pass None, a weight file, "
                    "a ConvDirectionModel, a torch module, a preconditioner or a callable r -> d")


def _is_torch_module(obj) -> bool:
    for cls in type(obj).__mro__:
        if cls.__module__.startswith("torch.nn") and cls.__name__ == "Module":
            return True
    return False


class _PrecDirection:
    def __init__(self, prec):
        self.prec = prec

    def __call__(self, r):
        return self.prec.apply(r)

    def __repr__(self):
        return f"preconditioner ({self.prec.description})"


class _TorchDirection:
    """A torch module as a direction model: (1, *grid) float32 in, (1, *grid) out."""

    def __init__(self, module, grid):
        self.module = module
        self.grid = grid

    def __call__(self, r):
        import torch

        param = next(self.module.parameters(), None)
        device = param.device if param is not None else "cpu"
        dtype = param.dtype if param is not None else torch.float32
        nrm = float(np.linalg.norm(r)) if isinstance(r, np.ndarray) else float((r * r).sum() ** 0.5)
        t = torch.as_tensor(r / (nrm or 1.0), device=device).to(dtype).reshape(1, *self.grid)
        with torch.no_grad():
            out = self.module(t)
        out = out.reshape(-1)
        if isinstance(r, np.ndarray):
            return out.cpu().numpy().astype(r.dtype)
        import cupy

        return cupy.asarray(out).astype(r.dtype)

    def __repr__(self):
        return f"torch module {type(self.module).__name__}"


def _describe(model) -> str:
    if isinstance(model, SmoothedDirection):
        return f"{model.describe()}+" + _describe(model.net)
    if isinstance(model, ConvDirectionModel):
        return f"cnn(grid={model.grid}, levels={model.levels}, params={model.n_params})"
    return repr(model) if isinstance(model, (_PrecDirection, _TorchDirection)) else type(model).__name__
