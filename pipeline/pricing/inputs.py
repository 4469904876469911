"""Preparing the engine's inputs: products joined with their forecasts, rules and allowed range.

The catalogue and the forecaster's product table are checked (required columns, one row per
product), cast to floats with NaN folded into null, joined, sorted by product_id and given
their hold reason (`pipeline.pricing.holds`); every product's rules are then resolved and its
allowed price range computed once (with the trust region of the prices it has sold at, where
the table gives them), for every later step to read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.arrays import BoolArray, FloatArray
from pipeline.config import PricingConfig
from pipeline.contract import DEFAULT_CATEGORY
from pipeline.pricing.holds import hold_expr, inelastic, keeps_expr, note_expr
from pipeline.pricing.ladder import PriceRange, allowed_range
from pipeline.pricing.limits import Limits, resolve


def _require(frame: pl.DataFrame, label: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{label} is missing column(s) {', '.join(missing)}: add them")
    duplicated = frame.filter(pl.col("product_id").is_duplicated())["product_id"]
    if duplicated.len() > 0:
        raise ValueError(
            f"{label} has duplicate product_id {duplicated[0]!r}: keep one row per product"
        )


def _floats(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    # NaN and null both mean "unknown" downstream, so fold NaN into null once here.
    present = [c for c in columns if c in frame.columns]
    absent = [pl.lit(None, dtype=pl.Float64).alias(c) for c in columns if c not in frame.columns]
    return frame.with_columns(
        *[pl.col(c).cast(pl.Float64).fill_nan(None) for c in present], *absent
    )


def _optional(frame: pl.DataFrame, name: str, dtype: type[pl.DataType]) -> pl.Expr:
    column = pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype=dtype)
    return column.alias(name)


def _catalogue(products: pl.DataFrame, cfg: PricingConfig) -> pl.DataFrame:
    _require(products, "products", ("product_id", "current_price", "unit_cost"))
    if cfg.family_unit_price and "size" not in products.columns:
        raise ValueError(
            "pricing.family_unit_price needs a `size` column in products (quantity per item, "
            "in one unit per family): add it or set family_unit_price = false"
        )
    prices = _floats(products, ("current_price", "unit_cost", "min_price", "max_price", "size"))
    return prices.select(
        pl.col("product_id").cast(pl.String),
        "current_price",
        "unit_cost",
        pl.col("min_price").fill_null(pl.col("current_price") * cfg.default_min_price_factor),
        pl.col("max_price").fill_null(pl.col("current_price") * cfg.default_max_price_factor),
        _optional(products, "is_kvi", pl.Boolean).fill_null(False),
        _optional(products, "category", pl.String),
        _optional(products, "family_id", pl.String),
        _optional(products, "size_rank", pl.Int64),
        "size",
    )


_FORECAST_FLOATS = (
    "base_units",
    "ref_price",
    "elasticity",
    "elasticity_lo",
    "elasticity_hi",
    "stockout_share",
    "dispersion",
    "price_seen_lo",
    "price_seen_hi",
)


def _prepare(products: pl.DataFrame, demand: pl.DataFrame, cfg: PricingConfig) -> pl.DataFrame:
    """Products left-joined with their forecasts, sorted by product_id, with hold and note."""
    _require(demand, "demand", ("product_id", "base_units", "ref_price", "elasticity"))
    forecast = _floats(demand, _FORECAST_FLOATS).select(
        pl.col("product_id").cast(pl.String),
        *_FORECAST_FLOATS,
        _optional(demand, "hold_reason", pl.String),
        _optional(demand, "status", pl.String),
        _optional(demand, "inelastic_walk", pl.Boolean).fill_null(False),
        _optional(demand, "category", pl.String).alias("_forecast_category"),
        pl.lit(True).alias("_has_forecast"),
    )
    joined = _catalogue(products, cfg).join(forecast, on="product_id", how="left")
    category = pl.coalesce("category", "_forecast_category", pl.lit(DEFAULT_CATEGORY))
    return (
        joined.with_columns(category.alias("category"))
        .drop("_forecast_category")
        .sort("product_id")
        .with_columns(hold_expr(cfg), note_expr(cfg), keeps_expr())
    )


def walks(frame: pl.DataFrame) -> BoolArray:
    """[P] Products whose price test found them inelastic: they walk the widened trust region."""
    return frame["inelastic_walk"].fill_null(False).to_numpy().astype(bool)


def float_column(frame: pl.DataFrame, name: str) -> FloatArray:
    """A column as a float array, with NaN for null (the arrays every step computes on)."""
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy().astype(float)


def _limits(frame: pl.DataFrame, cfg: PricingConfig) -> Limits:
    return resolve(
        frame["product_id"].to_list(),
        frame["category"].to_list(),
        frame["is_kvi"].to_numpy().astype(bool),
        float_column(frame, "min_price"),
        float_column(frame, "max_price"),
        cfg,
    )


@dataclass(frozen=True)
class Inputs:
    """The joined products and forecasts, every product's rules and its allowed range."""

    frame: pl.DataFrame
    limits: Limits
    prange: PriceRange


def prepare_inputs(products: pl.DataFrame, demand: pl.DataFrame, cfg: PricingConfig) -> Inputs:
    """Join products and forecasts, resolve every product's rules and its allowed range.

    Args:
        products: as for `recommend`.
        demand: as for `recommend`.
        cfg: pricing rules and hold policy.

    Returns:
        The inputs, rows in product_id order, each with its hold reason (null: free to move).

    Raises:
        ValueError: a required column is missing or a product_id is duplicated.
    """
    frame = _prepare(products, demand, cfg)
    limits = _limits(frame, cfg)
    # An inelastic estimate moves only within the prices sold at: no widening (holds.inelastic),
    # unless its price test found it inelastic (`inelastic_walk`, pipeline/pricing/explore.py).
    flat = inelastic(float_column(frame, "elasticity"), cfg) & ~walks(frame)
    prange = allowed_range(
        float_column(frame, "current_price"),
        float_column(frame, "unit_cost"),
        limits,
        (float_column(frame, "price_seen_lo"), float_column(frame, "price_seen_hi")),
        np.where(flat, 0.0, cfg.trust_widening),
    )
    return Inputs(frame, limits, prange)
