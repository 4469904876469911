"""Tests for pipeline/pricing/ladder.py: allowed ranges and candidate ladders."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipeline.config import PricingConfig
from pipeline.pricing import allowed_range, candidate_ladders
from pipeline.pricing.limits import resolve


def limits_for(
    cfg: PricingConfig,
    min_price: np.ndarray,
    max_price: np.ndarray,
    is_kvi: np.ndarray,
) -> Any:
    """Global rules only (no category or product rules) for unnamed products."""
    n = min_price.shape[0]
    return resolve([f"p{i}" for i in range(n)], ["c"] * n, is_kvi, min_price, max_price, cfg)


def test_allowed_range_records_the_rule_of_each_bound_in_order() -> None:
    cur = np.array([10.0, 10.0, 10.0])
    limits = limits_for(
        PricingConfig(),
        min_price=np.array([9.5, 1.0, 1.0]),
        max_price=np.array([10.5, 100.0, 100.0]),
        is_kvi=np.array([False, True, False]),
    )
    prange = allowed_range(cur, np.array([1.0, 1.0, 9.0]), limits)
    np.testing.assert_allclose(prange.lower, [9.5, 9.5, 9.45])
    np.testing.assert_allclose(prange.upper, [10.5, 10.5, 11.0])
    assert list(prange.lower_rule) == ["min_price", "max_change_down", "margin_floor"]
    assert list(prange.upper_rule) == ["max_price", "max_change_up", "max_change_up"]
    assert prange.feasible.all()


def test_ladder_uses_integer_cents_and_all_endings() -> None:
    cfg = PricingConfig(price_endings=(0.49, 0.99))
    # 4.99 * 0.9 = 4.491 excludes 4.49; the upper bound 6.7 includes 6.49 but not 6.99.
    ladder = candidate_ladders(np.array([4.99]), np.array([4.99 * 0.9]), np.array([6.7]), cfg)
    assert ladder.shape == (1, cfg.n_candidates + 1)
    assert ladder[0][np.isfinite(ladder[0])].tolist() == [4.99, 5.49, 5.99, 6.49]


def test_ladder_bounds_survive_float_cents() -> None:
    # 0.1 * 3 = 0.30000000000000004 and 4.35 * 100 = 434.99999999999994: both bounds are
    # themselves allowed prices and must stay in the ladder.
    cfg = PricingConfig(price_endings=(0.30, 0.35))
    ladder = candidate_ladders(np.array([2.0]), np.array([0.1 * 3]), np.array([4.35]), cfg)
    prices = ladder[0][np.isfinite(ladder[0])].tolist()
    assert prices == [0.3, 0.35, 1.3, 1.35, 2.0, 2.3, 2.35, 3.3, 3.35, 4.3, 4.35]


def test_ladder_adds_the_current_price_even_off_ending() -> None:
    ladder = candidate_ladders(np.array([5.25]), np.array([4.0]), np.array([6.5]), PricingConfig())
    assert ladder[0][np.isfinite(ladder[0])].tolist() == [4.99, 5.25, 5.99]


def test_ladder_subsamples_evenly_and_keeps_both_extremes() -> None:
    cfg = PricingConfig(n_candidates=5)
    ladder = candidate_ladders(np.array([50.99]), np.array([1.0]), np.array([100.0]), cfg)
    # 99 prices 1.99 .. 99.99; steps round(k * 98 / 4) = 0, 25, 49, 74, 98 (half up).
    assert ladder[0].tolist() == [
        1.99,
        26.99,
        50.99,
        75.99,
        99.99,
        pytest.approx(np.nan, nan_ok=True),
    ]


def test_ladder_with_any_cent_and_nan_range() -> None:
    cfg = PricingConfig(price_endings=(), n_candidates=10)
    ladder = candidate_ladders(
        np.array([1.0, 2.0]), np.array([1.0, np.nan]), np.array([1.05, np.nan]), cfg
    )
    assert ladder[0][np.isfinite(ladder[0])].tolist() == [1.0, 1.01, 1.02, 1.03, 1.04, 1.05]
    assert ladder[1][np.isfinite(ladder[1])].tolist() == [2.0]
