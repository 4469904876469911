"""From a trained batched model to per-product demand curves the pricing engine can use.

Backtests against a seasonal-naive baseline, the quality gate, pooled elasticities for products
whose own cannot be trusted, cold starts for products too new to train, and forecast quantiles.
No I/O and no orchestration here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from pipeline import model
from pipeline.arrays import Z90, exp_clipped
from pipeline.config import ModelConfig
from pipeline.contract import (
    DEFAULT_CATEGORY,
    STATUS_COLD_START,
    STATUS_CONFOUNDED,
    STATUS_GATE_FAILED,
    STATUS_NOT_IDENTIFIED,
    STATUS_TRAINED,
)
from pipeline.features import Panel, panel_price_seen_range, seasonal_naive
from pipeline.stats import (
    CONFOUNDED_Z,
    IDENTIFIED_NONE,
    IDENTIFIED_PROMO_ONLY,
    ElasticityFit,
    confounded,
)


@dataclass(frozen=True)
class ModelOutputs:
    """What a trained model says about its products (arrays in `product_ids` order).

    Attributes:
        product_ids: products of the model.
        base_daily: [P, K] expected units per day over the horizon at the reference price, no promo.
        elasticity, elasticity_lo, elasticity_hi: [P] the price elasticity and its ~90% interval.
        dispersion: [P] negative-binomial alpha of the residuals (variance = mu + alpha mu^2).
        model_abs_error, naive_abs_error, actual_units, n_points: [P] backtest sums over the
            origins (errors and units over uncensored days, and how many such days).
        naive_scale: [P] in-sample seasonal-naive mean absolute error (the MASE denominator).
        ref_price: [P] the reference price `base_daily` is at (the model's own; None: the
            panel's).
        promo_effect, identified_by, confounding_z, raw_elasticity, raw_se: [P] what the
            regression said (`stats.ElasticityFit`; None where the model has no regression).
        error_gap_se: [P] standard error of model_abs_error - naive_abs_error
            (`backtest_gap_se`; None for models saved before it was kept).
    """

    product_ids: tuple[str, ...]
    base_daily: np.ndarray
    elasticity: np.ndarray
    elasticity_lo: np.ndarray
    elasticity_hi: np.ndarray
    dispersion: np.ndarray
    model_abs_error: np.ndarray
    naive_abs_error: np.ndarray
    actual_units: np.ndarray
    n_points: np.ndarray
    naive_scale: np.ndarray
    ref_price: np.ndarray | None = None
    promo_effect: np.ndarray | None = None
    identified_by: np.ndarray | None = None
    confounding_z: np.ndarray | None = None
    raw_elasticity: np.ndarray | None = None
    raw_se: np.ndarray | None = None
    error_gap_se: np.ndarray | None = None


# The regression's fields of ModelOutputs (absent for models without one).
REGRESSION_FIELDS = ("promo_effect", "identified_by", "confounding_z", "raw_elasticity", "raw_se")


def regression_fields(fit: ElasticityFit | None) -> dict[str, np.ndarray | None]:
    """ModelOutputs' regression fields from a fit (all None without one)."""
    if fit is None:
        return dict.fromkeys(REGRESSION_FIELDS)
    return {name: getattr(fit, name) for name in REGRESSION_FIELDS}


def backtest_origins(n_days: int, cutoff: int, horizon: int, count: int = 3) -> list[int]:
    """First forecast days of rolling origins inside the held-out tail [cutoff, n_days), weekly."""
    origins = [cutoff + 7 * i for i in range(count)]
    return [o for o in origins if o + horizon <= n_days and o >= 7]


# One origin's [P, K] actual units, model and seasonal-naive forecasts, and uncensored days.
_OriginDays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def backtest_errors(
    log_units: np.ndarray, panel: Panel, origins: list[int], horizon: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Absolute errors of the model and of seasonal-naive, actual units and points, per product.

    Args:
        log_units: [P, L, K] model output of the segment ending at panel.end (actual prices).
        panel: the history the segment was cut from.
        origins: first forecast day index of each backtest origin.
        horizon: K.

    Stockout and unobserved days are left out of both sides (their actual sales are censored).
    """
    return _errors(_origins_days(log_units, panel, origins, horizon), log_units.shape[0])


def _errors(
    days: list[_OriginDays], p: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`backtest_errors` from the origins' days (`_origins_days`)."""
    model_err, naive_err, actual, points = (np.zeros(p) for _ in range(4))
    for truth, predicted, naive, good in days:
        model_err += (np.abs(truth - predicted) * good).sum(axis=1)
        naive_err += (np.abs(truth - naive) * good).sum(axis=1)
        actual += (truth * good).sum(axis=1)
        points += good.sum(axis=1)
    return model_err, naive_err, actual, points


def _origins_days(
    log_units: np.ndarray, panel: Panel, origins: list[int], horizon: int
) -> list[_OriginDays]:
    """Each origin's actual units, model and seasonal-naive forecasts, and uncensored days."""
    days = []
    good = panel.observed & ~panel.stockout
    for origin in origins:
        row = origin - 1 - (panel.n_days - log_units.shape[1])
        if row < 0:  # a negative row would wrap to the segment's end, days after the origin
            raise ValueError(f"backtest origin {origin} lies before the forecast segment")
        days.append((
            panel.units[:, origin : origin + horizon],
            exp_clipped(log_units[:, row, :]),
            seasonal_naive(panel.units, origin, horizon),
            good[:, origin : origin + horizon],
        ))  # fmt: skip
    return days


def backtest_gap_se(
    log_units: np.ndarray, panel: Panel, origins: list[int], horizon: int
) -> np.ndarray:
    """[P] Standard error of the backtest's error gap, model_abs_error - naive_abs_error.

    The gap is a sum of daily differences |actual - model| - |actual - naive| over the origins'
    uncensored days; origins overlap (weekly origins, a longer horizon), so the differences are
    first summed per calendar day, and the days are taken as independent. They are not quite:
    seasonal-naive repeats last week's sales, so a day's sales enter the next weeks' naive
    errors too, and a model that misjudges a level misses several days running. Both make the
    true noise larger than this estimate (by about 15% on simulated sales with a model at the
    true mean), so the gate errs towards failing a model, as it did before it had a margin.
    Autocovariances estimated per product from four weeks of days were too noisy to correct it
    (they came out negative and shrank the estimate instead).
    """
    days = _origins_days(log_units, panel, origins, horizon)
    return _gap_se(days, origins, horizon, log_units.shape[0])


def _gap_se(days: list[_OriginDays], origins: list[int], horizon: int, p: int) -> np.ndarray:
    """`backtest_gap_se` from the origins' days (`_origins_days`)."""
    if not origins:
        return np.full(p, np.nan)
    first = origins[0]
    daily = np.zeros((p, origins[-1] + horizon - first))
    for origin, (truth, predicted, naive, good) in zip(origins, days, strict=True):
        gap = (np.abs(truth - predicted) - np.abs(truth - naive)) * good
        daily[:, origin - first : origin - first + gap.shape[1]] += gap
    centred = daily - daily.mean(axis=1, keepdims=True)
    return np.sqrt((centred**2).sum(axis=1))


def lost_to_naive(
    model_abs_error: np.ndarray,
    naive_abs_error: np.ndarray,
    gap_se: np.ndarray | None,
    gate_z: float,
) -> np.ndarray:
    """[P] The quality gate: the model's backtest error exceeds seasonal-naive's by more than
    `gate_z` standard errors of the gap (by any amount where the gap's error is unknown)."""
    gap = np.asarray(model_abs_error, dtype=np.float64) - np.asarray(naive_abs_error, np.float64)
    if gap_se is None:
        return gap > 0
    margin = gate_z * np.nan_to_num(np.asarray(gap_se, dtype=np.float64), nan=0.0)
    return gap > margin


def naive_scale(panel: Panel, cutoff: int, season: int = 7) -> np.ndarray:
    """MASE denominator: mean absolute in-sample seasonal-naive error before `cutoff`: [P]."""
    good = panel.observed & ~panel.stockout
    pair = good[:, season:cutoff] & good[:, : cutoff - season]
    diff = np.abs(panel.units[:, season:cutoff] - panel.units[:, : cutoff - season])
    return (diff * pair).sum(axis=1) / np.maximum(pair.sum(axis=1), 1)


def mase(abs_error: np.ndarray, points: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Mean absolute scaled error; NaN where undefined (no points or a flat history)."""
    ok = (points > 0) & (scale > 0)
    return np.where(ok, abs_error / np.maximum(points, 1) / np.where(ok, scale, 1.0), np.nan)


def wape(abs_error: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Weighted absolute percentage error (0.25 = 25%); NaN where nothing was sold."""
    return np.where(actual > 0, abs_error / np.maximum(actual, 1e-9), np.nan)


def pooled_elasticity(frame: pl.DataFrame) -> pl.DataFrame:
    """Median trusted elasticity per category, falling back to all products (then -1.0).

    Args:
        frame: product_id, category, elasticity, trusted (Boolean).

    Returns:
        frame with a `pooled_elasticity` column added.
    """
    trusted = frame.filter(pl.col("trusted"))
    overall = trusted["elasticity"].median() if trusted.height else None
    overall = -1.0 if overall is None else float(overall)
    by_category = trusted.group_by("category").agg(
        pl.col("elasticity").median().alias("pooled_elasticity")
    )
    return frame.join(by_category, on="category", how="left").with_columns(
        pl.col("pooled_elasticity").fill_null(overall)
    )


def product_table(
    outputs: ModelOutputs,
    panel: Panel,
    categories: dict[str, str],
    cfg: ModelConfig,
) -> pl.DataFrame:
    """One row per product of the panel: the demand curve to price on, with its status and reason.

    Products the model did not cover (too little history) get a cold start: a baseline from their
    recent uncensored average and the pooled elasticity of their category. Products whose price
    never varied, or varied only on promotions (whose own lift cannot be told from their cut),
    are not identified and get the pooled elasticity too. A product whose price moves with its
    demand is confounded: it keeps its estimate, which is not to be trusted. Every product that
    is not plainly 'trained' carries a hold_reason (the pricing engine's hold policy decides
    which of them keep their price). A product whose model lost to seasonal-naive keeps its own
    elasticity: the gate judges the demand level, not the price response, which comes from the
    whole-history regression. What the regression estimated is beside it: `promo_effect` (a
    promotion's lift beyond its price cut, 0.2 = 20% more units), `identified_by` (which price
    moves identify the elasticity) and `confounding_z` (`stats.ElasticityFit`).
    Every product, cold starts included, carries the range of prices it has sold at
    (`price_seen_lo`, `price_seen_hi`: `features.price_seen_range`; null without an uncensored
    day), the pricing engine's trust region.
    """
    index = {pid: i for i, pid in enumerate(outputs.product_ids)}
    rows = []
    for i, pid in enumerate(panel.product_ids):
        j = index.get(pid)
        rows.append(_product_row(outputs, j, panel, i, categories.get(pid, DEFAULT_CATEGORY), cfg))
    frame = pl.DataFrame(rows, schema=_ROW_SCHEMA, orient="row").join(
        panel_price_seen_range(panel), on="product_id", how="left", maintain_order="left"
    )
    frame = pooled_elasticity(frame.with_columns(trusted=pl.col("status") == STATUS_TRAINED))
    use_pool = pl.col("status").is_in([STATUS_COLD_START, STATUS_NOT_IDENTIFIED])
    pooled_note = (
        pl.lit("; pooled category elasticity ")
        + pl.col("pooled_elasticity").round(2).cast(pl.String)
        + pl.lit(" used")
    )
    return frame.with_columns(
        elasticity=pl.when(use_pool).then("pooled_elasticity").otherwise("elasticity"),
        # An unidentified product's own interval is meaningless: report none.
        elasticity_lo=pl.when(use_pool).then(None).otherwise("elasticity_lo"),
        elasticity_hi=pl.when(use_pool).then(None).otherwise("elasticity_hi"),
        hold_reason=pl.when(use_pool)
        .then(pl.col("hold_reason") + pooled_note)
        .otherwise("hold_reason"),
    ).drop("trusted")


_ROW_SCHEMA = {
    "product_id": pl.String,
    "category": pl.String,
    "status": pl.String,
    "hold_reason": pl.String,
    "n_train_days": pl.Int64,
    "ref_price": pl.Float64,
    "base_units": pl.Float64,
    "elasticity": pl.Float64,
    "elasticity_lo": pl.Float64,
    "elasticity_hi": pl.Float64,
    "dispersion": pl.Float64,
    "backtest_wape": pl.Float64,
    "baseline_wape": pl.Float64,
    "stockout_share": pl.Float64,
    "backtest_mase": pl.Float64,
    "baseline_mase": pl.Float64,
    "promo_effect": pl.Float64,
    "identified_by": pl.String,
    "confounding_z": pl.Float64,
}


def _product_row(
    out: ModelOutputs, j: int | None, panel: Panel, i: int, category: str, cfg: ModelConfig
) -> tuple:
    n_obs = int(panel.n_observed[i])
    if j is None:
        recent = _recent_level(panel, i, days=28)
        return (
            panel.product_ids[i], category, STATUS_COLD_START,
            f"cold start: {n_obs} days of history (minimum {cfg.min_history_days})",
            n_obs, float(panel.ref_price[i]), recent * cfg.horizon, None, None, None, 0.3, None,
            None, _stockout_share(panel, i), None, None, None, None, None,
        )  # fmt: skip
    m_wape = wape(out.model_abs_error[j : j + 1], out.actual_units[j : j + 1])[0]
    n_wape = wape(out.naive_abs_error[j : j + 1], out.actual_units[j : j + 1])[0]
    status, reason = _status(out, j, bool(panel.price_varied[i]), (m_wape, n_wape), cfg.gate_z)
    ref = float(panel.ref_price[i] if out.ref_price is None else out.ref_price[j])
    return (
        panel.product_ids[i], category, status, reason, n_obs, ref,
        float(out.base_daily[j].sum()), float(out.elasticity[j]), float(out.elasticity_lo[j]),
        float(out.elasticity_hi[j]), float(out.dispersion[j]), _none_if_nan(m_wape),
        _none_if_nan(n_wape), _stockout_share(panel, i),
        *(_none_if_nan(v) for v in _mases(out, j)), *_regression_columns(out, j),
    )  # fmt: skip


def _status(
    out: ModelOutputs, j: int, price_varied: bool, wapes: tuple[float, float], gate_z: float
) -> tuple[str, str | None]:
    """A modelled product's status and the reason it is not plainly 'trained'.

    In this order: a price that never moved, or moved only on promotions or on days the product
    sold out, leaves the elasticity unidentified; a price that moves with demand is confounded
    (`stats.confounded`); a model that lost to seasonal-naive by more than the backtest's noise
    (`lost_to_naive`) failed its gate.
    """
    if not price_varied:
        return STATUS_NOT_IDENTIFIED, "price never varied: elasticity not identifiable"
    regression = out.identified_by is not None
    if regression and out.identified_by[j] == IDENTIFIED_NONE:
        return STATUS_NOT_IDENTIFIED, (
            "price moved only on days the product sold out: sales capped by stock say nothing of "
            "demand, so the elasticity is not identified; a price test would identify it"
        )
    if regression and out.identified_by[j] == IDENTIFIED_PROMO_ONLY:
        return STATUS_NOT_IDENTIFIED, (
            "price moved only on promotions: a promotion's own lift cannot be told from its price "
            "cut, so the elasticity is not identified; a regular price move or a price test would "
            "identify it"
        )
    if regression and _confounded(out, j):
        return STATUS_CONFOUNDED, _confounded_reason(out, j)
    one = slice(j, j + 1)
    gap_se = None if out.error_gap_se is None else out.error_gap_se[one]
    if lost_to_naive(out.model_abs_error[one], out.naive_abs_error[one], gap_se, gate_z)[0]:
        m_wape, n_wape = wapes
        if np.isfinite(m_wape) and np.isfinite(n_wape):
            score = f"WAPE {m_wape:.2f} vs {n_wape:.2f}"
        else:  # no units sold on the scored days: a WAPE has nothing to divide by
            m_err, n_err = float(out.model_abs_error[j]), float(out.naive_abs_error[j])
            score = f"no sales on its scored days; absolute error {m_err:.1f} vs {n_err:.1f} units"
        return STATUS_GATE_FAILED, f"forecast lost to seasonal-naive in the backtest ({score})"
    return STATUS_TRAINED, None


def _confounded(out: ModelOutputs, j: int) -> bool:
    one = slice(j, j + 1)
    fields = (out.confounding_z, out.raw_elasticity, out.raw_se, out.identified_by)
    return bool(confounded(*(np.asarray(field)[one] for field in fields))[0])


def _confounded_reason(out: ModelOutputs, j: int) -> str:
    z = float(np.nan_to_num(out.confounding_z[j]))
    if z > CONFOUNDED_Z:
        why = (
            f"price moves with demand: demand reads {z:.1f} standard errors less elastic from "
            "its price moves across weeks than from those within a week, as when prices are set "
            "in response to demand"
        )
    else:
        raw, half = float(out.raw_elasticity[j]), Z90 * float(out.raw_se[j])
        why = (
            f"demand does not fall with price in its history (own estimate {raw:+.2f} +- "
            f"{half:.2f}): its price moves with its demand, or with what drives it"
        )
    return (
        f"{why}; the elasticity ({out.elasticity[j]:.2f}) is not trusted: a price test (prices "
        "set independently of demand) would identify it"
    )


def _regression_columns(out: ModelOutputs, j: int) -> tuple[float | None, str | None, float | None]:
    """promo_effect (as a fraction of units), identified_by and confounding_z of a product."""
    if out.identified_by is None:
        return None, None, None
    lift = _none_if_nan(float(np.expm1(out.promo_effect[j])))
    by = out.identified_by[j]  # None for a product of an artefact saved before it was stored
    return lift, None if by is None else str(by), _none_if_nan(float(out.confounding_z[j]))


def _mases(out: ModelOutputs, j: int) -> tuple[float, float]:
    one = slice(j, j + 1)
    model_mase = mase(out.model_abs_error[one], out.n_points[one], out.naive_scale[one])[0]
    naive_mase = mase(out.naive_abs_error[one], out.n_points[one], out.naive_scale[one])[0]
    return model_mase, naive_mase


def _stockout_share(panel: Panel, i: int, days: int = 90) -> float:
    """Share of the last `days` observed days that were stockouts (censored sales)."""
    observed = panel.observed[i]
    recent = panel.stockout[i][observed][-days:]
    return float(recent.mean()) if recent.size else 0.0


def _none_if_nan(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _recent_level(panel: Panel, i: int, days: int) -> float:
    """Mean units per day over the last `days` observed, uncensored days, at the prices paid."""
    good = panel.observed[i] & ~panel.stockout[i]
    units = panel.units[i][good][-days:]
    return float(units.mean()) if units.size else 0.0


def daily_forecasts(
    table: pl.DataFrame,
    base_daily: dict[str, np.ndarray],
    prices: pl.DataFrame,
    start: dt.date,
    horizon: int,
) -> pl.DataFrame:
    """Daily expected units with p10/p90 over the horizon, at each product's given price.

    Args:
        table: product_table() output (ref_price, elasticity, dispersion, base_units).
        base_daily: product_id -> [K] expected units per day at the reference price; products
            missing here (cold starts) spread base_units over the horizon with their category's
            average daily profile (weekday and season shape), or evenly without one.
        prices: product_id, price (the price the forecast assumes).
        start: first forecast day.
        horizon: K.

    Returns:
        product_id, ds, price, units_mean, units_p10, units_p50, units_p90 (negative-binomial
        quantiles).
    """
    joined = table.join(prices, on="product_id", how="inner")
    profiles = category_profiles(table, base_daily, horizon)
    ids, means, price_col = [], [], []
    for row in joined.iter_rows(named=True):
        base = base_daily.get(row["product_id"])
        if base is None:
            shape = profiles.get(row["category"], np.full(horizon, 1.0 / horizon))
            base = (row["base_units"] or 0.0) * shape
        factor = (row["price"] / row["ref_price"]) ** row["elasticity"]
        ids.append(row["product_id"])
        means.append(np.asarray(base, dtype=np.float64) * factor)
        price_col.append(row["price"])
    mean = np.array(means).reshape(len(ids), horizon)
    alpha = joined["dispersion"].fill_null(0.3).to_numpy()[:, None]
    p10, p50, p90 = nb_quantiles(mean, np.maximum(alpha, 1e-6), (0.1, 0.5, 0.9))
    days = [start + dt.timedelta(days=k) for k in range(horizon)]
    return pl.DataFrame(
        {
            "product_id": np.repeat(ids, horizon),
            "ds": days * len(ids),
            "price": np.repeat(price_col, horizon),
            "units_mean": mean.ravel(),
            "units_p10": p10.ravel(),
            "units_p50": p50.ravel(),
            "units_p90": p90.ravel(),
        },
        schema_overrides={"ds": pl.Date},
    )


def category_profiles(
    table: pl.DataFrame, base_daily: dict[str, np.ndarray], horizon: int
) -> dict[str, np.ndarray]:
    """Each category's average share of the horizon's units falling on each day: [K], sums to 1."""
    shares: dict[str, list[np.ndarray]] = {}
    for pid, category in table.select("product_id", "category").iter_rows():
        daily = base_daily.get(pid)
        if daily is not None and daily.sum() > 0:
            shares.setdefault(category, []).append(np.asarray(daily) / daily.sum())
    return {c: np.mean(v, axis=0) for c, v in shares.items() if len(v[0]) == horizon}


def nb_quantiles(
    mean: np.ndarray, alpha: np.ndarray, quantiles: tuple[float, ...]
) -> list[np.ndarray]:
    """Negative-binomial quantiles with mean `mean` and variance mean + alpha * mean^2."""
    r = 1.0 / alpha
    p = r / (r + np.maximum(mean, 1e-12))
    return [stats.nbinom.ppf(q, r, p).astype(np.float64) for q in quantiles]


def summarise(result: model.TrainResult, cfg: ModelConfig) -> ModelOutputs:
    """Backtest, elasticities and the horizon's baseline of a freshly trained model.

    The backtest scores the forecasts of the model fitted before the held-out tail
    (`TrainResult.backtest_log_units`), so its WAPE is what the model would have scored on
    days it had not seen.
    """
    return model_outputs(
        result.net, result.panel, cfg, result.cutoff, result.backtest_log_units, result.regression
    )


def baseline_daily(net: model.DemandNet, panel: Panel, cfg: ModelConfig) -> np.ndarray:
    """Expected units per day over the horizon from `panel.end`, at the reference price: [P, K]."""
    at_ref = model.predict_segment(net, panel, cfg, future_at_ref=True)
    return exp_clipped(at_ref[:, -1, :])


def model_outputs(
    net: model.DemandNet,
    panel: Panel,
    cfg: ModelConfig,
    cutoff: int | None,
    backtest: np.ndarray | None = None,
    fit: ElasticityFit | None = None,
) -> ModelOutputs:
    """What `net` says about the products of `panel` (same order as the model's products).

    Args:
        net: a trained model.
        panel: history of the model's products up to the forecast origin, with the model's
            scales (reference prices and levels).
        cfg: the model config it was trained with.
        cutoff: first day index the model did not train on (None: no backtest; errors are 0).
        backtest: the log units the backtest scores ([P, L, K], the segment ending at
            panel.end); None: `net`'s own, which is out of sample only if nothing of `net`
            was fitted on the days from `cutoff` on.
        fit: the regression the model's elasticities come from, if any.
    """
    stats_ = model.fit_statistics(net, panel, cfg)
    p = len(panel.product_ids)
    errors = tuple(np.zeros(p) for _ in range(4))
    gap_se = np.full(p, np.nan)
    origins = [] if cutoff is None else backtest_origins(panel.n_days, cutoff, cfg.horizon)
    if origins:
        if backtest is None:
            backtest = model.predict_segment(net, panel, cfg, future_at_ref=False)
        # The origins' days once, for the errors and for the gate's margin.
        days = _origins_days(backtest, panel, origins, cfg.horizon)
        errors = _errors(days, p)
        gap_se = _gap_se(days, origins, cfg.horizon, p)
    return ModelOutputs(
        product_ids=panel.product_ids,
        base_daily=baseline_daily(net, panel, cfg),
        elasticity=stats_["elasticity"],
        elasticity_lo=stats_["elasticity_lo"],
        elasticity_hi=stats_["elasticity_hi"],
        dispersion=stats_["dispersion"],
        model_abs_error=errors[0],
        naive_abs_error=errors[1],
        actual_units=errors[2],
        n_points=errors[3],
        naive_scale=naive_scale(panel, cutoff if cutoff is not None else panel.n_days),
        ref_price=panel.ref_price.astype(np.float64),
        **regression_fields(fit),
        error_gap_se=gap_se,
    )
