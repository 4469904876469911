"""Tests for pipeline/pricing/scoring.py: candidate scores and the unconstrained optimum."""

from __future__ import annotations

import numpy as np
from scipy import stats

from pipeline.pricing import score_candidates, unconstrained_optimum


def test_score_candidates_known_numbers() -> None:
    prices = np.array([[5.0, 10.0, np.nan]])
    scores = score_candidates(
        prices, np.array([100.0]), np.array([10.0]), np.array([-2.0]), np.array([4.0])
    )
    np.testing.assert_allclose(scores.units[0, :2], [400.0, 100.0])
    np.testing.assert_allclose(scores.revenue[0, :2], [2000.0, 1000.0])
    np.testing.assert_allclose(scores.profit[0, :2], [400.0, 600.0])
    assert np.isnan(scores.profit[0, 2])


def test_uncertain_elasticities_score_the_mean_demand() -> None:
    # e ~ N(-2, 0.5^2): E[(x / ref) ** e] = (x / ref) ** -2 * exp((0.5 * log(x / ref)) ** 2 / 2),
    # checked against a numerical average over the normal distribution.
    prices = np.array([[5.0, 10.0, 15.0]])
    args = (prices, np.array([100.0]), np.array([10.0]), np.array([-2.0]), np.array([4.0]))
    point = score_candidates(*args)
    mean = score_candidates(*args, elasticity_sd=np.array([0.5]))
    draws = -2.0 + 0.5 * stats.norm.ppf((np.arange(20000) + 0.5) / 20000)
    averaged = 100.0 * ((prices[0][:, None] / 10.0) ** draws[None, :]).mean(axis=1)
    np.testing.assert_allclose(mean.units[0], averaged, rtol=1e-3)
    assert mean.units[0, 1] == point.units[0, 1]  # no uncertainty at the reference price
    assert (mean.units[0, [0, 2]] > point.units[0, [0, 2]]).all()
    zero = score_candidates(prices, np.array([0.0]), *args[2:], elasticity_sd=np.array([0.5]))
    assert (zero.units == 0.0).all()


def test_unconstrained_optimum_formulas() -> None:
    e = np.array([-2.0, -1.0, -0.5, -3.0])
    cost = np.array([5.0, 5.0, 5.0, 6.0])
    np.testing.assert_allclose(
        unconstrained_optimum(e, cost, "profit"), [10.0, np.inf, np.inf, 9.0]
    )
    revenue = unconstrained_optimum(e, cost, "revenue")
    assert revenue[0] == -np.inf and np.isnan(revenue[1]) and revenue[2] == np.inf
