"""Measure the pipeline against the synthetic world's ground truth (`demo_truth`).

Three questions: did the forecaster recover each product's true elasticity; how much of the profit
that was there to capture did the recommended prices capture, under the same rules; and how does
that compare with a plain per-product log-log regression of units on price fed through the same
pricing engine (the baseline a pricing team would try first)?
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from pipeline import pricing, synth
from pipeline.arrays import Z90
from pipeline.config import PricingConfig
from pipeline.contract import (
    ACTION_HOLD,
    STATUS_COLD_START,
    STATUS_NOT_IDENTIFIED,
    STATUS_TRAINED,
)
from pipeline.frames import format_text

PROFITS = ("current_profit", "recommended_profit", "oracle_profit", "oracle_priced_profit")


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
    varied = joined.filter(pl.col("price_varied"), pl.col("status") != STATUS_NOT_IDENTIFIED)
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


# --- the log-log baseline ------------------------------------------------------------------------


def loglog_table(
    sales: pl.DataFrame,
    products: pl.DataFrame,
    horizon: int,
    min_history_days: int,
) -> pl.DataFrame:
    """A plain per-product log-log regression of units on price, as a forecaster's product table.

    Per product, ordinary least squares of log(units) on log(price) over its days with sales and
    no stockout (no calendar, trend or promotion controls: the plain baseline). The slope is the
    elasticity, with a ~90% interval from its standard error; the level over the horizon is the
    fitted daily units at today's price times `horizon`. A product with fewer than
    `min_history_days` days is a cold start; one whose price never varied is not identified; both
    carry a hold_reason, as the forecaster's table does, so the engine treats them alike.

    Args:
        sales: product_id, ds, units, price, stockout (history before the priced horizon).
        products: product_id, current_price, category.
        horizon: days priced.
        min_history_days: fewest observed days to fit a product.

    Returns:
        product_id, category, status, hold_reason, ref_price, base_units, elasticity,
        elasticity_lo, elasticity_hi (the columns `pricing.recommend` reads).
    """
    fits = _loglog_fits(sales)
    table = products.select("product_id", "category", pl.col("current_price").alias("ref_price"))
    table = table.join(fits, on="product_id", how="left").with_columns(
        pl.col("n_days").fill_null(0), pl.col("n_fit").fill_null(0)
    )
    status = (
        pl.when(pl.col("n_days") < min_history_days)
        .then(pl.lit(STATUS_COLD_START))
        .when(~pl.col("varied").fill_null(False))
        .then(pl.lit(STATUS_NOT_IDENTIFIED))
        .otherwise(pl.lit(STATUS_TRAINED))
    )
    reason = (
        pl.when(pl.col("status") == STATUS_COLD_START)
        .then(
            format_text("cold start: {} days of history (minimum {})", "n_days", min_history_days)
        )
        .when(pl.col("status") == STATUS_NOT_IDENTIFIED)
        .then(pl.lit("price never varied: elasticity not identifiable"))
    )
    level = (pl.col("intercept") + pl.col("slope") * pl.col("ref_price").log()).exp() * horizon
    return (
        table.with_columns(status.alias("status"))
        .with_columns(
            reason.alias("hold_reason"),
            level.alias("base_units"),
            pl.col("slope").alias("elasticity"),
            (pl.col("slope") - Z90 * pl.col("se")).alias("elasticity_lo"),
            (pl.col("slope") + Z90 * pl.col("se")).alias("elasticity_hi"),
        )
        .select(
            "product_id",
            "category",
            "status",
            "hold_reason",
            "ref_price",
            "base_units",
            "elasticity",
            "elasticity_lo",
            "elasticity_hi",
        )
    )


def _loglog_fits(sales: pl.DataFrame) -> pl.DataFrame:
    """Per product: observed days, whether the price varied, and the OLS fit on selling days."""
    days = sales.group_by("product_id").agg(
        pl.len().alias("n_days"), (pl.col("price").n_unique() > 1).alias("varied")
    )
    x, y = pl.col("price").log(), pl.col("units").log()
    moments = (
        sales.filter((pl.col("units") > 0) & ~pl.col("stockout").fill_null(False))
        .group_by("product_id")
        .agg(
            pl.len().alias("n_fit"),
            x.mean().alias("mx"),
            y.mean().alias("my"),
            ((x - x.mean()) ** 2).sum().alias("sxx"),
            ((x - x.mean()) * (y - y.mean())).sum().alias("sxy"),
            ((y - y.mean()) ** 2).sum().alias("syy"),
        )
    )
    sxx = pl.col("sxx")
    slope = pl.when(sxx > 0).then(pl.col("sxy") / sxx)
    residual = (pl.col("syy") - pl.col("sxy") ** 2 / sxx) / (pl.col("n_fit") - 2)
    fits = moments.with_columns(slope.alias("slope")).with_columns(
        (pl.col("my") - pl.col("slope") * pl.col("mx")).alias("intercept"),
        pl.when(pl.col("n_fit") > 2).then((residual / sxx).sqrt()).alias("se"),
    )
    return days.join(
        fits.select("product_id", "n_fit", "slope", "intercept", "se"),
        on="product_id",
        how="left",
    ).with_columns(pl.col("varied") & pl.col("slope").is_not_null())


# --- profit capture ------------------------------------------------------------------------------


def true_demand(truth: pl.DataFrame, start: dt.date, horizon: int) -> pl.DataFrame:
    """The true demand curves over the horizon, in the forecaster's table format."""
    truth = truth.sort("product_id")
    days = [start + dt.timedelta(days=k) for k in range(horizon)]
    ref = truth["ref_price"].to_numpy()
    return truth.select(
        "product_id",
        pl.Series("base_units", synth.true_expected_units(truth, days, ref)),
        "ref_price",
        "elasticity",
        pl.lit(None, pl.Float64).alias("elasticity_lo"),
        pl.lit(None, pl.Float64).alias("elasticity_hi"),
        pl.lit(None, pl.String).alias("hold_reason"),
    )


