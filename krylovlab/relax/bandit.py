"""Online learners that pick SOR's relaxation factor ω across a sequence of solves.

Khodak, Chow, Balcan & Talwalkar, "Learning to Relax: Setting Solver
Parameters Across a Sequence of Linear System Instances", ICLR 2024: treat
each solve as one round of a multi-armed bandit whose arms are candidate ω
values and whose loss is the iteration count.  Only the cost of the ω that
was played is observed.

Every learner here is a small object with the same two calls::

    omega = learner.choose(context=None)   # before the solve
    learner.update(cost)                   # after it (e.g. result.iterations)

``choose`` and ``update`` alternate; calling them out of turn raises.  They
are seeded (``rng``: an int, a `numpy.random.SeedSequence` or a
`numpy.random.Generator`), picklable (plain numpy state; only unpickle files
you trust), and keep their history: ``omega_history``, ``cost_history``,
``context_history`` and ``arm_probabilities`` (the distribution each ω was
drawn from, one row per round).

* `TsallisINF` — the ½-Tsallis-entropy bandit of Zimmert & Seldin ("Tsallis-INF:
  an optimal algorithm for stochastic and adversarial bandits", JMLR 2021).
* `BinnedTsallisINF` — one `TsallisINF` per bin of a scalar context.
* `ChebCB` — a contextual bandit: per arm, a ridge regression of the
  (log) cost on Chebyshev polynomials of the context, with arms drawn by
  inverse-gap weighting (Foster & Rakhlin, "Beyond UCB", ICML 2020).
"""

from __future__ import annotations

import abc

import math
import numbers

import numpy as np

__all__ = ["DEFAULT_ARMS", "OmegaLearner", "TsallisINF", "BinnedTsallisINF", "ChebCB"]

#: ω ∈ {1.00, 1.05, …, 1.95}: the 20 arms of the paper
DEFAULT_ARMS = np.round(np.linspace(1.0, 1.95, 20), 10)


def _check_arms(arms) -> np.ndarray:
    a = np.asarray(DEFAULT_ARMS if arms is None else arms, dtype=float).reshape(-1)
    if a.size < 1:
        raise ValueError("arms must hold at least one omega value")
    if not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(a >= 2):
        raise ValueError(f"every arm must be an omega in the open interval (0, 2), got {a}")
    return a.copy()


def _check_cost(cost) -> float:
    if isinstance(cost, (bool, np.bool_)) or not isinstance(cost, numbers.Real):
        raise TypeError(f"cost must be a real number (e.g. an iteration count), got {cost!r}")
    cost = float(cost)
    if not math.isfinite(cost) or cost < 0:
        raise ValueError(f"cost must be finite and non-negative, got {cost!r}")
    return cost


