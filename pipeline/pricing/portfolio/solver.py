"""`solve`: holds decided before solving, the methods run, and the best valid answer kept.

Families whose rules leave no ordered prices, or that need more changes than the budget allows
to restore their order, are pinned to today's price first, with the reason. Then the methods of
`method` run (see the package docstring), every answer is checked against every rule and the best
valid one is returned; a limit no choice can meet holds every product, with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from pipeline.arrays import BoolArray, IntArray, StrArray
from pipeline.pricing.portfolio.exact import decompose
from pipeline.pricing.portfolio.greedy import greedy
from pipeline.pricing.portfolio.milp import milp_choice
from pipeline.pricing.portfolio.problem import (
    FAMILY_ORDER,
    MAX_CHANGES,
    REVENUE_FLOOR,
    Portfolio,
    Solution,
    broken_chains,
    chain_best,
    chain_name,
    change_indicator,
    independent_best,
    ordered_best,
    per_component,
    violations,
)

logger = logging.getLogger(__name__)

# In "auto", milp closes a decomposition's gap only on problems this small (one binary per
# candidate). `pricing bench optimize` on 2 cores: ~0.1 s at 5,000 binaries, ~1.3 s at 25,000,
# ~11 s at 75,000, and no solution within a minute at 250,000.
MILP_MAX_VARIABLES = 20_000


@dataclass(frozen=True)
class _Pinned:
    """A portfolio with some products pinned to today's price, and why."""

    portfolio: Portfolio
    held: BoolArray
    reason: StrArray
    rule: StrArray


def _pin(pinned: _Pinned, chains: IntArray, why: list[str], rule: str) -> _Pinned:
    """Hold every member of the given chains at today's price and drop their ordering links."""
    p = pinned.portfolio
    if chains.size == 0:
        return pinned
    held, reason, rules = pinned.held.copy(), pinned.reason.copy(), pinned.rule.copy()
    for chain, text in zip(chains, why, strict=True):
        members = p.chains[chain][p.chains[chain] >= 0]
        held[members], reason[members], rules[members] = True, text, rule
    value = np.where(held[:, None], -np.inf, p.value)
    rows = np.flatnonzero(held)
    at_current = p.value[rows, p.current[rows]]
    value[rows, p.current[rows]] = np.where(np.isfinite(at_current), at_current, 0.0)
    keep = np.setdiff1d(np.arange(p.chains.shape[0]), chains)
    names = tuple(p.chain_names[i] for i in keep) if p.chain_names else ()
    smaller = replace(p, value=value, chains=p.chains[keep], chain_names=names)
    return _Pinned(smaller, held, reason, rules)


def _pin_unordered(pinned: _Pinned) -> _Pinned:
    """Hold families whose allowed prices admit no size order."""
    p = pinned.portfolio
    if p.chains.shape[0] == 0:
        return pinned
    _, totals = chain_best(p, p.valued)
    stuck = np.flatnonzero(~np.isfinite(totals))
    why = [
        f"family {chain_name(p, int(c))}: no prices inside the allowed ranges keep every "
        "larger size at or above the smaller ones"
        for c in stuck
    ]
    return _pin(pinned, stuck, why, FAMILY_ORDER)


def _pin_over_budget(pinned: _Pinned) -> _Pinned:
    """Hold out-of-order families when restoring all of them needs more changes than allowed."""
    p = pinned.portfolio
    if p.max_changes is None or p.chains.shape[0] == 0:
        return pinned
    broken = np.flatnonzero(broken_chains(p, p.current))
    if broken.size == 0:
        return pinned
    fewest = ordered_best(p, np.where(np.isfinite(p.valued), -change_indicator(p), -np.inf))
    need = per_component(p, (fewest != p.current).astype(float))[broken]
    order = np.argsort(need, kind="stable")
    fits = np.cumsum(need[order]) <= p.max_changes
    over = broken[order[~fits]]
    why = [
        f"family {chain_name(p, int(c))} is out of size order today and restoring it needs "
        f"more price changes than max_changes {p.max_changes} leaves"
        for c in over
    ]
    return _pin(pinned, over, why, MAX_CHANGES)


