"""Step 4 of the engine: the choice over the ladders, and what happened to each product.

After the holds, every free product gets its candidate ladder, scored for the objective; the
ladders become a `portfolio.Portfolio` with the coupling rules of `PricingConfig` (family chains,
the change budget, the revenue floor). `decide` solves it with `portfolio.solve` and sorts every
product into an outcome (changed, already best, change too small, no ending, held, held but moved
toward its margin floor, or limited by a coupling rule), which `explain` turns into a sentence.

The portfolio's "today's price" is each product's base price (`PriceRange.base`): today's, or
for a price that breaks a bound, the nearest allowed price toward it. So a floor is a floor under
every hold and fallback, and a move the bounds force does not count against `max_changes`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from pipeline.arrays import BoolArray, FloatArray, IntArray, StrArray
from pipeline.config import PricingConfig
from pipeline.pricing import portfolio
from pipeline.pricing.holds import Holds, hold_texts
from pipeline.pricing.inputs import Inputs, float_column, prepare_inputs
from pipeline.pricing.ladder import (
    PRICE_TOL,
    candidate_ladders,
    ending_prices,
    without_small_changes,
)
from pipeline.pricing.scoring import candidate_values

# Outcomes of the choice, before they become actions and sentences. LIMITED: a coupling rule
# (family order, the change budget, the revenue floor) kept a price the product alone would move.
CHANGE, BEST, SMALL, ENDING, HOLD, LIMITED = "change", "best", "small", "ending", "hold", "limited"
# FLOOR: held for its evidence, but moved toward the bound its price breaks (its margin floor).
FLOOR = "floor"


@dataclass(frozen=True)
class Choice:
    """What the engine decided for every product (internal to the engine).

    Attributes:
        price: the recommended price.
        chosen: the best allowed price alone, before min_change (quoted by 'small' keeps).
        own: the best price alone after min_change (quoted when a coupling rule moved it).
        outcome: CHANGE, BEST, SMALL, ENDING, HOLD, FLOOR or LIMITED.
        hold: the hold reason (None where not held).
        held_rule: for holds, the rule that caused it ('none' when no rule did).
        limited: the coupling rule that moved the product off its own best, '' where none did.
        ladder: the candidate prices (before min_change).
        keeps: holds that keep today's price even below the margin floor.
    """

    price: FloatArray
    chosen: FloatArray
    own: FloatArray
    outcome: StrArray
    hold: StrArray
    held_rule: StrArray
    limited: StrArray
    ladder: FloatArray
    keeps: BoolArray


def _chains(frame: pl.DataFrame) -> tuple[IntArray, tuple[str, ...]]:
    """Each family's rows from the smallest size (ties by product_id), for families of 2 or more.

    Products without a family_id or a size_rank are outside every family.
    """
    ranked = frame.with_row_index("_row").filter(
        pl.col("family_id").is_not_null() & pl.col("size_rank").is_not_null()
    )
    groups = (
        ranked.sort("family_id", "size_rank", "product_id")
        .group_by("family_id", maintain_order=True)
        .agg(pl.col("_row").cast(pl.Int64))
        .filter(pl.col("_row").list.len() >= 2)
    )
    if groups.height == 0:
        return np.zeros((0, 2), dtype=np.int64), ()
    rows = groups["_row"].to_list()
    chains = np.full((len(rows), max(len(r) for r in rows)), -1, dtype=np.int64)
    for k, members in enumerate(rows):
        chains[k, : len(members)] = members
    return chains, tuple(groups["family_id"].to_list())


def _problem(
    frame: pl.DataFrame,
    ladder: FloatArray,
    value: FloatArray,
    revenue: FloatArray,
    cfg: PricingConfig,
    base: FloatArray,
) -> portfolio.Portfolio:
    """The choice over the ladders with the coupling rules of `cfg`, kept at `base` by default."""
    at = np.abs(ladder - base[:, None]) <= PRICE_TOL
    current = np.argmax(at, axis=1).astype(np.int64)
    rows = np.arange(base.shape[0])
    value = np.where(np.isfinite(ladder), value, np.nan)
    # An unscorable product (held) still needs a finite today's value to take part.
    value[rows, current] = np.nan_to_num(value[rows, current], nan=0.0, posinf=0.0, neginf=0.0)
    revenue = np.where(np.isfinite(revenue), revenue, 0.0)
    chains, names = _chains(frame) if cfg.family_order else (np.zeros((0, 2), np.int64), ())
    size = float_column(frame, "size") if cfg.family_unit_price else None
    floor = cfg.revenue_floor * float(revenue[rows, current].sum())
    return portfolio.Portfolio(
        value=value,
        price=ladder,
        revenue=revenue,
        current=current,
        chains=chains,
        unit_size=None if size is None else np.where(size > 0, size, np.nan),
        max_changes=cfg.max_changes if cfg.max_changes >= 0 else None,
        revenue_floor=floor if cfg.revenue_floor > 0 else None,
        chain_names=names,
    )


def outcomes(
    held: BoolArray,
    no_ending: BoolArray,
    solution: portfolio.Solution,
    ideal: IntArray,
    current: IntArray,
    moved: BoolArray | None = None,
) -> StrArray:
    """What happened to each product.

    Args:
        held: products kept at their base price with a reason.
        no_ending: products whose allowed range holds no allowed ending price.
        solution: the coupled choice (its column and each product's own best column).
        ideal: each product's best column alone before min_change.
        current: the column of the base price (today's, unless a bound forces a move).
        moved: products whose base price is not today's (None: none).

    Returns:
        CHANGE, BEST (already the best), SMALL (the best move is below min_change), LIMITED (a
        coupling rule kept a price the product alone would move), ENDING, HOLD or FLOOR (held,
        but moved toward the bound its price breaks) per product.
    """
    moved = np.zeros(current.shape[0], dtype=bool) if moved is None else moved
    keep = solution.column == current
    outcome = np.where(keep, np.where(ideal != current, SMALL, BEST), CHANGE)
    outcome = np.where(keep & (solution.own != current), LIMITED, outcome)
    outcome = np.where(no_ending, ENDING, outcome)
    # A base price away from today's is a change, whatever the choice kept.
    outcome = np.where(keep & moved, CHANGE, outcome)
    on_hold = held | solution.held
    return np.where(on_hold, np.where(moved, FLOOR, HOLD), outcome).astype(object)


@dataclass(frozen=True)
class _Stage:
    """Holds decided before the choice, the ladders and the choice problem over them."""

    holds: Holds
    base: FloatArray
    ladder: FloatArray
    problem: portfolio.Portfolio  # over the whole ladder
    chooser: portfolio.Portfolio  # the same without changes below min_change: the one solved


def _stage(inputs: Inputs, cfg: PricingConfig) -> _Stage:
    frame, limits, prange = inputs.frame, inputs.limits, inputs.prange
    cur = float_column(frame, "current_price")
    holds = hold_texts(frame, prange, limits, cfg)
    held = holds.reason != None  # noqa: E711 (element-wise on an object array)
    base = np.where(holds.keeps, cur, prange.base)
    lower = np.where(held, np.nan, prange.lower)
    upper = np.where(held, np.nan, prange.upper)
    ladder = candidate_ladders(base, lower, upper, cfg, limits.endings)
    problem = _problem(frame, ladder, *candidate_values(frame, ladder, cfg), cfg, base)
    masked = without_small_changes(ladder, cur, cfg.min_change, keep=base)
    chooser = replace(problem, value=np.where(np.isfinite(masked), problem.value, np.nan))
    return _Stage(holds, base, ladder, problem, chooser)


def choice_problem(
    products: pl.DataFrame, demand: pl.DataFrame, cfg: PricingConfig
) -> portfolio.Portfolio:
    """The candidate-choice problem `recommend` solves (for benchmarks and solver checks).

    Args:
        products: as for `recommend`.
        demand: as for `recommend`.
        cfg: pricing rules, hold policy and objective.

    Returns:
        The problem over every product's ladder (held products have today's price only), rows in
        product_id order, with the coupling rules of `cfg`.
    """
    return _stage(prepare_inputs(products, demand, cfg), cfg).chooser


def decide(inputs: Inputs, cfg: PricingConfig) -> Choice:
    """Hold, build and score the ladders, solve the coupled choice and name each outcome.

    Args:
        inputs: the prepared inputs.
        cfg: pricing rules, hold policy, objective and solver.

    Returns:
        Every product's recommended price, outcome, hold reason and limiting rule.
    """
    cur = float_column(inputs.frame, "current_price")
    stage = _stage(inputs, cfg)
    holds = stage.holds
    held = holds.reason != None  # noqa: E711 (element-wise on an object array)
    solution = portfolio.solve(stage.chooser, cfg.solver, cfg.milp_time_limit)
    ideal = portfolio.independent_best(stage.problem)
    lower = np.where(held, np.nan, inputs.prange.lower)
    upper = np.where(held, np.nan, inputs.prange.upper)
    no_ending = ~held & (ending_prices(lower, upper, inputs.limits.endings, 2)[1] == 0)
    with np.errstate(invalid="ignore"):
        moved = np.abs(stage.base - cur) > PRICE_TOL * np.maximum(1.0, np.abs(cur))
    outcome = outcomes(held, no_ending, solution, ideal, stage.problem.current, moved)

    def price_of(column: IntArray) -> FloatArray:
        return np.take_along_axis(stage.ladder, column[:, None], axis=1)[:, 0]

    return Choice(
        price=np.where(np.isin(outcome, (CHANGE, FLOOR)), price_of(solution.column), cur),
        chosen=price_of(ideal),
        own=price_of(solution.own),
        outcome=outcome,
        hold=np.where(held, holds.reason, solution.reason).astype(object),
        held_rule=np.where(held, holds.rule, solution.held_rule).astype(object),
        limited=solution.limited_by,
        ladder=stage.ladder,
        keeps=holds.keeps & held,
    )
