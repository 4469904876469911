"""How narrow one price test can make an elasticity's interval, predicted before the test runs.

A test (`pipeline.pricing.explore`) alternates a step from the price it started at and that
price, so it reads the elasticity from the difference between the log units sold on its step
days and on the days at the base price. With negative-binomial sales (variance mu + alpha mu^2)
the log of an average over n days has a variance of about (1 / mu + alpha) / n, whatever the
product's level. The elasticity's standard error from the test alone is therefore about

    sqrt((1 / units_a_day + dispersion) * (1 / step_days + 1 / base_days)) / |log(1 + step)|

where the base days include the history at that price (a product whose price never moved sold
every day of its history at it). What the engine knew before the test combines with it as an
independent piece of evidence (1 / sd^2 adds): the product's own interval where it has one (pooled
with its category's, as the forecaster reports it), else its category's spread, which the
forecaster's pooling gives a product whose own data say little. The width of the ~90% interval
at the test's end is 2 * Z90 times the result, the width that decides whether the test
identifies the product (narrower than `explore_width`).

The test's part leaves out what the regression spends on the season, the trend and the robust
(drift) variance, so it reads somewhat narrower than what a test reaches: `pricing bench
test-power` measures the two side by side on worlds that know the truth (about 0.9x). It tells a
pricing team, before a test costs anything, whether the test can identify the product: at a 5%
step over 4 weeks, a product selling 10 a day with dispersion 0.2 reads about 10 wide from the
test alone, and would need about 100 times the test days to reach 1 without its category's help.
"""

from __future__ import annotations

import math

import polars as pl

from pipeline.arrays import Z90
from pipeline.config import PricingConfig

# Units a day below this count as this many (a product that sold nothing is read as very slow).
_MIN_UNITS = 0.01


def phase_days(cfg: PricingConfig) -> tuple[int, int]:
    """Days of a test at its step and at its base price (phases alternate, a step first)."""
    phases, days = cfg.explore_phases, cfg.explore_min_days
    return math.ceil(phases / 2) * days, phases // 2 * days


def reach_width(
    units: pl.Expr,
    dispersion: pl.Expr,
    step: pl.Expr,
    history_days: pl.Expr,
    before_sd: pl.Expr,
    cfg: PricingConfig,
) -> pl.Expr:
    """The ~90% interval's predicted width at the end of a test (null where there is no step).

    Args:
        units: expected units a day at the test's base price.
        dispersion: the product's negative-binomial alpha (null: 0).
        step: the test's step, a fraction of its base price (the ladder's, not the config's).
        history_days: days of history before the test, all at the base price (an upper bound
            for a product whose price moved: its own estimate carries that part).
        before_sd: the elasticity's standard deviation before the test (its own interval's, or
            its category's spread; null: the test alone).
        cfg: the test's length (`explore_phases` x `explore_min_days`).
    """
    step_days, base_days = phase_days(cfg)
    noise = 1.0 / units.clip(_MIN_UNITS, None) + dispersion.fill_null(0.0).clip(0.0, None)
    base = history_days.cast(pl.Float64).fill_null(0.0).clip(0.0, None) + base_days
    shift = (1.0 + step).log().abs()  # a cut of 20% moves log price by 0.223, not 0.182
    test_var = noise * (1.0 / step_days + 1.0 / base) / shift**2
    sd = pl.when(before_sd > 0).then((1.0 / (1.0 / test_var + 1.0 / before_sd**2)).sqrt())
    sd = sd.otherwise(test_var.sqrt())
    return pl.when(shift > 0).then(2.0 * Z90 * sd)
