"""`pricing bench optimize`: the price optimiser on a large coupled catalogue, timed end to end.

A seeded synthetic catalogue (no sales history: the optimiser's inputs only) of `n_products`
products, about 30% of them in families of 2-3 sizes whose allowed ranges overlap (so the size
order binds), with `n_candidates` candidate prices each and a change budget. Measured, as medians
of `repeats` runs in one process:

- `recommend()` end to end (rules, ladders, scoring, the coupled choice, explanations);
- the coupled choice alone (`portfolio.solve`, method "auto": the chain programme with a
  Lagrangian search on the budget), with its dual bound, so the optimality gap is known;
- the greedy baseline on the same candidates, and how much the coupled choice beats it;
- scipy's milp on the same problem at each size of `milp_sizes` (once each, with a time limit),
  against the decomposition's objective on the same problem.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from pipeline import pricing
from pipeline.bench import machine, median_seconds
from pipeline.config import PricingConfig
from pipeline.pricing import portfolio

# Share of product groups that are families (2-3 sizes): ~30% of products end up in one.
_FAMILY_GROUP_PROB = 0.15
# Price of size k relative to the smallest: close enough that the allowed ranges overlap.
_SIZE_STEP = 1.12


def catalogue(n_products: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A seeded catalogue and its demand table (every product trained, families in size order).

    Returns:
        (products, demand) in the frames `pricing.recommend` reads.
    """
    rng = np.random.default_rng(seed)
    sizes = np.where(rng.random(n_products) < _FAMILY_GROUP_PROB, rng.integers(2, 4, n_products), 1)
    group = np.repeat(np.arange(n_products), sizes)[:n_products]
    rank = np.arange(n_products) - (np.cumsum(sizes) - sizes)[group] + 1
    in_family = np.bincount(group)[group] > 1
    base = np.exp(rng.uniform(np.log(1.0), np.log(50.0), group[-1] + 1))[group]
    current = np.round(base * _SIZE_STEP ** (rank - 1), 2)
    ids = [f"B{i:06d}" for i in range(n_products)]
    elasticity = rng.uniform(-3.5, -0.5, n_products)
    products = pl.DataFrame(
        {
            "product_id": ids,
            "category": rng.choice(["a", "b", "c", "d", "e"], n_products),
            "family_id": [
                f"F{g:06d}" if f else None for g, f in zip(group, in_family, strict=True)
            ],
            "size_rank": pl.Series(rank, dtype=pl.Int64).set(pl.Series(~in_family), None),
            "unit_cost": np.round(current * rng.uniform(0.35, 0.7, n_products), 2),
            "current_price": current,
            "min_price": np.round(current * 0.6, 2),
            "max_price": np.round(current * 1.6, 2),
            "is_kvi": rng.random(n_products) < 0.1,
        }
    )
    demand = pl.DataFrame(
        {
            "product_id": ids,
            "status": "trained",
            "base_units": rng.uniform(1.0, 500.0, n_products),
            "ref_price": current * rng.uniform(0.9, 1.1, n_products),
            "elasticity": elasticity,
            "elasticity_lo": elasticity - 0.3,
            "elasticity_hi": np.minimum(elasticity + 0.3, 0.0),
            "dispersion": rng.uniform(0.05, 0.3, n_products),
            "stockout_share": np.zeros(n_products),
        }
    )
    return products, demand


def bench_config(n_candidates: int, max_changes: int) -> PricingConfig:
    """Rules that give every product a full ladder: any cent ending, +-20% per run."""
    return PricingConfig(
        max_change_up=0.2,
        max_change_down=0.2,
        margin_floor=0.0,
        price_endings=(),
        n_candidates=n_candidates - 1,  # plus today's price: n_candidates columns
        max_changes=max_changes,
    )


