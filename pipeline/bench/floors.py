"""What a world's history allows, whatever the method: approximate floors under the elasticity's
error and ceilings over the profit a pricing engine under the design's rules can capture.

`pricing bench test-power` reports them per scenario, beside which the suite's measured figures
(`pricing evaluate --suite`) can be read:

- `history_bound` and `oracle_bound` (`bounds`): the median absolute elasticity error left by
  the regression's own standard errors, and by the least any estimator could reach (the
  Cramer-Rao bound of the world's own demand for an estimator told everything true but each
  product's level, elasticity and promotion lift, `oracle_se`), for an estimator told the law the
  world drew its elasticities from (`posterior_median_errors`). The floor is approximate: the
  own estimate is taken as normal with the Cramer-Rao error (asymptotic), stockout days are
  left out although censored sales still say a little, and the posterior median minimises each
  product's expected error, not exactly the median over products (a rule aimed at that median
  measured about 1% lower);
- `capture_reach` (`capture_reach`): the engine's profit capture, against the oracle free of the
  trust region, when it is fed the true demand curves under the trust region (the cautious
  oracle), and when it is fed estimates at about the oracle's error (a normal-prior
  approximation), with and without the trust region.

All over the products the suite scores for elasticity error (`scored_products`): a regular price
move in their history (`evaluate.elasticity_report` leaves `not_identified` products out), no
cold start, and a price that does not follow demand (`evaluate.exogenous`).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from pipeline.arrays import Z90
from pipeline.config import ModelConfig, PricingConfig
from pipeline.evaluate.capture import profit_capture, true_demand
from pipeline.evaluate.figures import median, rounded
from pipeline.features import Panel, price_seen_range
from pipeline.pricing import recommend
from pipeline.synth import World, WorldSpec
from pipeline.synth import market as mk
from pipeline.synth.demand import as_days, daily_mean

# The capture figures `capture_reach` reports for each arm (`evaluate.capture.profit_capture`).
CAPTURES = ("capture", "capture_priced", "capture_cautious")


def lift_spread(market: mk.Market, groups: np.ndarray) -> np.ndarray:
    """[P] The spread (sd) of the true log promotion lifts in each product's category; 0 in a
    world whose promotions lift demand only through their price."""
    lift = market.demand.promo_lift
    if lift is None:
        return np.zeros(len(groups))
    return by_group(groups, np.log1p(lift), ddof=0)[1]


def by_group(
    groups: np.ndarray, values: np.ndarray, ddof: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """[P] each product's group mean and standard deviation of `values` (0 where a group has
    too few products for one)."""
    frame = pl.DataFrame({"group": groups, "value": values})
    over = frame.select(
        pl.col("value").mean().over("group").alias("mean"),
        pl.col("value").std(ddof=ddof).over("group").fill_null(0.0).alias("sd"),
    )
    return over["mean"].to_numpy(), over["sd"].to_numpy()


def oracle_se(market: mk.Market, history: Panel, lift_spread: np.ndarray) -> np.ndarray:
    """[P] The least standard error of each product's elasticity its history allows (infinite
    where nothing identifies it).

    The inverse Fisher information of the negative-binomial model of the world's own demand
    (variance mu + dispersion * mu^2) for an estimator told everything true but its level, its
    elasticity and, where it ran promotions, their own lift, and told the true spread of the
    lifts in its category (`lift_spread`, the lift's prior: 0 makes it known), as the
    regression's pooling of the lift learns it. Seasonality, trend, breaks, hidden waves and the
    noise's dispersion are given, so no real estimator does better. Days the product was on
    sale and in stock only (a stockout caps sales).
    """
    price = history.price.astype(np.float64)
    mean = daily_mean(market.demand, as_days(history.dates()), price, history.promo)
    good = history.observed & ~history.stockout & (mean > 0)
    # Each day's information weight: (d mu / d log mu)^2 / variance.
    weight = np.where(good, mean / (1.0 + market.dispersion[:, None] * mean), 0.0)
    x = np.log(price / history.ref_price.astype(np.float64)[:, None])
    promo = (history.promo & good).astype(np.float64)
    return elasticity_se(weight, x, promo, lift_spread)


def elasticity_se(
    weight: np.ndarray, x: np.ndarray, promo: np.ndarray, lift_spread: np.ndarray
) -> np.ndarray:
    """[P] The elasticity's standard error from the information of a log-linear count model.

    log mu = level + elasticity * x + lift * promo, each day weighted by its information
    `weight` ([P, T], 0 on days that say nothing), with a normal prior of sd `lift_spread` [P]
    on the lift (0: the lift is known). The level and the lift are profiled out (the Schur
    complement of their block); infinite where the days do not identify the elasticity.
    """
    s_1, s_x, s_xx = weight.sum(1), (weight * x).sum(1), (weight * x * x).sum(1)
    s_p, s_px = (weight * promo).sum(1), (weight * promo * x).sum(1)
    has_lift = (s_p > 0) & (lift_spread > 0)
    # The lift's prior adds to its own information (promotion days are its only other source).
    s_pp = s_p + np.where(has_lift, 1.0 / np.where(has_lift, lift_spread, 1.0) ** 2, 0.0)
    det = np.where(has_lift, s_1 * s_pp - s_p**2, s_1)
    safe = np.where(det > 0, det, 1.0)
    explained = np.where(
        has_lift, (s_pp * s_x**2 - 2 * s_p * s_x * s_px + s_1 * s_px**2) / safe, s_x**2 / safe
    )
    info = np.where(det > 0, s_xx - explained, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(info > 1e-9 * np.maximum(s_xx, 1e-12), 1.0 / np.sqrt(info), np.inf)


def bounds(rows: pl.DataFrame) -> dict:
    """`history_bound` and `oracle_bound` over `rows`' products the suite scores (`scored`).

    `rows`: one design's rows, with `scored` (`scored_products`), `truth`, `category`, `seed`,
    `se` (the regression's) and `oracle_se`.
    """
    scored = rows.filter(pl.col("scored"))
    return {
        "history_bound": history_bound(scored, "se"),
        "oracle_bound": history_bound(scored, "oracle_se"),
    }


def history_bound(rows: pl.DataFrame, se_column: str = "se", draws: int = 200) -> dict:
    """The median absolute elasticity error that standard errors `se_column` leave at best.

    Each product's own estimate is drawn around its truth with its standard error, and the best
    estimator is told the law its world drew the true elasticities from (`prior_low`,
    `prior_high`, and where elasticities cluster by category `prior_centre`, `prior_sd`): it
    reports the posterior median (the least expected absolute error). The figure is the
    expected median over products of its absolute error (Monte Carlo, seeded), per seed, then
    the median over seeds. From the oracle's standard errors (`oracle_se`) it is a floor:
    issue 11's "median absolute error at most 0.15" is out of reach of the data where it
    exceeds 0.15.
    """
    rng = np.random.default_rng(0)
    per_seed = []
    for (_,), world in rows.group_by(["seed"], maintain_order=True):
        se = world[se_column].to_numpy().astype(np.float64)
        errors = posterior_median_errors(
            world["truth"].to_numpy(), se, world.select("prior_low", "prior_high").row(0),
            world["prior_centre"].to_numpy(), world["prior_sd"].to_numpy(), draws, rng,
        )  # fmt: skip
        spread = world.group_by("category").agg(pl.col("truth").std())["truth"].median()
        per_seed.append(
            (float(np.median(se)), float(spread), float(np.median(errors, axis=1).mean()))
        )
    se, prior, mae = np.median(np.asarray(per_seed), axis=0)
    return {
        "products": rows.height,
        "median_se": rounded(se),
        "prior_sd": rounded(prior),
        "mae_bound": rounded(mae),
    }


def posterior_median_errors(
    truth: np.ndarray,
    se: np.ndarray,
    bounds: tuple[float, float],
    centre: np.ndarray,
    spread: np.ndarray,
    draws: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """[draws, P] absolute errors of the posterior median of each product's elasticity.

    The prior is uniform on `bounds`, times a normal of mean `centre` and sd `spread` where
    those are finite (elasticities clustered by category); the own estimate is normal around
    the truth with sd `se` (infinite: no information, the prior's median).
    """
    grid = np.linspace(bounds[0], bounds[1], 601)
    clustered = np.isfinite(centre) & np.isfinite(spread) & (spread > 0)
    width = np.where(clustered, spread, 1.0)
    log_prior = np.where(
        clustered[:, None], -0.5 * ((grid[None, :] - centre[:, None]) / width[:, None]) ** 2, 0.0
    )
    known = np.isfinite(se)
    sd = np.where(known, se, 1.0)
    own = truth[:, None] + rng.normal(size=(truth.size, draws)) * sd[:, None]
    best = np.empty_like(own)
    for part in np.array_split(np.arange(truth.size), max(1, truth.size // 64)):
        # [products, draws, grid] at a time: a few hundred MB at most
        log_post = log_prior[part, None, :] - np.where(
            known[part, None, None],
            0.5 * ((own[part, :, None] - grid) / sd[part, None, None]) ** 2,
            0.0,
        )
        post = np.exp(log_post - log_post.max(axis=-1, keepdims=True))
        cdf = np.cumsum(post, axis=-1)
        index = (cdf < 0.5 * cdf[..., -1:]).sum(axis=-1)
        best[part] = grid[np.minimum(index, grid.size - 1)]
    return np.abs(best - truth[:, None]).T


def elasticity_law(
    spec: WorldSpec, groups: np.ndarray, elasticity: np.ndarray
) -> dict[str, np.ndarray]:
    """Per product, the law its world drew its true elasticity from (`synth.truth`): uniform on
    the scenario's range, or, where elasticities cluster by category, around the category's mean
    (the mean and spread of its products' true `elasticity`) inside that range."""
    low, high = spec.elasticity
    n = len(groups)
    law = {"prior_low": np.full(n, low), "prior_high": np.full(n, high)}
    if not spec.elasticity_by_category:
        return law | {"prior_centre": np.full(n, np.nan), "prior_sd": np.full(n, np.nan)}
    centre, spread = by_group(groups, elasticity)
    return law | {"prior_centre": centre, "prior_sd": spread}


def scored_products(
    moved_before: np.ndarray, observed_days: np.ndarray, truth: pl.DataFrame
) -> np.ndarray:
    """[P] bool: the products the suite scores for elasticity error (a regular price move in
    their history, enough days not to be a cold start, a price that does not follow demand:
    `evaluate.exogenous`). `truth`: the world's truth, in the same product order."""
    exogenous = ~truth["endogenous"].to_numpy() if "endogenous" in truth.columns else True
    return (
        np.asarray(moved_before, dtype=bool)
        & (np.asarray(observed_days) >= ModelConfig().min_history_days)
        & exogenous
    )


def capture_reach(
    world: World,
    market: mk.Market,
    se: np.ndarray,
    scored: np.ndarray,
    seed: int,
    cfg: PricingConfig,
) -> dict:
    """The engine's profit capture tonight when it knows as much as the history allows, or more.

    Three arms, each the engine (`pricing.recommend`, `cfg`) on the world's true base demand over
    the forecast horizon, holding the products the suite does not score:

    - `cautious`: the true elasticities, kept to the trust region of the prices each product
      sold at (DESIGN section 5), as `pricing evaluate`'s cautious oracle;
    - `floor`: elasticities about as good as `se` (the oracle's standard errors) allows: each
      product's own estimate drawn around the truth with that error (seeded), pooled with a
      normal prior of its category's true mean and spread (an approximation: the bounds use the
      world's own law), with its ~90% interval, under the trust region;
    - `floor_no_trust`: the same estimates without the trust region.

    Each arm's figures are `evaluate.capture.profit_capture`'s: `capture` against the oracle
    free to price every product, `capture_priced` on the products the arm priced (the suite's
    "on the estimate"), `capture_cautious` against the cautious oracle.
    """
    truth = world.truth.sort("product_id")
    products = world.products.sort("product_id")
    horizon = ModelConfig().horizon
    first = world.sales["ds"].max() + dt.timedelta(days=1)
    seen = price_seen_range(world.sales)
    true_e = market.demand.elasticity
    prior_mean, prior_sd = by_group(products["category"].to_numpy(), true_e)
    prior_sd = np.maximum(prior_sd, 1e-6)
    known = np.isfinite(se)
    sd = np.where(known, se, 0.0)
    own_precision = np.where(known, 1.0 / np.where(known, sd, 1.0) ** 2, 0.0)
    own = true_e + np.random.default_rng(10_000 + seed).normal(size=true_e.size) * sd
    precision = own_precision + 1.0 / prior_sd**2
    estimate = (own * own_precision + prior_mean / prior_sd**2) / precision
    half = Z90 / np.sqrt(precision)
    held = pl.when(pl.Series(scored)).then(pl.lit(None, pl.String)).otherwise(pl.lit("not scored"))
    demand = true_demand(truth, first, horizon).with_columns(held.alias("hold_reason"))
    informed = demand.with_columns(
        pl.Series("elasticity", estimate),
        pl.Series("elasticity_lo", estimate - half),
        pl.Series("elasticity_hi", estimate + half),
    )
    arms = {
        "cautious": demand.join(seen, on="product_id", how="left"),
        "floor": informed.join(seen, on="product_id", how="left"),
        "floor_no_trust": informed,
    }
    out = {}
    for name, table in arms.items():
        totals, _ = profit_capture(
            recommend(products, table, cfg), products, truth, first, horizon, cfg, seen
        )
        out[name] = {key: totals[key] for key in CAPTURES}
    return out


def median_captures(per_seed: list[dict]) -> dict:
    """`capture_reach`'s figures, the median over the seeds of each."""
    return {
        arm: {key: rounded(median(s[arm][key] for s in per_seed)) for key in CAPTURES}
        for arm in per_seed[0]
    }
