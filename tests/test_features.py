"""Tests of pipeline/features.py: panels, calendar, baselines and the regression elasticities."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pipeline import synth
from pipeline.features import (
    N_CALENDAR,
    N_HISTORY,
    build_panel,
    calendar_features,
    glm_elasticity,
    history_features,
    seasonal_naive,
    shrink_elasticities,
)

START = dt.date(2025, 1, 1)


def sales_frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "product_id": pl.String, "ds": pl.Date, "units": pl.Float64, "price": pl.Float64,
            "promo": pl.Boolean, "stockout": pl.Boolean,
        },
        orient="row",
    )  # fmt: skip


def test_build_panel_aligns_products_and_ignores_the_future() -> None:
    day = lambda i: START + dt.timedelta(days=i)  # noqa: E731
    sales = sales_frame(
        [
            ("A", day(0), 5, 2.0, False, False),
            ("A", day(1), 7, 2.0, False, True),
            ("A", day(3), 9, 2.5, True, False),  # day 2 missing: unobserved
            ("B", day(2), 1, 10.0, False, False),
            ("A", day(4), 100, 2.5, False, False),  # on as_of: must be ignored
        ]
    )
    panel = build_panel(sales, ["A", "B", "C"], as_of=day(4))
    assert panel.n_days == 4 and panel.start == START and panel.end == day(4)
    assert panel.observed.tolist() == [
        [True, True, False, True],
        [False, False, True, False],
        [False, False, False, False],
    ]
    assert panel.units[0].tolist() == [5, 7, 0, 9]
    assert panel.price[0].tolist() == [2.0, 2.0, 2.0, 2.5]  # carried over the gap
    assert panel.price[1].tolist() == [10.0] * 4  # back-filled before launch
    assert panel.stockout[0, 1] and panel.promo[0, 3]
    assert panel.level[0] == pytest.approx((5 + 9) / 2)  # stockout day left out
    assert panel.price_varied.tolist() == [True, False, False]
    assert panel.select(np.array([1])).product_ids == ("B",)


def test_calendar_features_shapes_and_holiday_ramp() -> None:
    cal = calendar_features(dt.date(2025, 11, 1), 61)
    assert cal.shape == (61, N_CALENDAR)
    assert np.allclose(cal[:, :7].sum(axis=1), 1.0)
    christmas_eve = (dt.date(2025, 12, 24) - dt.date(2025, 11, 1)).days
    assert cal[christmas_eve, 13] == pytest.approx(1.0)
    assert cal[christmas_eve + 1, 13] == 0.0 and cal[christmas_eve + 1, 14] == pytest.approx(1.0)
    black_friday = (dt.date(2025, 11, 28) - dt.date(2025, 11, 1)).days
    assert cal[black_friday, 15] == 1.0 and cal[black_friday - 1, 15] == 0.0


def test_post_christmas_dip_fades_across_the_new_year() -> None:
    start = dt.date(2025, 12, 20)
    cal = calendar_features(start, 40)

    def dip(day: dt.date) -> float:
        return float(cal[(day - start).days, 14])

    assert dip(dt.date(2025, 12, 24)) == 0.0 and dip(dt.date(2025, 12, 25)) == pytest.approx(1.0)
    assert dip(dt.date(2026, 1, 4)) == pytest.approx(1.0 - 10 / 21)  # January too
    assert dip(dt.date(2026, 1, 15)) == 0.0 and dip(dt.date(2026, 1, 20)) == 0.0


def test_history_features_hide_censored_units() -> None:
    sales = sales_frame(
        [("A", START + dt.timedelta(days=i), 4.0, 1.0, False, i == 2) for i in range(5)]
    )
    panel = build_panel(sales, ["A"], START + dt.timedelta(days=5))
    feats = history_features(panel, calendar_features(panel.start, panel.n_days))
    assert feats.shape == (1, 5, N_HISTORY)
    assert feats[0, 2, 0] == 0.0 and feats[0, 2, 1] == 1.0  # stockout: flag, no units


def test_seasonal_naive_repeats_last_week() -> None:
    units = np.arange(30, dtype=float)[None, :]
    assert seasonal_naive(units, origin=21, horizon=9).tolist() == [
        [14, 15, 16, 17, 18, 19, 20, 14, 15]
    ]


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
