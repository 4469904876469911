"""Measure the pipeline against the synthetic world's ground truth (`demo_truth`).

Two questions: did the forecaster recover each product's true elasticity, and how much of the
profit that was there to capture did the recommended prices capture, under the same rules?
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from pipeline import pricing, synth
from pipeline.config import PricingConfig


def elasticity_report(versions: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """Learned vs true elasticities over products whose price varied and that have a model.

    Args:
        versions: latest model_versions rows (product_id, elasticity, elasticity_lo/hi, status).
        truth: demo_truth (product_id, elasticity, price_varied).

    Returns:
        n, median and mean absolute error, share of learned elasticities <= 0 (over all models),
        and the share of true values inside the reported interval.
    """
    joined = versions.join(
        truth.select("product_id", pl.col("elasticity").alias("true"), "price_varied"),
        on="product_id",
    )
    varied = joined.filter(pl.col("price_varied"), pl.col("status") != "not_identified")
    error = (varied["elasticity"] - varied["true"]).abs()
    inside = (varied["true"] >= varied["elasticity_lo"]) & (
        varied["true"] <= varied["elasticity_hi"]
    )
    return {
        "n_products": varied.height,
        "median_abs_error": _float(error.median()),
        "mean_abs_error": _float(error.mean()),
        "share_nonpositive": _float((joined["elasticity"] <= 0).mean()),
        "interval_coverage": _float(inside.mean()),
    }


def profit_capture(
    recommendations: pl.DataFrame,
    products: pl.DataFrame,
    truth: pl.DataFrame,
    start: dt.date,
    horizon: int,
    cfg: PricingConfig,
) -> tuple[dict, pl.DataFrame]:
    """True expected profit over the horizon at current, recommended and oracle prices.

    The oracle is the same pricing engine fed the true demand curves, so it obeys the same rules;
    capture = (recommended - current) / (oracle - current), overall and per category.
    """
    truth = truth.join(recommendations.select("product_id"), on="product_id", how="semi")
    truth = truth.sort("product_id")
    days = [start + dt.timedelta(days=k) for k in range(horizon)]
    ref = truth["ref_price"].to_numpy()
    demand = truth.select(
        "product_id",
        pl.Series("base_units", synth.true_expected_units(truth, days, ref)),
        "ref_price",
        "elasticity",
        pl.lit(None, pl.Float64).alias("elasticity_lo"),
        pl.lit(None, pl.Float64).alias("elasticity_hi"),
        pl.lit(None, pl.String).alias("hold_reason"),
    )
    oracle = pricing.recommend(products.join(demand, on="product_id", how="semi"), demand, cfg)
    frame = (
        recommendations.select("product_id", "current_price", "recommended_price")
        .join(
            oracle.select("product_id", pl.col("recommended_price").alias("oracle_price")),
            on="product_id",
        )
        .join(products.select("product_id", "category", "unit_cost"), on="product_id")
        .join(demand.select("product_id", "base_units", "ref_price", "elasticity"), on="product_id")
        .sort("product_id")
    )
    for name in ("current", "recommended", "oracle"):
        price = pl.col(f"{name}_price")
        units = pl.col("base_units") * (price / pl.col("ref_price")) ** pl.col("elasticity")
        frame = frame.with_columns(((price - pl.col("unit_cost")) * units).alias(f"{name}_profit"))
    per_category = (
        frame.group_by("category")
        .agg(pl.col("current_profit", "recommended_profit", "oracle_profit").sum())
        .with_columns(capture=_capture(pl.col))
        .sort("category")
    )
    totals = frame.select(pl.col("current_profit", "recommended_profit", "oracle_profit").sum())
    overall = totals.with_columns(capture=_capture(pl.col)).row(0, named=True)
    return {k: _float(v) for k, v in overall.items()}, per_category


def _capture(col) -> pl.Expr:
    gain = col("oracle_profit") - col("current_profit")
    return pl.when(gain > 0).then((col("recommended_profit") - col("current_profit")) / gain)


def _float(value: object) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None
