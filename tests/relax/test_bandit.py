"""Omega learners: valid distributions, seeded reproducibility, concentration, contexts, pickling, errors."""

import pickle

import numpy as np
import pytest

from krylovlab.relax import DEFAULT_ARMS, BinnedTsallisINF, ChebCB, TsallisINF
from krylovlab.relax.bandit import _tsallis_weights


def _toy_cost(omega, best=1.6, rng=None):
    noise = 0.0 if rng is None else rng.normal(0, 2)
    return max(0.0, 40 + 300 * abs(omega - best) + noise)


def _run(learner, rounds, cost=_toy_cost, context=None, rng=None):
    for t in range(rounds):
        c = None if context is None else context(t)
        w = learner.choose(context=c)
        learner.update(cost(w, c) if context is not None else cost(w, rng=rng))
    return learner


def test_default_arms():
    np.testing.assert_allclose(DEFAULT_ARMS, np.arange(1.0, 1.951, 0.05))
    assert DEFAULT_ARMS.size == 20


def test_probabilities_stay_a_distribution():
    learner = TsallisINF(rng=0)
    rng = np.random.default_rng(1)
    for t in range(400):
        p = learner.probabilities()
        assert np.all(p >= 0) and p.sum() == pytest.approx(1.0, abs=1e-12)
        learner.choose()
        learner.update(float(rng.choice([0.0, 1.0, 50.0, 1e4])))  # zero and wildly varying costs
    probs = learner.arm_probabilities
    assert probs.shape == (400, 20)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("spread", [0.0, 1e-8, 1.0, 1e3, 1e8])
def test_newton_normaliser_never_overshoots(spread):
    L = np.linspace(0, spread, 20)[::-1]
    for eta in (2.0, 0.2, 2e-3):
        p = _tsallis_weights(L, eta)
        assert np.all(np.isfinite(p)) and np.all(p >= 0)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.all(np.diff(p) >= -1e-15)  # smaller cumulative loss, larger probability


def test_seeded_reproducible_and_seed_sensitive():
    a = _run(TsallisINF(rng=7), 200, rng=np.random.default_rng(0))
    b = _run(TsallisINF(rng=7), 200, rng=np.random.default_rng(0))
    c = _run(TsallisINF(rng=8), 200, rng=np.random.default_rng(0))
    assert a.omega_history == b.omega_history
    assert a.omega_history != c.omega_history
    g = _run(TsallisINF(rng=np.random.default_rng(7)), 50)
    assert len(g.omega_history) == 50


def test_concentrates_on_best_arm_for_stationary_cost():
    learner = _run(TsallisINF(rng=3), 3000, rng=np.random.default_rng(4))
    best = int(np.argmin([_toy_cost(w) for w in learner.arms]))
    assert learner.arms[best] == pytest.approx(1.6)
    assert learner.arm_probabilities[-1].argmax() == best
    assert learner.arm_probabilities[-1][best] > 0.6
    last = np.array(learner.omega_history[-500:])
    assert np.mean(last == learner.arms[best]) > 0.6


def test_turn_order_and_cost_validation():
    learner = TsallisINF(rng=0)
    with pytest.raises(RuntimeError, match="without a pending"):
        learner.update(3)
    learner.choose()
    with pytest.raises(RuntimeError, match="twice"):
        learner.choose()
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="cost"):
            learner.update(bad)
    with pytest.raises(TypeError, match="cost"):
        learner.update("12")
    learner.update(12)
    assert learner.rounds == 1
    learner.choose()
    learner.cancel()
    assert learner.rounds == 1 and len(learner.omega_history) == 1
    with pytest.raises(ValueError, match="arm"):
        TsallisINF(arms=[0.5, 2.0])
    with pytest.raises(ValueError, match="baseline"):
        TsallisINF(baseline=2)


def test_binned_learns_each_bin_separately():
    def cost(w, c):
        return 40 + 300 * abs(w - (1.2 if c < 0.5 else 1.8))

    learner = BinnedTsallisINF(context_range=(0.0, 1.0), bins=2, rng=0)
    _run(learner, 3000, cost=cost, context=lambda t: 0.25 if t % 2 else 0.75)
    arms = list(learner.arms)
    assert learner.probabilities(0.1).argmax() == arms.index(1.2)
    assert learner.probabilities(0.9).argmax() == arms.index(1.8)
    assert learner.bin_of(-5.0) == 0 and learner.bin_of(7.0) == 1  # outside the range: end bins
    with pytest.raises(ValueError, match="context"):
        learner.choose()
    with pytest.raises(ValueError, match="bins"):
        BinnedTsallisINF(context_range=(0, 1), bins=0)


def test_chebcb_tracks_a_context_dependent_optimum():
    def cost(w, c):
        return 50 + 400 * (w - (1.1 + 0.8 * c)) ** 2

    learner = ChebCB(context_range=(0.0, 1.0), rng=0)
    _run(learner, 1500, cost=cost, context=lambda t: (t * 0.37) % 1.0)
    for c in (0.0, 0.25, 0.5, 0.75, 1.0):
        assert abs(learner.greedy(c) - (1.1 + 0.8 * c)) <= 0.05 + 1e-12
    p = learner.probabilities(0.5)
    assert np.all(p >= 0) and p.sum() == pytest.approx(1.0)
    assert np.all(learner.arm_probabilities.sum(axis=1) > 0.999999)
    for bad in (dict(degree=6), dict(gamma=0), dict(ridge=-1.0), dict(context_range=(1, 1))):
        with pytest.raises(ValueError):
            ChebCB(**{"context_range": (0, 1), **bad})
    with pytest.raises(TypeError, match="context"):
        learner.choose(context="hot")


@pytest.mark.parametrize("make", [
    lambda: TsallisINF(rng=5),
    lambda: BinnedTsallisINF(context_range=(0, 1), rng=5),
    lambda: ChebCB(context_range=(0, 1), rng=5),
])
def test_pickle_roundtrip_continues_identically(make):
    learner = make()
    ctx = (lambda t: (t * 0.29) % 1.0) if learner.contextual else None
    cost = (lambda w, c: 30 + 100 * abs(w - 1.5) + 50 * c) if learner.contextual else _toy_cost
    _run(learner, 60, cost=cost, context=ctx)
    clone = pickle.loads(pickle.dumps(learner))
    _run(learner, 30, cost=cost, context=ctx)
    _run(clone, 30, cost=cost, context=ctx)
    assert learner.omega_history == clone.omega_history
    np.testing.assert_array_equal(learner.arm_probabilities, clone.arm_probabilities)
    learner.reset()
    assert learner.rounds == 0 and learner.omega_history == []