def _problem_facts(problem: portfolio.Portfolio) -> dict[str, Any]:
    valid = np.isfinite(problem.value)
    return {
        "n_products": problem.n_products,
        "ladder_columns": int(problem.value.shape[1]),
        "mean_candidates": float(valid.sum(axis=1).mean()),
        "n_families": int(problem.chains.shape[0]),
        "products_in_families": int((problem.chains >= 0).sum()),
        "max_changes": problem.max_changes,
    }


def _scaled(cfg: PricingConfig, n_products: int) -> PricingConfig:
    """The rules with the change budget scaled from 10,000 products to n_products."""
    return replace(cfg, max_changes=max(1, round(cfg.max_changes * n_products / 10_000)))


def _milp_check(n: int, seed: int, cfg: PricingConfig, time_limit: float) -> dict[str, Any]:
    """milp and the decomposition on the same problem of n products (milp timed once)."""
    products, demand = catalogue(n, seed)
    sized = _scaled(cfg, n)
    problem = pricing.choice_problem(products, demand, sized)
    # The decomposition alone: "auto" would call milp itself wherever a gap is left.
    auto_s, _, auto = median_seconds(lambda: portfolio.solve(problem, "decomposition"), 1)
    milp_s, _, exact = median_seconds(lambda: portfolio.solve(problem, "milp", time_limit), 1)
    solved = exact.method == "milp"
    return {
        "n_products": n,
        "max_changes": sized.max_changes,
        "milp_seconds": milp_s,
        "milp_time_limit": time_limit,
        "milp_outcome": exact.method,  # 'milp', 'greedy' (milp was worse) or 'hold' (failed)
        "milp_objective": exact.objective if solved else None,
        "decomposition_seconds": auto_s,
        "decomposition_objective": auto.objective,
        "decomposition_minus_milp": auto.objective - exact.objective if solved else None,
    }


def run(
    n_products: int = 10_000,
    n_candidates: int = 25,
    max_changes: int = 1_000,
    repeats: int = 5,
    milp_sizes: tuple[int, ...] = (200, 1_000),
    milp_time_limit: float = 60.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Time the coupled price choice on a synthetic catalogue; see the module docstring.

    Args:
        n_products: catalogue size of the main measurement.
        n_candidates: candidate prices per product, today's included.
        max_changes: the change budget at 10,000 products (scaled with the catalogue size).
        repeats: timed runs per measure (the median is reported).
        milp_sizes: sizes at which scipy's milp is timed against the decomposition.
        milp_time_limit: seconds milp may run at each size.
        seed: catalogue seed.

    Returns:
        JSON-ready results.
    """
    cfg = bench_config(n_candidates, max_changes)
    products, demand = catalogue(n_products, seed)
    sized = _scaled(cfg, n_products)
    problem = pricing.choice_problem(products, demand, sized)
    e2e_s, e2e_runs, recs = median_seconds(
        lambda: pricing.recommend(products, demand, sized), repeats
    )
    solve_s, solve_runs, solution = median_seconds(lambda: portfolio.solve(problem), repeats)
    greedy_s, _, greedy = median_seconds(lambda: portfolio.solve(problem, "greedy"), repeats)
    return {
        "benchmark": "optimize",
        "machine": machine(),
        "problem": _problem_facts(problem),
        "end_to_end_seconds": {"median": e2e_s, "runs": e2e_runs, "target": 2.0},
        "meets_target": e2e_s < 2.0,
        "solve_seconds": {"median": solve_s, "runs": solve_runs},
        "method": solution.method,
        "objective": solution.objective,
        "dual_bound": solution.bound,
        "relative_gap": (solution.bound - solution.objective) / abs(solution.objective),
        "changes": int(recs["action"].is_in(["increase", "decrease"]).sum()),
        "limited_by": {
            rule: int((solution.limited_by == rule).sum())
            for rule in (portfolio.FAMILY_ORDER, portfolio.MAX_CHANGES)
        },
        "greedy": {"seconds_median": greedy_s, "objective": greedy.objective},
        "coupled_minus_greedy": solution.objective - greedy.objective,
        "milp": [_milp_check(n, seed, cfg, milp_time_limit) for n in milp_sizes],
    }