def _check_range(context_range) -> tuple[float, float]:
    if context_range is None:
        raise ValueError("a contextual learner needs context_range=(low, high), the interval contexts come from")
    try:
        lo, hi = (float(v) for v in context_range)
    except (TypeError, ValueError):
        raise ValueError(f"context_range must be a pair (low, high), got {context_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"context_range must be finite with low < high, got {context_range!r}")
    return lo, hi


def _check_context(context) -> float:
    if context is None:
        raise ValueError("this learner is contextual: pass context=<a real number> to choose()/solve()")
    if isinstance(context, (bool, np.bool_)) or not isinstance(context, numbers.Real):
        raise TypeError(f"context must be a real number, got {context!r}")
    c = float(context)
    if not math.isfinite(c):
        raise ValueError(f"context must be finite, got {context!r}")
    return c


class OmegaLearner(abc.ABC):
    """Common bookkeeping: arms, rng, history and the choose/update turn order."""

    contextual = False

    def __init__(self, arms=None, *, rng=None):
        self.arms = _check_arms(arms)
        self._seed = rng
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self._pending = None  # (arm index, probability of that arm, context) between choose and update
        self.omega_history: list[float] = []
        self.cost_history: list[float] = []
        self.context_history: list[float | None] = []
        self._probs: list[np.ndarray] = []

    # ---------------------------------------------------------------- public protocol
    @property
    def n_arms(self) -> int:
        return self.arms.size

    @property
    def rounds(self) -> int:
        """Completed rounds (choose followed by update)."""
        return len(self.cost_history)

    @property
    def arm_probabilities(self) -> np.ndarray:
        """Distribution over ``arms`` used at each round (rounds × arms)."""
        if not self._probs:
            return np.empty((0, self.n_arms))
        return np.vstack(self._probs)

    def choose(self, context=None) -> float:
        """Draw the ω for the next solve."""
        if self._pending is not None:
            raise RuntimeError(f"{type(self).__name__}.choose() called twice: report the cost of the "
                               "previous choice with update(cost) first (or call cancel())")
        c = _check_context(context) if self.contextual else None
        p = self.probabilities(c if self.contextual else None)
        # inverse-CDF draw (one uniform per round; the last arm catches rounding in the cumulative sum)
        i = min(int(np.searchsorted(np.cumsum(p), self.rng.random(), side="right")), self.n_arms - 1)
        self._pending = (i, float(p[i]), c)
        self._probs.append(p)
        self.omega_history.append(float(self.arms[i]))
        self.context_history.append(c)
        return float(self.arms[i])

    def update(self, cost) -> None:
        """Report the cost (e.g. iterations) of the ω returned by the last `choose`."""
        if self._pending is None:
            raise RuntimeError(f"{type(self).__name__}.update() without a pending choose()")
        cost = _check_cost(cost)
        i, p, c = self._pending
        self._pending = None
        self.cost_history.append(cost)
        self._learn(i, p, c, cost)

    def cancel(self) -> None:
        """Forget the pending choice (its solve did not run, e.g. b = 0)."""
        if self._pending is not None:
            self._pending = None
            self._probs.pop()
            self.omega_history.pop()
            self.context_history.pop()

    def reset(self) -> None:
        """Forget everything learned; the random stream restarts from the seed when one was given."""
        type(self).__init__(self, **self._init_kwargs())

    # --------------------------------------------------------------------- subclasses
    @abc.abstractmethod
    def probabilities(self, context=None) -> np.ndarray:
        """Probability of each arm (for ``context``)."""

    @abc.abstractmethod
    def _learn(self, i, p, context, cost) -> None:
        """Update the estimates after arm ``i`` (chosen with probability ``p``) cost ``cost``."""

    def _init_kwargs(self) -> dict:
        return {"arms": self.arms, "rng": self._seed}

    def __repr__(self):
        return f"{type(self).__name__}(arms={self.n_arms}, rounds={self.rounds})"


class TsallisINF(OmegaLearner):
    """½-Tsallis-INF bandit over a grid of ω values.

    Round t samples arm i with probability

        p_i = 4 / (η_t (L̂_i / s − x))²,   η_t = 2 / √t,

    where L̂_i is the importance-weighted cumulative cost of arm i, s the
    running mean of the observed costs (so the learner does not care whether
    a cost is 10 or 10 000 iterations), and x the normaliser making
    Σ p_i = 1.  The played arm's estimate grows by (ℓ − B·s)/p_i: Zimmert &
    Seldin's reduced-variance estimator with baseline B (``baseline``,
    default ½ in units of the running mean; B = 0 is the plain
    importance-weighted estimate).  On the paper's synthetic SOR sequence
    B = ½ cut the excess over the best fixed ω from about 16% to 12%.  x
    is found by Newton's method on f(x) = Σ p_i(x) − 1, which is increasing
    and convex below the pole min L̂_i/s.  Newton starts at
    x₀ = min L̂_i/s − 2/η, where the smallest arm alone already has
    p = 1 so f(x₀) ≥ 0: from there the iterates decrease monotonically to the
    root and never cross the pole (starting further left, as the original
    MATLAB code does, lets the first step jump past it).

    Parameters
    ----------
    arms : array of ω in (0, 2), optional
        Default `DEFAULT_ARMS` (1.00, 1.05, …, 1.95).
    baseline : float in [0, 1]
        Variance-reduction baseline B, in units of the running mean cost.
    rng : seed or numpy Generator

    Examples
    --------
    >>> from krylovlab.relax import TsallisINF
    >>> learner = TsallisINF(rng=0)
    >>> for t in range(300):
    ...     omega = learner.choose()
    ...     learner.update(100 * abs(omega - 1.6) + 10)   # a toy cost, best at 1.6
    >>> learner.omega_history[-1], bool(learner.arm_probabilities[-1].max() > 0.5)
    (1.6, True)
    """

    def __init__(self, arms=None, *, baseline=0.5, rng=None):
        super().__init__(arms, rng=rng)
        if isinstance(baseline, bool) or not isinstance(baseline, numbers.Real) or not 0 <= baseline <= 1:
            raise ValueError(f"baseline must be a number in [0, 1], got {baseline!r}")
        self.baseline = float(baseline)
        self.loss_estimates = np.zeros(self.n_arms)  # L̂_i, in raw cost units
        self.cost_total = 0.0

    def _scale(self) -> float:
        n = len(self.cost_history)
        mean = self.cost_total / n if n else 1.0
        return mean if mean > 0 else 1.0

    def probabilities(self, context=None) -> np.ndarray:
        """Distribution of the next draw."""
        eta = 2.0 / math.sqrt(self.rounds + 1)
        L = self.loss_estimates / self._scale()
        return _tsallis_weights(L, eta)

    def _learn(self, i, p, context, cost):
        self.cost_total += cost
        s = self.cost_total / len(self.cost_history)  # running mean, this cost included
        # L̂_i ← L̂_i + (ℓ − B·s) / p_i: the reduced-variance estimate (adding B·s to every arm, which
        # would make it unbiased, leaves the distribution unchanged, so it is skipped)
        self.loss_estimates[i] += (cost - self.baseline * s) / p

    def _init_kwargs(self):
        return {**super()._init_kwargs(), "baseline": self.baseline}


def _tsallis_weights(L: np.ndarray, eta: float) -> np.ndarray:
    """p_i = 4 / (η (L_i − x))² with Σ p_i = 1 (Newton from the safe side)."""
    L = L - L.min()  # shift invariance: keeps numbers small
    x = -2.0 / eta  # min L − 2/η: f(x) ≥ 0 here, and x is below the pole at min L = 0
    for _ in range(100):
        w = 1.0 / (eta * (L - x))
        p = 4.0 * w * w
        f = p.sum() - 1.0
        if abs(f) <= 1e-13:
            break
        fprime = (2.0 * eta * p * w).sum()  # d/dx Σ 4/(η(L−x))² = Σ 8/(η²(L−x)³) = Σ 2η p_i w_i
        step = f / fprime
        x -= step
        if step <= 1e-16 * max(1.0, abs(x)):
            break
    p = 4.0 / (eta * (L - x)) ** 2
    return p / p.sum()


class BinnedTsallisINF(OmegaLearner):
    """Contextual bandit: the context interval cut into equal bins, one `TsallisINF` per bin.

    Parameters
    ----------
    arms : array of ω in (0, 2), optional
    context_range : (low, high)
        Interval contexts come from; contexts outside it go to the end bins.
    bins : int
        Number of equal bins (the paper uses 5 for SOR, 6 for the heat run).
    rng : seed or numpy Generator

    Examples
    --------
    >>> from krylovlab.relax import BinnedTsallisINF
    >>> learner = BinnedTsallisINF(context_range=(0.0, 1.0), bins=2, rng=0)
    >>> omega = learner.choose(context=0.3)
    >>> learner.update(42)
    >>> learner.rounds
    1
    """

    contextual = True

    def __init__(self, arms=None, *, context_range=None, bins=5, rng=None):
        super().__init__(arms, rng=rng)
        self.context_range = _check_range(context_range)
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}")
        self.bins = int(bins)
        self.learners = [TsallisINF(self.arms, rng=self.rng) for _ in range(self.bins)]

    def bin_of(self, context) -> int:
        lo, hi = self.context_range
        k = int(math.floor((_check_context(context) - lo) / (hi - lo) * self.bins))
        return min(max(k, 0), self.bins - 1)

    def probabilities(self, context=None) -> np.ndarray:
        return self.learners[self.bin_of(context)].probabilities()

    def _learn(self, i, p, context, cost):
        sub = self.learners[self.bin_of(context)]
        sub.cost_history.append(cost)
        sub._learn(i, p, None, cost)

    def _init_kwargs(self):
        return {**super()._init_kwargs(), "context_range": self.context_range, "bins": self.bins}