def _oracles(
    recommendations: pl.DataFrame, products: pl.DataFrame, demand: pl.DataFrame, cfg: PricingConfig
) -> pl.DataFrame:
    """Oracle prices: the engine on the true curves, free and with the same products held."""
    catalogue = products.join(demand, on="product_id", how="semi")
    free = pricing.recommend(catalogue, demand, cfg)
    held = recommendations.filter(pl.col("action") == ACTION_HOLD)["product_id"]
    same_holds = demand.with_columns(
        hold_reason=pl.when(pl.col("product_id").is_in(held.to_list())).then(
            pl.lit("held by the recommendation")
        )
    )
    priced = pricing.recommend(catalogue, same_holds, cfg)
    return free.select("product_id", pl.col("recommended_price").alias("oracle_price")).join(
        priced.select("product_id", pl.col("recommended_price").alias("oracle_priced_price")),
        on="product_id",
    )


def profit_capture(
    recommendations: pl.DataFrame,
    products: pl.DataFrame,
    truth: pl.DataFrame,
    start: dt.date,
    horizon: int,
    cfg: PricingConfig,
) -> tuple[dict, pl.DataFrame]:
    """True expected profit over the horizon at current, recommended and oracle prices.

    The oracle is the same pricing engine fed the true demand curves, so it obeys the same rules
    (guardrails, endings, family order, change budget, revenue floor). capture = (recommended -
    current) / (oracle - current), overall and per category, against two oracles: one free to
    price every product (`capture`, the headline) and one that holds the same products the
    recommendation held (`capture_priced`: how well the products that were priced were priced).

    Returns:
        The overall totals, captures and hold count, and one row per category with the same.
    """
    demand = true_demand(
        truth.join(recommendations.select("product_id"), on="product_id", how="semi"),
        start,
        horizon,
    )
    frame = (
        recommendations.select("product_id", "current_price", "recommended_price", "action")
        .join(_oracles(recommendations, products, demand, cfg), on="product_id")
        .join(products.select("product_id", "category", "unit_cost"), on="product_id")
        .join(demand.select("product_id", "base_units", "ref_price", "elasticity"), on="product_id")
    )
    for name in ("current", "recommended", "oracle", "oracle_priced"):
        price = pl.col(f"{name}_price")
        units = pl.col("base_units") * (price / pl.col("ref_price")) ** pl.col("elasticity")
        frame = frame.with_columns(((price - pl.col("unit_cost")) * units).alias(f"{name}_profit"))
    sums = [pl.col(*PROFITS).sum(), (pl.col("action") == ACTION_HOLD).sum().alias("n_held")]
    per_category = frame.group_by("category").agg(*sums).with_columns(_captures()).sort("category")
    overall = frame.select(*sums).with_columns(_captures()).row(0, named=True)
    totals = {k: v if k == "n_held" else _float(v) for k, v in overall.items()}
    return totals, per_category


