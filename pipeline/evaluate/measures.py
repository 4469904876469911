"""One night measured against its world's truth: every figure `pricing evaluate` and the suite
report.

`night_report` takes frames only (model versions, recommendations, products, sales, truth), so
the warehouse evaluation and the scenario suite call the same code.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from pipeline.config import PricingConfig
from pipeline.contract import STATUS_GATE_FAILED, STATUS_TRAINED
from pipeline.evaluate.capture import capture_text, evaluate_policies
from pipeline.evaluate.elasticity import elasticity_report, exogenous
from pipeline.evaluate.figures import finite, median
from pipeline.summary import hold_reasons

# The two statuses of an ordinary model; any other status of a modelled product is a flag.
_ORDINARY = (STATUS_TRAINED, STATUS_GATE_FAILED)
# An elasticity above -1 makes profit rise without bound with price: only a cap stops it.
INELASTIC = -1.0


def forecast_report(versions: pl.DataFrame) -> dict[str, Any]:
    """Backtest accuracy of the models against seasonal-naive, from model_versions rows.

    Returns:
        n_models, the medians over products (with both figures) of the model's and the
        seasonal-naive WAPE, their ratio, and how many products failed the gate.
    """
    both = versions.filter(pl.col("backtest_wape").is_finite(), pl.col("baseline_wape").is_finite())
    model, naive = finite(both["backtest_wape"].median()), finite(both["baseline_wape"].median())
    return {
        "n_models": versions.height,
        "n_backtested": both.height,
        "median_wape": model,
        "median_naive_wape": naive,
        "wape_ratio": model / naive if model is not None and naive else None,
        "n_gate_failed": versions.filter(pl.col("status") == STATUS_GATE_FAILED).height,
    }


def decision_report(recs: pl.DataFrame, products: pl.DataFrame) -> dict[str, Any]:
    """What the engine did: changes, holds by reason, prices below cost and raises to a cap.

    A price below cost "says why" when its reason names the cost. A raise "stopped at a cap" is
    one whose reason says a rule capped it (the optimum lay beyond); `inelastic` counts those
    priced on an elasticity above -1, where only the cap stopped the optimiser.
    """
    frame = recs.join(products.select("product_id", "unit_cost"), on="product_id", how="left")
    below = frame.filter(pl.col("recommended_price") < pl.col("unit_cost"))
    capped = frame.filter(
        pl.col("recommended_price") > pl.col("current_price"),
        pl.col("reason").str.contains("capped by"),
    )
    return {
        "n_products": recs.height,
        "n_raised": recs.filter(pl.col("recommended_price") > pl.col("current_price")).height,
        "n_lowered": recs.filter(pl.col("recommended_price") < pl.col("current_price")).height,
        "holds": dict(hold_reasons(recs).iter_rows()),
        "n_held": sum(dict(hold_reasons(recs).iter_rows()).values()),
        "below_cost": below.height,
        "below_cost_explained": below.filter(
            pl.col("reason").str.to_lowercase().str.contains("cost")
        ).height,
        "current_below_cost": frame.filter(pl.col("current_price") < pl.col("unit_cost")).height,
        "capped_raises": capped.height,
        "capped_raises_inelastic": capped.filter(pl.col("elasticity") > INELASTIC).height,
    }


def endogenous_report(
    versions: pl.DataFrame, recs: pl.DataFrame | None, truth: pl.DataFrame
) -> dict[str, Any] | None:
    """How the products whose price follows demand fared (None when the world has none).

    Returns:
        n_products, their elasticity figures, how many the models flagged (a status other than
        trained or gate_failed), and (with `recs`) how many were raised, raised to a cap, and the
        median relative price change.
    """
    if "endogenous" not in truth.columns or not truth["endogenous"].any():
        return None
    ids = truth.filter(pl.col("endogenous"))["product_id"].implode()
    mine = versions.filter(pl.col("product_id").is_in(ids))
    report: dict[str, Any] = {
        "n_products": int(truth["endogenous"].sum()),
        "elasticity": elasticity_report(mine, truth),
        "n_flagged": mine.filter(~pl.col("status").is_in(list(_ORDINARY))).height,
        "n_raised": None,
        "capped_raises": None,
        "median_change": None,
    }
    if recs is not None:
        chosen = recs.filter(pl.col("product_id").is_in(ids))
        raised = chosen.filter(pl.col("recommended_price") > pl.col("current_price"))
        report |= {
            "n_raised": raised.height,
            "capped_raises": raised.filter(pl.col("reason").str.contains("capped by")).height,
            "median_change": median(
                (chosen["recommended_price"] / chosen["current_price"] - 1.0).to_list()
            ),
        }
    return report


# Truth columns worth seeing beside each product's estimate, where the world has them.
_TRUTH_DETAIL = ("dispersion", "price_varied", "promo_lift", "endogenous", "slow_mover",
                 "break_on", "delisted_on")  # fmt: skip


def product_rows(
    versions: pl.DataFrame, recs: pl.DataFrame | None, truth: pl.DataFrame
) -> pl.DataFrame:
    """One row per modelled product: its estimate beside the truth (and its price, with `recs`).

    For looking into a figure: where the bias sits, which products the interval misses.
    """
    detail = [c for c in _TRUTH_DETAIL if c in truth.columns]
    rows = versions.select(
        "product_id", "status", "elasticity", "elasticity_lo", "elasticity_hi"
    ).join(
        truth.select("product_id", "category", pl.col("elasticity").alias("true_elasticity"),
                     *detail),
        on="product_id",
        how="left",
    )  # fmt: skip
    if recs is not None:
        chosen = recs.select(
            "product_id", "action", "current_price", "recommended_price", "binding_rule"
        )
        rows = rows.join(chosen, on="product_id", how="left")
    return rows.sort("product_id")


def night_report(
    versions: pl.DataFrame,
    recs: pl.DataFrame,
    products: pl.DataFrame,
    sales: pl.DataFrame,
    truth: pl.DataFrame,
    start: dt.date,
    horizon: int,
    min_history_days: int,
    cfg: PricingConfig,
) -> dict[str, Any]:
    """Every figure of one priced night against its world's truth.

    Args:
        versions: the night's model_versions rows (one per modelled product).
        recs: its recommendations.
        products: the priced products (product_id, category, unit_cost, prices, guardrails).
        sales: the history before `start` (for the log-log baseline).
        truth: the world's truth.
        start: the first priced day.
        horizon: days priced.
        min_history_days: fewest days the baseline fits a product on (the model's setting).
        cfg: the pricing rules both the model and the baseline are priced under.

    Returns:
        "elasticity" (products whose price does not follow demand), "endogenous" (those whose
        price does, or None), "forecast", "policies" (`evaluate_policies`: capture of the model
        and of the log-log baseline) and "decisions".
    """
    return {
        "elasticity": elasticity_report(versions, exogenous(truth)),
        "endogenous": endogenous_report(versions, recs, truth),
        "forecast": forecast_report(versions),
        "policies": evaluate_policies(
            recs, products, sales, truth, start, horizon, min_history_days, cfg
        ),
        "decisions": decision_report(recs, products),
    }


def _number(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def night_text(report: dict[str, Any]) -> str:
    """`night_report` as the lines `pricing evaluate` prints."""
    e, f, d = report["elasticity"], report["forecast"], report["decisions"]
    lines = [
        f"elasticity vs truth over {e['n_products']} products whose price varied:",
        f"  median absolute error  {_number(e['median_abs_error'])}",
        f"  mean absolute error    {_number(e['mean_abs_error'])}",
        f"  median bias            {_number(e['median_bias'], '+.3f')}  (estimate - truth)",
        f"  learned <= 0           {_number(e['share_nonpositive'], '.0%')}",
        f"  truth inside interval  {_number(e['interval_coverage'], '.0%')}",
        f"backtest WAPE over {f['n_backtested']} models: median {_number(f['median_wape'])} "
        f"against seasonal-naive {_number(f['median_naive_wape'])}",
        capture_text(report["policies"]),
        f"holds: {', '.join(f'{k} {v}' for k, v in d['holds'].items()) or 'none'}",
        f"prices below unit cost: {d['below_cost']} ({d['below_cost_explained']} say why); "
        f"raises stopped by a cap: {d['capped_raises']} ({d['capped_raises_inelastic']} on an "
        f"elasticity above -1)",
    ]
    endogenous = report["endogenous"]
    if endogenous is not None:
        lines.append(
            f"prices that follow demand: {endogenous['n_products']} products, "
            f"{endogenous['n_flagged']} flagged, {endogenous['n_raised']} raised "
            f"({endogenous['capped_raises']} to a cap)"
        )
    return "\n".join(lines)