def solve(p: Portfolio, method: str = "auto", time_limit: float = 60.0) -> Solution:
    """Choose one candidate per product under the coupling rules.

    Args:
        p: the problem.
        method: "auto", "milp" or "greedy" (see the `pipeline.pricing.portfolio` docstring), or
            "decomposition": auto without milp closing its gaps (benchmarks compare the two).
        time_limit: seconds scipy's milp may run.

    Returns:
        The choice, the products held and why, and what limited each product.

    Raises:
        ValueError: an unknown method.
    """
    if method not in ("auto", "decomposition", "milp", "greedy"):
        raise ValueError(
            f"unknown solver {method!r}: use 'auto', 'decomposition', 'milp' or 'greedy'"
        )
    start = _Pinned(
        p,
        np.zeros(p.n_products, dtype=bool),
        np.full(p.n_products, None, dtype=object),
        np.full(p.n_products, "none", dtype=object),
    )
    pinned = _pin_over_budget(_pin_unordered(start))
    q = pinned.portfolio
    own = independent_best(q)
    if not q.coupled and method != "milp":
        return _solution(q, pinned, own, own, "argmax", q.total(own), np.nan)
    base = greedy(q)
    found, bound, failure = _candidates(q, method, time_limit, base)
    valid = {name: col for name, col in found.items() if not violations(q, col)}
    if not valid:
        return _failed(q, pinned, own, failure or "no choice meets every coupling rule")
    # Exact methods first, so that greedy wins only when strictly better.
    used = max(valid, key=lambda name: (round(q.total(valid[name]), 9), name != "greedy"))
    greedy_total = q.total(base) if "greedy" in valid else np.nan
    return _solution(q, pinned, valid[used], own, used, bound, greedy_total)


def _candidates(
    q: Portfolio, method: str, time_limit: float, base: IntArray
) -> tuple[dict[str, IntArray], float, str]:
    """Answers of the methods to compare, an upper bound on the optimum, and a failure message."""
    found = {"greedy": base}
    bound, failure = np.inf, ""
    if method in ("auto", "decomposition"):
        column, bound, failure = decompose(q)
        both = q.max_changes is not None and q.revenue_floor is not None
        if column is None and not both:  # one limit: the relaxation proves it cannot be met
            return {}, bound, failure
        if column is not None:
            found["dp" if not q.has_global else "lagrangian"] = column
            if bound <= q.total(column) + 1e-9 * max(1.0, abs(bound)):
                return found, bound, failure
    n_vars = int(np.isfinite(q.valued).sum())
    if method == "milp" or (method == "auto" and n_vars <= MILP_MAX_VARIABLES):
        column, message = milp_choice(q, time_limit)
        if column is not None:
            found["milp"] = column
            bound = q.total(column) if not message else bound
        failure = message or failure
        if method == "milp" and column is None:
            del found["greedy"]  # a failed milp holds, as documented, rather than fall back
    return found, bound, failure


def _failed(q: Portfolio, pinned: _Pinned, own: IntArray, message: str) -> Solution:
    logger.warning("coupled price choice failed: %s; holding today's prices", message)
    reason = np.where(pinned.held, pinned.reason, f"{message}: today's prices kept").astype(object)
    current = q.current.copy()
    return Solution(
        column=current,
        held=np.ones(q.n_products, dtype=bool),
        reason=reason,
        held_rule=pinned.rule,
        limited_by=np.full(q.n_products, "", dtype=object),
        own=own,
        method="hold",
        objective=q.total(current),
        bound=np.inf,
        greedy_objective=np.nan,
    )


def _solution(
    q: Portfolio,
    pinned: _Pinned,
    column: IntArray,
    own: IntArray,
    method: str,
    bound: float,
    greedy_objective: float,
) -> Solution:
    return Solution(
        column=column,
        held=pinned.held,
        reason=pinned.reason,
        held_rule=pinned.rule,
        limited_by=_limited_by(q, column, own),
        own=own,
        method=method,
        objective=q.total(column),
        bound=bound,
        greedy_objective=greedy_objective,
    )


def _limited_by(q: Portfolio, column: IntArray, own: IntArray) -> StrArray:
    """Which coupling rule moved each product off its own best (attribution, not proof)."""
    family = ordered_best(q, q.scored) if q.chains.shape[0] else own
    if q.max_changes is not None and q.changes(column) >= q.max_changes:
        global_rule = MAX_CHANGES
    elif q.revenue_floor is not None:
        global_rule = REVENUE_FLOOR
    elif q.max_changes is not None:
        global_rule = MAX_CHANGES
    else:
        global_rule = FAMILY_ORDER
    rule = np.where(column == family, FAMILY_ORDER, global_rule)
    return np.where(column == own, "", rule).astype(object)
