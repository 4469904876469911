"""Tests of pipeline/features.py: panels, calendar features and the seasonal-naive baseline."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipeline.features import (
    N_CALENDAR,
    N_HISTORY,
    build_panel,
    calendar_features,
    history_features,
    panel_until,
    seasonal_naive,
)
from tests.worlds import sales_frame

START = dt.date(2025, 1, 1)


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


def test_panel_until_knows_only_the_days_before_it() -> None:
    day = lambda i: START + dt.timedelta(days=i)  # noqa: E731
    rows = [("A", day(i), 10.0, 2.0, False, False) for i in range(6)]
    rows += [("A", day(6), 40.0, 3.0, False, False), ("A", day(7), 50.0, 3.0, False, False)]
    rows += [("B", day(i), 4.0, 5.0, False, False) for i in (5, 6, 7)]  # launched on day 5
    full = build_panel(sales_frame(rows), ["A", "B"], as_of=day(8))
    head = panel_until(full, 6)
    # The same as a panel built as of day 6: the later price rise and sales are unknown.
    assert head.n_days == 6 and head.units.shape == (2, 6)
    assert head.ref_price.tolist() == [2.0, 5.0] and full.ref_price.tolist() == [2.0, 5.0]
    assert head.level.tolist() == [10.0, 4.0]
    assert full.level[0] == pytest.approx(150.0 / 8)
    assert head.n_observed.tolist() == [6, 1] and head.price_varied.tolist() == [False, False]
    assert full.price_varied.tolist() == [True, False]
    again = build_panel(sales_frame(rows), ["A", "B"], as_of=day(6))
    for name in ("units", "observed", "price", "ref_price", "level", "n_observed"):
        np.testing.assert_array_equal(getattr(head, name), getattr(again, name))
