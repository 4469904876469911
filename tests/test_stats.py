"""Tests of pipeline/stats.py: the negative-binomial regression elasticity and its pooling."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipeline import synth
from pipeline.features import build_panel, calendar_features
from pipeline.stats import glm_elasticity, shrink_elasticities
from tests.worlds import sales_frame

START = dt.date(2025, 1, 1)


def test_glm_recovers_a_known_elasticity() -> None:
    rng = np.random.default_rng(1)
    days, truth = 600, np.array([-2.5, -0.8])
    price = np.where(rng.random((2, days)) < 0.2, 0.8, 1.0) * np.array([[4.0], [9.0]])
    price[:, 300:] *= 1.1
    weekday = np.array([(START + dt.timedelta(days=i)).weekday() for i in range(days)])
    mu = (
        np.array([[40.0], [25.0]])
        * (1 + 0.3 * (weekday >= 5))
        * (price / price[:, :1]) ** truth[:, None]
    )
    rows = [
        (pid, START + dt.timedelta(days=t), float(rng.poisson(mu[i, t])), price[i, t], False, False)
        for i, pid in enumerate("AB")
        for t in range(days)
    ]
    panel = build_panel(sales_frame(rows), ["A", "B"], START + dt.timedelta(days=days))
    estimate, se = glm_elasticity(panel, calendar_features(panel.start, panel.n_days))
    assert np.abs(estimate - truth).max() < 0.15
    assert (se > 0).all() and (se < 0.15).all()
    assert (np.abs(estimate - truth) < 3 * se).all()


def test_pooling_the_calendar_within_categories_sharpens_elasticities() -> None:
    # 80 products, 400 days: too short a history for each product to learn its own weekly and
    # yearly shape well. Borrowing the shape from its category cuts the error against the truth.
    world = synth.generate_world(80, 400, seed=0)
    panel = build_panel(world.sales, world.products["product_id"].to_list(), dt.date(2026, 11, 1))
    cal = calendar_features(panel.start, panel.n_days)
    truth = world.truth["elasticity"].to_numpy()
    scored = panel.price_varied & (panel.n_observed >= 90)
    own, own_se = glm_elasticity(panel, cal)
    pooled, pooled_se = glm_elasticity(panel, cal, world.truth["category"].to_numpy())
    own_error = np.abs(own - truth)[scored].mean()
    pooled_error = np.abs(pooled - truth)[scored].mean()
    assert pooled_error < 0.9 * own_error
    assert np.median(pooled_se[scored]) < np.median(own_se[scored])
    # Still honest: the truth lies inside the ~90% interval for most products.
    assert (np.abs(pooled - truth) <= 1.645 * pooled_se)[scored].mean() > 0.8


def test_pooling_falls_back_to_all_products_for_a_small_group() -> None:
    world = synth.generate_world(40, 400, seed=1)
    panel = build_panel(world.sales, world.products["product_id"].to_list(), dt.date(2026, 11, 1))
    cal = calendar_features(panel.start, panel.n_days)
    one_group = np.array(["all"] * 40)
    lonely = one_group.copy()
    lonely[0] = "alone"  # a group of one borrows from everyone
    alone, _ = glm_elasticity(panel, cal, lonely)
    together, _ = glm_elasticity(panel, cal, one_group)
    own, _ = glm_elasticity(panel, cal)
    assert alone[0] == pytest.approx(together[0], abs=1e-9)
    assert alone[0] != pytest.approx(own[0], abs=1e-6)  # it was pooled, not left alone


def test_shrinkage_moves_noisy_estimates_toward_their_group() -> None:
    estimate = np.array([-1.0, -1.2, -0.8, -3.0, -2.0, -2.2, -1.8])
    se = np.array([0.05, 0.05, 0.05, 2.0, 0.05, 0.05, 0.05])
    groups = np.array(["a", "a", "a", "a", "b", "b", "b"])
    post, post_se = shrink_elasticities(estimate, se, groups)
    assert post[0] == pytest.approx(-1.0, abs=0.02)  # precise: barely moves
    assert abs(post[3] - (-1.0)) < 0.5  # noisy: pulled most of the way to its group
    assert post_se[3] < se[3]
    assert (post <= -0.05).all()


def test_unidentified_products_do_not_flatten_the_pooling() -> None:
    estimate = np.array([-1.0, -2.0, -3.0, -0.05, -0.05])
    se = np.array([0.1, 0.1, 0.1, 30.0, 30.0])  # the last two: price never moved
    post, _ = shrink_elasticities(estimate, se, np.array(["a"] * 5))
    np.testing.assert_allclose(post[:3], estimate[:3], atol=0.05)
    assert post[3] == pytest.approx(-2.0, abs=0.05)
