"""The greedy baseline: each product's own best, then each coupling rule repaired in turn."""

from __future__ import annotations

import numpy as np

from pipeline.arrays import IntArray
from pipeline.pricing.portfolio.problem import (
    Portfolio,
    broken_chains,
    independent_best,
    ordered_best,
    per_component,
)


def greedy(p: Portfolio) -> IntArray:
    """The baseline: each product's own best, then each coupling rule repaired in turn.

    Family order is repaired from the smallest size up (each size takes its best price not below
    the previous one's; a chain that gets stuck takes the chain programme's answer), then the
    change budget keeps the components with the largest gains, then the revenue floor reverts the
    components that lose the most revenue per unit of value they add. The answer may still break
    a global limit when no repair of this kind meets it.
    """
    column = _greedy_order(p, independent_best(p))
    if p.max_changes is not None:
        column = _greedy_budget(p, column)
    if p.revenue_floor is not None:
        column = _greedy_floor(p, column)
    return column


def _greedy_order(p: Portfolio, column: IntArray) -> IntArray:
    column = column.copy()
    stuck = np.zeros(p.chains.shape[0], dtype=bool)
    for k in range(1, p.chains.shape[1]):
        a, b = p.chains[:, k - 1], p.chains[:, k]
        f = np.flatnonzero((b >= 0) & ~stuck)
        allowed = p.compat[f, k - 1, column[a[f]], :]
        bad = ~np.isfinite(allowed[np.arange(f.size), column[b[f]]])
        f, allowed = f[bad], allowed[bad]
        options = p.scored[b[f]] + allowed
        column[b[f]] = np.argmax(options, axis=1)
        stuck[f[~np.isfinite(options.max(axis=1, initial=-np.inf))]] = True
    if stuck.any():
        exact = ordered_best(p, p.scored)
        members = p.chains[stuck][p.chains[stuck] >= 0]
        column[members] = exact[members]
    return column


def _greedy_budget(p: Portfolio, column: IntArray) -> IntArray:
    moved = per_component(p, (column != p.current).astype(float))
    gain = per_component(p, p.picked(p.valued, column) - p.picked(p.valued, p.current))
    forced = np.zeros_like(gain, dtype=bool)
    forced[: p.chains.shape[0]] = broken_chains(p, p.current)
    keep = np.zeros_like(forced)
    room = float(p.max_changes or 0)
    changed = np.flatnonzero(moved > 0)
    for comp in changed[np.lexsort((-gain[changed], ~forced[changed]))]:
        if moved[comp] <= room:
            keep[comp], room = True, room - moved[comp]
    return np.where(keep[p.component] | (column == p.current), column, p.current)


def _greedy_floor(p: Portfolio, column: IntArray) -> IntArray:
    short = float(p.revenue_floor or 0.0) - p.total_revenue(column)
    if short <= 0:
        return column
    recovered = per_component(p, p.picked(p.revenue, p.current) - p.picked(p.revenue, column))
    lost = per_component(p, p.picked(p.valued, column) - p.picked(p.valued, p.current))
    forced = np.zeros_like(recovered, dtype=bool)
    forced[: p.chains.shape[0]] = broken_chains(p, p.current)
    candidates = np.flatnonzero((recovered > 0) & ~forced)
    order = candidates[np.argsort(lost[candidates] / recovered[candidates], kind="stable")]
    needed = np.searchsorted(np.cumsum(recovered[order]), short) + 1
    revert = np.zeros_like(forced)
    revert[order[:needed]] = True
    return np.where(revert[p.component], p.current, column)
