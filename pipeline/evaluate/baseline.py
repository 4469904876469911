"""The plain baseline a pricing team would try first: a per-product log-log regression of units on
price, shaped as the forecaster's product table so the same pricing engine can price it."""

from __future__ import annotations

import polars as pl

from pipeline.arrays import Z90
from pipeline.contract import STATUS_COLD_START, STATUS_NOT_IDENTIFIED, STATUS_TRAINED
from pipeline.features import price_seen_range
from pipeline.frames import format_text


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
    carry a hold_reason, as the forecaster's table does, so the engine treats them alike. The
    range of prices each product has sold at (`features.price_seen_range`, as the forecaster's
    table has it) gives the baseline the engine's same trust region.

    Args:
        sales: product_id, ds, units, price, stockout, and optionally promo (history before
            the priced horizon).
        products: product_id, current_price, category.
        horizon: days priced.
        min_history_days: fewest observed days to fit a product.

    Returns:
        product_id, category, status, hold_reason, ref_price, base_units, elasticity,
        elasticity_lo, elasticity_hi, price_seen_lo, price_seen_hi (the columns
        `pricing.recommend` reads).
    """
    fits = _loglog_fits(sales).join(price_seen_range(sales), on="product_id", how="left")
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
            "price_seen_lo",
            "price_seen_hi",
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
