"""Learned elasticities against the true ones: error, bias and the honesty of the intervals."""

from __future__ import annotations

import polars as pl

from pipeline.contract import STATUS_COLD_START, STATUS_NOT_IDENTIFIED
from pipeline.evaluate.figures import finite

_POOLED = [STATUS_COLD_START, STATUS_NOT_IDENTIFIED]


def elasticity_report(versions: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """Learned vs true elasticities over products whose price varied and that have their own.

    A product has its own estimate when it reports its own interval and is neither a cold start
    nor `not_identified` (those take their category's pooled elasticity, without an interval).

    Args:
        versions: model_versions rows (product_id, elasticity, elasticity_lo/hi, status).
        truth: the world's truth (product_id, elasticity, price_varied).

    Returns:
        n_products; median and mean absolute error and the median bias (estimate - truth);
        the share of true values inside the reported ~90% interval and the interval's median
        width; the share of learned elasticities <= 0 (over all rows).
    """
    joined = versions.join(
        truth.select("product_id", pl.col("elasticity").alias("true"), "price_varied"),
        on="product_id",
    )
    own = joined.filter(
        pl.col("price_varied"),
        ~pl.col("status").is_in(_POOLED),
        pl.col("elasticity_lo").is_not_null(),
        pl.col("elasticity_hi").is_not_null(),
    )
    error = own["elasticity"] - own["true"]
    inside = (own["true"] >= own["elasticity_lo"]) & (own["true"] <= own["elasticity_hi"])
    return {
        "n_products": own.height,
        "median_abs_error": finite(error.abs().median()),
        "mean_abs_error": finite(error.abs().mean()),
        "median_bias": finite(error.median()),
        "interval_coverage": finite(inside.mean()),
        "median_interval_width": finite((own["elasticity_hi"] - own["elasticity_lo"]).median()),
        "share_nonpositive": finite((joined["elasticity"] <= 0).mean()),
    }


def exogenous(truth: pl.DataFrame) -> pl.DataFrame:
    """The truth of the products whose price does not follow their demand (all, in most worlds).

    Where prices are set from demand the regression cannot identify the elasticity; those
    products are measured on their own (`measures.endogenous_report`).
    """
    return truth.filter(~pl.col("endogenous")) if "endogenous" in truth.columns else truth
