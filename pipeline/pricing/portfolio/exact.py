"""The decomposition: the exact chain programme, alone or inside a Lagrangian search.

With one global limit (the change budget or the revenue floor) a bisection on its multiplier runs
the chain programme at each step, then fills the slack greedily; the dual bound is kept, so the
gap to the optimum is known. With both, a bisection on the floor's multiplier wraps the budget's
search.
"""

from __future__ import annotations

import numpy as np

from pipeline.arrays import FloatArray, IntArray
from pipeline.pricing.portfolio.problem import (
    Portfolio,
    change_indicator,
    ordered_best,
    per_component,
)

_BISECTIONS = 60


def lagrangian(
    p: Portfolio, use: FloatArray, cap: float, weight: FloatArray | None = None
) -> tuple[IntArray, float] | None:
    """Best choice with sum(use) <= cap: bisection on the multiplier, then a greedy fill.

    Args:
        p: the problem (its chains are kept exactly).
        use: [P, C] what each candidate uses of the capped quantity.
        cap: the cap.
        weight: [P, C] the value to maximise (default the problem's value).

    Returns:
        The choice and an upper bound on the best weight within the cap, or None when no choice
        fits the cap.
    """
    weight = p.valued if weight is None else weight
    scored = weight + p.tie_break
    tol = 1e-9 * max(1.0, abs(cap))

    def at(lam: float) -> tuple[IntArray, float]:
        column = ordered_best(p, scored - lam * use)
        return column, float(p.picked(use, column).sum())

    low_col, used = at(0.0)
    if used <= cap + tol:
        return low_col, float(p.picked(weight, low_col).sum())
    low, high = 0.0, 1.0
    high_col, used = at(high)
    for _ in range(_BISECTIONS):
        if used <= cap + tol:
            break
        low, low_col, high = high, high_col, high * 8
        high_col, used = at(high)
    if used > cap + tol:
        return None
    for _ in range(_BISECTIONS):
        mid = 0.5 * (low + high)
        col, used = at(mid)
        if abs(used - cap) <= tol:  # the cap is met exactly: optimal for the capped problem
            return col, float(p.picked(weight, col).sum())
        if used < cap:
            high, high_col = mid, col
        else:
            low, low_col = mid, col
        if high - low <= 1e-12 * high:
            break
    bound = float(p.picked(weight - high * use, high_col).sum()) + high * cap
    return _fill(p, weight, high_col, low_col, use, cap), bound


def both_limits(p: Portfolio) -> tuple[IntArray | None, float]:
    """The change budget and the revenue floor together: bisection on the floor's multiplier
    around the budget's Lagrangian search; the best answer meeting both is kept.

    Returns:
        The choice (None when none found meets both) and an upper bound on the optimum.
    """
    floor, moves = float(p.revenue_floor or 0.0), change_indicator(p)
    best: IntArray | None = None
    bound = np.inf

    def at(mu: float) -> bool:
        nonlocal best, bound
        found = lagrangian(p, moves, float(p.max_changes or 0), p.valued + mu * p.revenue)
        if found is None:
            return False
        column, inner = found
        bound = min(bound, inner - mu * floor)  # max over budget-feasible of value + mu (r - F)
        meets = p.total_revenue(column) >= floor - 1e-9 * max(1.0, floor)
        if meets and (best is None or p.total(column) > p.total(best)):
            best = column
        return meets

    low, high = 0.0, 1.0
    if at(low):
        return best, bound
    for _ in range(_BISECTIONS):
        if at(high):
            break
        low, high = high, high * 8
    for _ in range(_BISECTIONS // 3):
        mid = 0.5 * (low + high)
        low, high = (low, mid) if at(mid) else (mid, high)
    return best, bound


def _fill(
    p: Portfolio, weight: FloatArray, within: IntArray, over: IntArray, use: FloatArray, cap: float
) -> IntArray:
    """Move whole components from the within-cap choice to the over-cap one while they fit."""
    gain = per_component(p, p.picked(weight, over) - p.picked(weight, within))
    extra = per_component(p, p.picked(use, over) - p.picked(use, within))
    slack = cap - float(p.picked(use, within).sum())
    candidates = np.flatnonzero(gain > 0)
    rate = gain[candidates] / np.maximum(extra[candidates], 1e-300)
    take = np.zeros(gain.shape[0], dtype=bool)
    for comp in candidates[np.argsort(-rate, kind="stable")]:
        if extra[comp] <= slack + 1e-9 * max(1.0, abs(cap)):
            take[comp], slack = True, slack - extra[comp]
    return np.where(take[p.component], over, within)


def decompose(q: Portfolio) -> tuple[IntArray | None, float, str]:
    """The chain programme, with a Lagrangian search for the global limit(s)."""
    if not q.has_global:
        column = ordered_best(q, q.scored)
        return column, q.total(column), ""
    if q.max_changes is not None and q.revenue_floor is not None:
        column, bound = both_limits(q)
        if column is None:
            return None, bound, "no allowed prices reach the revenue floor within max_changes"
        return column, bound, ""
    if q.max_changes is not None:
        found = lagrangian(q, change_indicator(q), float(q.max_changes))
        failure = "the change budget cannot be met (max_changes)"
    else:
        found = lagrangian(q, -q.revenue, -float(q.revenue_floor or 0.0))
        failure = "no allowed prices reach the revenue floor (revenue_floor)"
    if found is None:
        return None, np.inf, failure
    return found[0], found[1], ""
