"""Thompson sampling for price tests: price on an elasticity drawn from the product's posterior.

The posterior is the category's prior updated by the product's own estimate
(`explore._estimates`: `post_mean`, `post_sd`). One draw per product and phase, seeded by
`explore_seed`, the test's start and its phase, so a night can be replayed; the probability of
the direction chosen (up or down from today's price) is recorded for off-policy evaluation.
"""

from __future__ import annotations

import zlib
from math import erf, sqrt

import numpy as np
import polars as pl

from pipeline.config import PricingConfig

RULE_THOMPSON = "thompson"


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + erf(x / sqrt(2)))


def thompson(frame: pl.DataFrame, cfg: PricingConfig) -> pl.DataFrame:
    """Price on an elasticity drawn from the posterior; one draw per product and phase.

    Args:
        frame: tonight's tests with product_id, test_started, test_phase, post_mean, post_sd,
            current_price and unit_cost.
        cfg: pricing rules (`explore_seed`, `max_change_up` for a drawn e >= -1).

    Returns:
        `frame` with drawn_elasticity, test_target_price, test_arm ("up" or "down"),
        test_rule and test_probability (the probability of the direction chosen).
    """
    draws, probability = [], []
    for row in frame.iter_rows(named=True):
        key = f"{cfg.explore_seed}|{row['product_id']}|{row['test_started']}|{row['test_phase']}"
        rng = np.random.default_rng(zlib.crc32(key.encode()))
        mean, sd = float(row["post_mean"]), float(row["post_sd"])
        e = float(mean + sd * rng.standard_normal())
        cur, cost = float(row["current_price"]), float(row["unit_cost"])
        # The optimum is above today's price exactly when e > -cur / (cur - cost).
        cut = -cur / (cur - cost) if cur > cost else -np.inf
        p_up = 1.0 - _normal_cdf((cut - mean) / sd)
        up = e >= -1 or e > cut
        target = cur * (1 + cfg.max_change_up) if e >= -1 else cost * e / (1 + e)
        draws.append((e, target, "up" if up else "down"))
        probability.append(p_up if up else 1.0 - p_up)
    return frame.with_columns(
        pl.Series("drawn_elasticity", [d[0] for d in draws], dtype=pl.Float64),
        pl.Series("test_target_price", [d[1] for d in draws], dtype=pl.Float64),
        pl.Series("test_arm", [d[2] for d in draws], dtype=pl.String),
        pl.lit(RULE_THOMPSON).alias("test_rule"),
        pl.Series("test_probability", probability, dtype=pl.Float64),
    )