def _captures() -> list[pl.Expr]:
    def capture(oracle: str) -> pl.Expr:
        gain = pl.col(oracle) - pl.col("current_profit")
        return pl.when(gain > 0).then(
            (pl.col("recommended_profit") - pl.col("current_profit")) / gain
        )

    return [
        capture("oracle_profit").alias("capture"),
        capture("oracle_priced_profit").alias("capture_priced"),
    ]


def evaluate_policies(
    recommendations: pl.DataFrame,
    products: pl.DataFrame,
    sales: pl.DataFrame,
    truth: pl.DataFrame,
    start: dt.date,
    horizon: int,
    min_history_days: int,
    cfg: PricingConfig,
) -> dict[str, Any]:
    """Profit capture of the model's recommendations and of the log-log baseline, side by side.

    The baseline is fitted on `sales` (the warehouse history before `start`), priced by the same
    engine with the same rules and hold policy, and scored against the same oracle.

    Returns:
        {"model": ..., "loglog": ...}, each with "overall" (dict) and "per_category" (list of
        dicts), and the baseline's "elasticity" accuracy.
    """
    baseline = loglog_table(sales, products, horizon, min_history_days)
    priced = {
        "model": recommendations,
        "loglog": pricing.recommend(products, baseline, cfg),
    }
    report: dict[str, Any] = {}
    for name, recs in priced.items():
        overall, per_category = profit_capture(recs, products, truth, start, horizon, cfg)
        report[name] = {"overall": overall, "per_category": per_category.to_dicts()}
    trained = baseline.filter(pl.col("status") == STATUS_TRAINED)
    report["loglog"]["elasticity"] = elasticity_report(trained, truth)
    return report


def _float(value: object) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def capture_text(report: dict[str, Any]) -> str:
    """`evaluate_policies`' report as an aligned table: the model beside the log-log baseline."""
    model, loglog = report["model"], report["loglog"]
    lines = [
        "true expected profit over the horizon, oracle = the same engine on the true demand:",
        f"  {'':<22}{'model':>14}{'log-log':>14}",
    ]
    for key, label in (
        ("current_profit", "at current prices"),
        ("recommended_profit", "at recommended"),
        ("oracle_profit", "at oracle prices"),
    ):
        lines.append(
            f"  {label:<22}{model['overall'][key]:>14,.2f}{loglog['overall'][key]:>14,.2f}"
        )
    lines.append(
        f"  {'products held':<22}{model['overall']['n_held']:>14}{loglog['overall']['n_held']:>14}"
    )
    for key, title in (
        ("capture", "profit capture (oracle prices every product)"),
        ("capture_priced", "capture on the products priced (oracle holds the same products)"),
    ):
        lines.append(title)
        lines.append(
            f"  {'overall':<22}{_percent(model['overall'][key]):>14}"
            f"{_percent(loglog['overall'][key]):>14}"
        )
        baseline = {row["category"]: row[key] for row in loglog["per_category"]}
        for row in model["per_category"]:
            lines.append(
                f"  {row['category']:<22}{_percent(row[key]):>14}"
                f"{_percent(baseline.get(row['category'])):>14}"
            )
    accuracy = loglog["elasticity"]
    lines.append(
        f"log-log elasticity vs truth over {accuracy['n_products']} products: median absolute "
        f"error {accuracy['median_abs_error']:.3f}"
    )
    return "\n".join(lines)
