"""Profit capture against ground truth: the true expected profit at today's, the recommended and the
oracle prices, where the oracle is the same pricing engine fed the true demand curves."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from pipeline import pricing, synth
from pipeline.config import PricingConfig
from pipeline.contract import ACTION_HOLD, RULE_PRICE_TEST, STATUS_TRAINED
from pipeline.evaluate.baseline import loglog_table
from pipeline.evaluate.elasticity import elasticity_report, exogenous
from pipeline.evaluate.figures import finite, percent
from pipeline.features import price_seen_range

PROFITS = ("current_profit", "recommended_profit", "oracle_profit", "oracle_priced_profit",
           "estimate_profit")  # fmt: skip


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
    recommendations: pl.DataFrame,
    products: pl.DataFrame,
    demand: pl.DataFrame,
    cfg: PricingConfig,
    seen: pl.DataFrame | None,
) -> pl.DataFrame:
    """Oracle prices: the engine on the true curves, free, and holding the products the
    recommendation held or tested (a test's price is chosen to learn, not on the estimate); with
    `seen` (`features.price_seen_range`), also the cautious oracle: holding the same products and
    keeping the evidence rules (the trust region of the prices sold at, a true elasticity of -1
    or above moving only within them)."""
    catalogue = products.join(demand, on="product_id", how="semi")
    free_cfg = pricing.oracle_config(cfg)  # true curves: no hold on inelastic demand
    free = pricing.recommend(catalogue, demand, free_cfg)
    held = recommendations.filter((pl.col("action") == ACTION_HOLD) | _tested())["product_id"]
    same_holds = demand.with_columns(
        hold_reason=pl.when(pl.col("product_id").is_in(held.to_list())).then(
            pl.lit("held by the recommendation")
        )
    )
    priced = pricing.recommend(catalogue, same_holds, free_cfg)
    prices = free.select("product_id", pl.col("recommended_price").alias("oracle_price")).join(
        priced.select("product_id", pl.col("recommended_price").alias("oracle_priced_price")),
        on="product_id",
    )
    if seen is None:
        return prices
    cautious = pricing.recommend(
        catalogue, same_holds.join(seen, on="product_id", how="left"), cfg
    ).select("product_id", pl.col("recommended_price").alias("oracle_cautious_price"))
    return prices.join(cautious, on="product_id")


def profit_capture(
    recommendations: pl.DataFrame,
    products: pl.DataFrame,
    truth: pl.DataFrame,
    start: dt.date,
    horizon: int,
    cfg: PricingConfig,
    seen: pl.DataFrame | None = None,
) -> tuple[dict, pl.DataFrame]:
    """True expected profit over the horizon at current, recommended and oracle prices.

    The oracle is the same pricing engine fed the true demand curves, so it obeys the same rules
    (guardrails, endings, family order, change budget, revenue floor). capture = (recommended -
    current) / (oracle - current), overall and per category, against two oracles: one free to
    price every product (`capture`, the headline, price tests' cost included) and one that holds
    the products the recommendation held or put on a price test (`capture_priced`: how well the
    products priced on their estimate were priced; a test's price is chosen to learn, and its
    worth shows over many nights, in `pricing simulate`). `tests_share` is the price tests'
    profit change tonight as a share of the available gain (oracle - current): negative when
    they cost. With `seen` (the prices each product sold at, `features.price_seen_range` of the
    history), `capture_cautious` compares the products priced on their estimate with a third
    oracle that holds the same products and also keeps the engine's evidence rules (the trust
    region; no walk beyond the prices sold at on a true elasticity of -1 or above): what is left
    of `capture_priced` once the cost of those rules is taken out, so the price of caution and
    the price of estimation error show apart.

    Returns:
        The overall totals, captures, hold and test counts, and one row per category with the
        same.
    """
    demand = true_demand(
        truth.join(recommendations.select("product_id"), on="product_id", how="semi"),
        start,
        horizon,
    )
    frame = (
        recommendations.with_columns(_tested().alias("tested"))
        .select("product_id", "current_price", "recommended_price", "action", "tested")
        .join(_oracles(recommendations, products, demand, cfg, seen), on="product_id")
        .join(products.select("product_id", "category", "unit_cost"), on="product_id")
        .join(demand.select("product_id", "base_units", "ref_price", "elasticity"), on="product_id")
    )
    oracles = ("oracle", "oracle_priced", *(("oracle_cautious",) if seen is not None else ()))
    for name in ("current", "recommended", *oracles):
        price = pl.col(f"{name}_price")
        units = pl.col("base_units") * (price / pl.col("ref_price")) ** pl.col("elasticity")
        frame = frame.with_columns(((price - pl.col("unit_cost")) * units).alias(f"{name}_profit"))
    # What the products priced on their estimate made: a tested product counts as kept.
    frame = frame.with_columns(
        estimate_profit=pl.when("tested")
        .then(pl.col("current_profit"))
        .otherwise(pl.col("recommended_profit"))
    )
    profits = (*PROFITS, *(("oracle_cautious_profit",) if seen is not None else ()))
    sums = [
        pl.col(*profits).sum(),
        (pl.col("action") == ACTION_HOLD).sum().alias("n_held"),
        pl.col("tested").sum().alias("n_tested"),
    ]
    captures = _captures(seen is not None)
    per_category = frame.group_by("category").agg(*sums).with_columns(captures).sort("category")
    overall = frame.select(*sums).with_columns(captures).row(0, named=True)
    totals = {k: v if k in ("n_held", "n_tested") else finite(v) for k, v in overall.items()}
    return totals, per_category


def _tested() -> pl.Expr:
    """Products whose price tonight is a price test's."""
    if_present = pl.col("binding_rule") == RULE_PRICE_TEST
    return if_present.fill_null(False)


def _captures(cautious: bool) -> list[pl.Expr]:
    def capture(oracle: str, made: str) -> pl.Expr:
        gain = pl.col(oracle) - pl.col("current_profit")
        return pl.when(gain > 0).then((pl.col(made) - pl.col("current_profit")) / gain)

    tests_made = pl.col("recommended_profit") - pl.col("estimate_profit")
    out = [
        capture("oracle_profit", "recommended_profit").alias("capture"),
        capture("oracle_priced_profit", "estimate_profit").alias("capture_priced"),
        pl.when(pl.col("oracle_profit") > pl.col("current_profit"))
        .then(tests_made / (pl.col("oracle_profit") - pl.col("current_profit")))
        .alias("tests_share"),
    ]
    if cautious:
        out.append(capture("oracle_cautious_profit", "estimate_profit").alias("capture_cautious"))
    return out


def policy_report(
    recommendations: pl.DataFrame,
    products: pl.DataFrame,
    truth: pl.DataFrame,
    start: dt.date,
    horizon: int,
    cfg: PricingConfig,
    seen: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """`profit_capture` of one set of recommendations: "overall" and "per_category" (dicts)."""
    overall, per_category = profit_capture(
        recommendations, products, truth, start, horizon, cfg, seen
    )
    return {"overall": overall, "per_category": per_category.to_dicts()}


def baseline_policy(
    products: pl.DataFrame,
    sales: pl.DataFrame,
    truth: pl.DataFrame,
    start: dt.date,
    horizon: int,
    min_history_days: int,
    cfg: PricingConfig,
    seen: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """The log-log baseline fitted on `sales`, priced by the engine and scored against the truth
    (the cautious oracle's trust region: `seen`, by default the prices sold at in `sales`).

    Returns:
        `policy_report`'s "overall" and "per_category", and the baseline's "elasticity" accuracy
        (over the products it fitted whose price does not follow demand).
    """
    baseline = loglog_table(sales, products, horizon, min_history_days)
    recs = pricing.recommend(products, baseline, cfg)
    seen = price_seen_range(sales) if seen is None else seen
    report = policy_report(recs, products, truth, start, horizon, cfg, seen)
    trained = baseline.filter(pl.col("status") == STATUS_TRAINED)
    return {**report, "elasticity": elasticity_report(trained, exogenous(truth))}


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
    engine with the same rules and hold policy, and scored against the same oracles (the
    cautious one's trust region is the prices each product sold at in `sales`).

    Returns:
        {"model": ..., "loglog": ...}, each with "overall" (dict) and "per_category" (list of
        dicts), and the baseline's "elasticity" accuracy.
    """
    seen = price_seen_range(sales)
    return {
        "model": policy_report(recommendations, products, truth, start, horizon, cfg, seen),
        "loglog": baseline_policy(
            products, sales, truth, start, horizon, min_history_days, cfg, seen
        ),
    }


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
    tested = model["overall"].get("n_tested") or 0
    if tested:
        lines.append(
            f"  {'on a price test':<22}{tested:>14}{'':>14}  (their profit change: "
            f"{percent(model['overall']['tests_share'])} of tonight's available gain)"
        )
    for key, title in (
        ("capture", "profit capture (oracle prices every product)"),
        (
            "capture_priced",
            "capture on the products priced on their estimate (oracle holds the "
            "same products and those on a price test)",
        ),
        (
            "capture_cautious",
            "the same against a cautious oracle (true curves, but the engine's evidence rules: "
            "trust region, no walk past the prices sold at on an elasticity of -1 or above)",
        ),
    ):
        if key not in model["overall"]:
            continue
        lines.append(title)
        lines.append(
            f"  {'overall':<22}{percent(model['overall'][key]):>14}"
            f"{percent(loglog['overall'][key]):>14}"
        )
        baseline = {row["category"]: row[key] for row in loglog["per_category"]}
        for row in model["per_category"]:
            lines.append(
                f"  {row['category']:<22}{percent(row[key]):>14}"
                f"{percent(baseline.get(row['category'])):>14}"
            )
    accuracy = loglog["elasticity"]
    lines.append(
        f"log-log elasticity vs truth over {accuracy['n_products']} products: median absolute "
        f"error {accuracy['median_abs_error']:.3f}"
    )
    return "\n".join(lines)