class ChebCB(OmegaLearner):
    """Contextual bandit with per-arm Chebyshev regression and inverse-gap weighting.

    The context c is mapped to u ∈ [−1, 1] over ``context_range`` (clipped)
    and expanded as φ(u) = (T₀(u), …, T_d(u)).  For each arm a ridge
    regression ŷ_i(u) = θ_iᵀ φ(u) of log(1 + cost) is kept as sufficient
    statistics (Gram matrix and right-hand side, d+1 numbers squared), so an
    update is O(d²) and a choice O(K d²).  The log makes the fit relative:
    iteration counts across ω and contexts span orders of magnitude, and a
    cost ratio is what matters.  Arms never played predict 0, below any
    observed log-cost, so each is tried early.

    Action choice (inverse-gap weighting): with b the arm of smallest
    prediction, every other arm gets p_i = 1 / (K + γ_t (ŷ_i − ŷ_b)) and b
    the rest; γ_t = ``gamma``·√(K t) grows so exploration fades.

    Parameters
    ----------
    arms : array of ω in (0, 2), optional
    context_range : (low, high)
        Interval the contexts come from.
    degree : int
        Chebyshev degree d, 0 to 5.
    gamma : float
        Exploitation rate constant (larger explores less).
    ridge : float
        Ridge penalty on the coefficients.
    rng : seed or numpy Generator

    Examples
    --------
    >>> from krylovlab.relax import ChebCB
    >>> learner = ChebCB(context_range=(0.0, 1.0), rng=0)
    >>> for t in range(400):
    ...     c = t % 10 / 10
    ...     omega = learner.choose(context=c)
    ...     learner.update(50 + 400 * (omega - (1.1 + 0.8 * c)) ** 2)  # best ω grows with c
    >>> abs(learner.greedy(0.0) - 1.1) <= 0.05, abs(learner.greedy(0.9) - 1.82) <= 0.1
    (True, True)
    """

    contextual = True

    def __init__(self, arms=None, *, context_range=None, degree=5, gamma=30.0, ridge=1e-3, rng=None):
        super().__init__(arms, rng=rng)
        self.context_range = _check_range(context_range)
        if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or not 0 <= degree <= 5:
            raise ValueError(f"degree must be an integer from 0 to 5, got {degree!r}")
        for name, v in (("gamma", gamma), ("ridge", ridge)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        self.degree = int(degree)
        self.gamma = float(gamma)
        self.ridge = float(ridge)
        m = self.degree + 1
        self.gram = np.tile(self.ridge * np.eye(m), (self.n_arms, 1, 1))  # λI + Σ φφᵀ per arm
        self.rhs = np.zeros((self.n_arms, m))  # Σ φ y per arm
        self.coef = np.zeros((self.n_arms, m))  # θ_i = gram_i⁻¹ rhs_i
        self.counts = np.zeros(self.n_arms, dtype=np.int64)

    def features(self, context) -> np.ndarray:
        lo, hi = self.context_range
        u = min(max(2.0 * (_check_context(context) - lo) / (hi - lo) - 1.0, -1.0), 1.0)
        phi = np.empty(self.degree + 1)
        phi[0] = 1.0
        if self.degree >= 1:
            phi[1] = u
        for k in range(2, self.degree + 1):
            phi[k] = 2.0 * u * phi[k - 1] - phi[k - 2]  # T_k = 2u T_{k−1} − T_{k−2}
        return phi

    def predict(self, context) -> np.ndarray:
        """Predicted log(1 + cost) of every arm at this context."""
        return self.coef @ self.features(context)

    def greedy(self, context) -> float:
        """The ω the model currently thinks best at this context (no exploration)."""
        return float(self.arms[int(np.argmin(self.predict(context)))])

    def probabilities(self, context=None) -> np.ndarray:
        y = self.predict(context)
        K = self.n_arms
        best = int(np.argmin(y))
        gamma = self.gamma * math.sqrt(K * (self.rounds + 1))
        p = 1.0 / (K + gamma * (y - y[best]))
        p[best] = 0.0
        p[best] = max(1.0 - p.sum(), 0.0)
        return p / p.sum()

    def _learn(self, i, p, context, cost):
        phi = self.features(context)
        y = math.log1p(cost)
        self.gram[i] += np.outer(phi, phi)  # G_i ← G_i + φφᵀ
        self.rhs[i] += y * phi  # h_i ← h_i + y φ
        self.coef[i] = np.linalg.solve(self.gram[i], self.rhs[i])  # θ_i ← G_i⁻¹ h_i
        self.counts[i] += 1

    def _init_kwargs(self):
        return {**super()._init_kwargs(), "context_range": self.context_range, "degree": self.degree,
                "gamma": self.gamma, "ridge": self.ridge}
