"""One candidate price per product when rules tie products together (DESIGN section 5).

A `Portfolio` is the choice over every product's candidate ladder: pick one column per product to
maximise the summed value subject to

- family ordering: along each family chain (smallest size first) a price is never below its
  predecessor's and, where sizes are given, never above it per unit of size;
- at most `max_changes` products off their current price;
- total expected revenue at least `revenue_floor` (currency over the horizon).

`solve` picks the method:

- nothing couples products: the exact per-product argmax;
- family ordering only: an exact dynamic programme along each chain, all families at once;
- one global limit (the change budget or the revenue floor): Lagrangian relaxation of it, a
  bisection on its multiplier with the chain programme inside, then a greedy fill of the slack;
  the dual bound is kept, so the gap to the optimum is known;
- both global limits: a bisection on the floor's multiplier around the budget's search;
- when that leaves a gap and the problem has at most `MILP_MAX_VARIABLES` candidates, and always
  with `method="milp"`: scipy.optimize.milp over one binary per candidate, with a time limit
  (HiGHS needs ~1 s at 1,000 products x 25 candidates and finds nothing in a minute at 10,000:
  `pricing bench optimize`); a `method="milp"` without a valid answer holds every product, with
  the reason;
- `method="greedy"`: the per-product best, repaired rule by rule (the baseline).

The coupled answer is never worse than the greedy one: the best valid answer of the methods run
(greedy's included) is returned. Families whose rules leave no ordered prices, or that need more
changes than the budget allows to restore their order, are held before solving; their reason says
why. A limit no choice can meet holds every product, with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.object_]

FAMILY_ORDER, MAX_CHANGES, REVENUE_FLOOR = "family_order", "max_changes", "revenue_floor"
# Prices are whole cents, so any tolerance far below a cent separates "equal" from "below".
_PRICE_TOL = 1e-9
# The current price wins ties: a relabel must pay for itself.
_TIE = 1e-9
_BISECTIONS = 60
# In "auto", milp closes a decomposition's gap only on problems this small (one binary per
# candidate). `pricing bench optimize` on 2 cores: ~0.1 s at 5,000 binaries, ~1.3 s at 25,000,
# ~11 s at 75,000, and no solution within a minute at 250,000.
MILP_MAX_VARIABLES = 20_000


@dataclass(frozen=True)
class Portfolio:
    """The choice problem over candidate ladders.

    Attributes:
        value: [P, C] objective of each candidate; NaN or -inf where there is no candidate.
        price: [P, C] candidate prices (currency per unit).
        revenue: [P, C] expected revenue of each candidate, finite wherever value is.
        current: [P] column of today's price (always a valid candidate).
        chains: [F, L] product rows of each family from the smallest size, -1 padded.
        unit_size: [P] size for the per-unit rule (NaN where it does not apply), or None.
        max_changes: most products whose price may change, or None for no limit.
        revenue_floor: least total expected revenue, or None for no floor.
        chain_names: a name per chain for messages (e.g. the family_id).
    """

    value: FloatArray
    price: FloatArray
    revenue: FloatArray
    current: IntArray
    chains: IntArray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    unit_size: FloatArray | None = None
    max_changes: int | None = None
    revenue_floor: float | None = None
    chain_names: tuple[str, ...] = ()

    @property
    def n_products(self) -> int:
        """Number of products (rows)."""
        return int(self.value.shape[0])

    @property
    def has_global(self) -> bool:
        """True when a change budget or a revenue floor couples every product."""
        return self.max_changes is not None or self.revenue_floor is not None

    @property
    def coupled(self) -> bool:
        """True when some rule ties products together."""
        return self.has_global or self.chains.shape[0] > 0

    @cached_property
    def valued(self) -> FloatArray:
        """`value` with -inf for every missing candidate."""
        return np.where(np.isfinite(self.value), self.value, -np.inf)

    @cached_property
    def tie_break(self) -> FloatArray:
        """[P, C] a bonus far below any real difference on today's price, zero elsewhere."""
        rows = np.arange(self.n_products)
        bonus = np.zeros_like(self.valued)
        bonus[rows, self.current] = _TIE * np.maximum(1.0, np.abs(self.valued[rows, self.current]))
        return bonus

    @cached_property
    def scored(self) -> FloatArray:
        """`valued` with the tie-break towards the current price added."""
        return self.valued + self.tie_break

    @cached_property
    def component(self) -> IntArray:
        """[P] a component id: the chain's index for family members, a unique id otherwise."""
        comp = self.chains.shape[0] + np.arange(self.n_products, dtype=np.int64)
        member = self.chains >= 0
        comp[self.chains[member]] = np.nonzero(member)[0]
        return comp

    @cached_property
    def compat(self) -> FloatArray:
        """[F, L-1, C, C] 0 where candidate j of link k's successor may follow candidate i."""
        return _compat(self)

    def picked(self, table: FloatArray, column: IntArray) -> FloatArray:
        """`table[i, column[i]]` for every product."""
        return table[np.arange(self.n_products), column]

    def total(self, column: IntArray) -> float:
        """Summed value of a choice."""
        return float(self.picked(self.valued, column).sum())

    def changes(self, column: IntArray) -> int:
        """Products whose price a choice changes."""
        return int(np.count_nonzero(column != self.current))

    def total_revenue(self, column: IntArray) -> float:
        """Total expected revenue of a choice."""
        return float(self.picked(self.revenue, column).sum())


@dataclass(frozen=True)
class Solution:
    """The chosen column per product and how it was found.

    Attributes:
        column: [P] chosen candidate column.
        held: [P] products the solver kept at today's price because no choice satisfies the
            coupling rules (or the solver failed); `reason` says why.
        reason: [P] the hold reason, None elsewhere.
        held_rule: [P] for holds, the rule that caused it ('none' for a failed solver).
        limited_by: [P] the coupling rule that moved the product off its own best candidate
            ('family_order', 'max_changes', 'revenue_floor'), '' where none did.
        own: [P] each product's own best column (the per-product argmax).
        method: 'argmax', 'dp', 'lagrangian', 'milp' or 'greedy' (the one whose answer is kept).
        objective: summed value of the choice.
        bound: an upper bound on the optimum (equal to objective when proven optimal; inf when
            unknown).
        greedy_objective: summed value of the greedy baseline (NaN when greedy is infeasible).
    """

    column: IntArray
    held: BoolArray
    reason: StrArray
    held_rule: StrArray
    limited_by: StrArray
    own: IntArray
    method: str
    objective: float
    bound: float
    greedy_objective: float


# --- the pieces every method shares ---------------------------------------------------------------


def independent_best(portfolio: Portfolio) -> IntArray:
    """Each product's best column alone (exact when nothing couples products)."""
    return np.argmax(portfolio.scored, axis=1).astype(np.int64)


def _compat(p: Portfolio) -> FloatArray:
    n_chains, length = p.chains.shape
    width = p.price.shape[1]
    if n_chains == 0 or length < 2:
        return np.zeros((n_chains, max(length - 1, 0), width, width))
    before, after = p.chains[:, :-1], p.chains[:, 1:]
    a_price = p.price[np.maximum(before, 0)][:, :, :, None]  # [F, L-1, C(prev), 1]
    b_price = p.price[np.maximum(after, 0)][:, :, None, :]  # [F, L-1, 1, C(next)]
    ok = b_price >= a_price - _PRICE_TOL * np.maximum(1.0, a_price)
    if p.unit_size is not None:
        a_size = p.unit_size[np.maximum(before, 0)][:, :, None, None]
        b_size = p.unit_size[np.maximum(after, 0)][:, :, None, None]
        # b / b_size <= a / a_size, multiplied out (sizes are positive); NaN size: no rule.
        per_unit = b_price * a_size <= a_price * b_size + _PRICE_TOL * np.maximum(1.0, a_price)
        ok &= per_unit | ~np.isfinite(a_size * b_size)
    ok |= (after < 0)[:, :, None, None]  # padding follows anything
    return np.where(ok, 0.0, -np.inf)


def _chain_best(p: Portfolio, value: FloatArray) -> tuple[IntArray, FloatArray]:
    """Exact best columns of every chain under family ordering (a max-plus programme per chain).

    Returns:
        [F, L] columns (0 on padding) and [F] chain totals (-inf where no ordered choice exists).
    """
    chains = p.chains
    n_chains, length = chains.shape
    width = value.shape[1]
    pad_row = np.where(np.arange(width) == 0, 0.0, -np.inf)
    v = np.where((chains < 0)[:, :, None], pad_row, value[np.maximum(chains, 0)])
    best = v[:, 0, :]
    pointers = np.zeros((n_chains, max(length - 1, 0), width), dtype=np.int64)
    for k in range(1, length):
        step = best[:, :, None] + p.compat[:, k - 1]
        pointers[:, k - 1] = np.argmax(step, axis=1)
        best = np.max(step, axis=1) + v[:, k, :]
    cols = np.zeros((n_chains, length), dtype=np.int64)
    cols[:, -1] = np.argmax(best, axis=1)
    for k in range(length - 1, 0, -1):
        cols[:, k - 1] = pointers[np.arange(n_chains), k - 1, cols[:, k]]
    return cols, np.max(best, axis=1)


def _best(p: Portfolio, value: FloatArray) -> IntArray:
    """Best column per product under family order: argmax for singles, the programme for chains."""
    column = np.argmax(value, axis=1).astype(np.int64)
    if p.chains.shape[0]:
        cols, _ = _chain_best(p, value)
        member = p.chains >= 0
        column[p.chains[member]] = cols[member]
    return column


def _broken_chains(p: Portfolio, column: IntArray) -> BoolArray:
    """[F] chains whose choice breaks a family-ordering link."""
    if p.chains.shape[0] == 0 or p.chains.shape[1] < 2:
        return np.zeros(p.chains.shape[0], dtype=bool)
    before, after = p.chains[:, :-1], p.chains[:, 1:]
    f, k = np.indices(before.shape)
    links = p.compat[f, k, column[np.maximum(before, 0)], column[np.maximum(after, 0)]]
    return np.any(~np.isfinite(links), axis=1)


def violations(p: Portfolio, column: IntArray) -> list[str]:
    """Every coupling or ladder rule a choice breaks, as readable lines (empty when valid)."""
    found = []
    bad = ~np.isfinite(p.picked(p.valued, column))
    if bad.any():
        found.append(f"{int(bad.sum())} product(s) on a column that is not a candidate")
    for f in np.flatnonzero(_broken_chains(p, column)):
        found.append(f"family {_chain_name(p, int(f))} is out of size order")
    if p.max_changes is not None and p.changes(column) > p.max_changes:
        found.append(f"{p.changes(column)} changes exceed max_changes {p.max_changes}")
    if p.revenue_floor is not None:
        short = p.revenue_floor - p.total_revenue(column)
        if short > 1e-9 * max(1.0, abs(p.revenue_floor)):
            found.append(f"revenue {p.total_revenue(column):.2f} is below the floor")
    return found


def _chain_name(p: Portfolio, chain: int) -> str:
    return p.chain_names[chain] if chain < len(p.chain_names) else f"#{chain}"


def _moves(p: Portfolio) -> FloatArray:
    """[P, C] 1.0 for every column other than today's price."""
    return (np.arange(p.value.shape[1])[None, :] != p.current[:, None]).astype(float)


def _per_component(p: Portfolio, values: FloatArray) -> FloatArray:
    return np.bincount(p.component, weights=values, minlength=p.chains.shape[0] + p.n_products)


# --- holds decided before solving ----------------------------------------------------------------


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
    _, totals = _chain_best(p, p.valued)
    stuck = np.flatnonzero(~np.isfinite(totals))
    why = [
        f"family {_chain_name(p, int(c))}: no prices inside the allowed ranges keep every "
        "larger size at or above the smaller ones"
        for c in stuck
    ]
    return _pin(pinned, stuck, why, FAMILY_ORDER)


def _pin_over_budget(pinned: _Pinned) -> _Pinned:
    """Hold out-of-order families when restoring all of them needs more changes than allowed."""
    p = pinned.portfolio
    if p.max_changes is None or p.chains.shape[0] == 0:
        return pinned
    broken = np.flatnonzero(_broken_chains(p, p.current))
    if broken.size == 0:
        return pinned
    fewest = _best(p, np.where(np.isfinite(p.valued), -_moves(p), -np.inf))
    need = _per_component(p, (fewest != p.current).astype(float))[broken]
    order = np.argsort(need, kind="stable")
    fits = np.cumsum(need[order]) <= p.max_changes
    over = broken[order[~fits]]
    why = [
        f"family {_chain_name(p, int(c))} is out of size order today and restoring it needs "
        f"more price changes than max_changes {p.max_changes} leaves"
        for c in over
    ]
    return _pin(pinned, over, why, MAX_CHANGES)


# --- the methods ---------------------------------------------------------------------------------


def _lagrangian(
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
        column = _best(p, scored - lam * use)
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


def _both_limits(p: Portfolio) -> tuple[IntArray | None, float]:
    """The change budget and the revenue floor together: bisection on the floor's multiplier
    around the budget's Lagrangian search; the best answer meeting both is kept.

    Returns:
        The choice (None when none found meets both) and an upper bound on the optimum.
    """
    floor, moves = float(p.revenue_floor or 0.0), _moves(p)
    best: IntArray | None = None
    bound = np.inf

    def at(mu: float) -> bool:
        nonlocal best, bound
        found = _lagrangian(p, moves, float(p.max_changes or 0), p.valued + mu * p.revenue)
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
    gain = _per_component(p, p.picked(weight, over) - p.picked(weight, within))
    extra = _per_component(p, p.picked(use, over) - p.picked(use, within))
    slack = cap - float(p.picked(use, within).sum())
    candidates = np.flatnonzero(gain > 0)
    rate = gain[candidates] / np.maximum(extra[candidates], 1e-300)
    take = np.zeros(gain.shape[0], dtype=bool)
    for comp in candidates[np.argsort(-rate, kind="stable")]:
        if extra[comp] <= slack + 1e-9 * max(1.0, abs(cap)):
            take[comp], slack = True, slack - extra[comp]
    return np.where(take[p.component], over, within)


def _milp(p: Portfolio, time_limit: float) -> tuple[IntArray | None, str]:
    """scipy.optimize.milp over one binary per candidate; (None, message) when it fails."""
    rows, cols = np.nonzero(np.isfinite(p.valued))
    n_vars = rows.size
    constraints = [LinearConstraint(_one_per_product(p, rows), 1, 1)]
    constraints += _order_rows(p, rows, cols)
    if p.max_changes is not None:
        moved = (cols != p.current[rows]).astype(float)[None, :]
        constraints.append(LinearConstraint(moved, 0, p.max_changes))
    if p.revenue_floor is not None:
        constraints.append(LinearConstraint(p.revenue[rows, cols][None, :], p.revenue_floor))
    result = milp(
        c=-p.scored[rows, cols],
        integrality=np.ones(n_vars),
        bounds=Bounds(0, 1),
        constraints=constraints,
        options={"disp": False, "mip_rel_gap": 0.0, "time_limit": float(time_limit)},
    )
    if result.x is None:
        return None, f"milp found no solution ({result.message})"
    column = p.current.copy()
    on = result.x > 0.5
    column[rows[on]] = cols[on]
    if np.bincount(rows[on], minlength=p.n_products).max(initial=0) > 1 or violations(p, column):
        return None, "milp's answer broke a rule"
    return column, "" if result.status == 0 else str(result.message)


def _one_per_product(p: Portfolio, rows: IntArray) -> sparse.csr_array:
    n_vars = rows.size
    return sparse.csr_array(
        (np.ones(n_vars), (rows, np.arange(n_vars))), shape=(p.n_products, n_vars)
    )


def _order_rows(p: Portfolio, rows: IntArray, cols: IntArray) -> list[LinearConstraint]:
    """Per link a -> b: price_b - price_a >= 0 and, with sizes, s_a price_b - s_b price_a <= 0."""
    if p.chains.shape[0] == 0:
        return []
    links = np.stack([p.chains[:, :-1].ravel(), p.chains[:, 1:].ravel()], axis=1)
    links = links[links[:, 1] >= 0]
    var_of = {(int(r), int(c)): k for k, (r, c) in enumerate(zip(rows, cols, strict=True))}
    size = p.unit_size if p.unit_size is not None else np.full(p.n_products, np.nan)
    order, per_unit = _LinkRows(), _LinkRows()
    for a, b in links:
        order.add(var_of, p.price, ((b, 1.0), (a, -1.0)))
        if np.isfinite(size[a] * size[b]):
            per_unit.add(var_of, p.price, ((b, size[a]), (a, -size[b])))
    n_vars = rows.size
    out = [LinearConstraint(order.matrix(n_vars), 0, np.inf)]
    if per_unit.count:
        out.append(LinearConstraint(per_unit.matrix(n_vars), -np.inf, 0))
    return out


class _LinkRows:
    """Sparse rows sum_k weight_k * price(candidate k) * x_k, one per family link."""

    def __init__(self) -> None:
        self.r: list[int] = []
        self.c: list[int] = []
        self.v: list[float] = []
        self.count = 0

    def add(self, var_of: dict, price: FloatArray, terms: tuple) -> None:
        for product, weight in terms:
            for column in np.flatnonzero(np.isfinite(price[product])):
                k = var_of.get((int(product), int(column)))
                if k is not None:
                    self.r.append(self.count)
                    self.c.append(k)
                    self.v.append(weight * price[product, column])
        self.count += 1

    def matrix(self, n_vars: int) -> sparse.csr_array:
        return sparse.csr_array((self.v, (self.r, self.c)), shape=(self.count, n_vars))


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
        exact = _best(p, p.scored)
        members = p.chains[stuck][p.chains[stuck] >= 0]
        column[members] = exact[members]
    return column


def _greedy_budget(p: Portfolio, column: IntArray) -> IntArray:
    moved = _per_component(p, (column != p.current).astype(float))
    gain = _per_component(p, p.picked(p.valued, column) - p.picked(p.valued, p.current))
    forced = np.zeros_like(gain, dtype=bool)
    forced[: p.chains.shape[0]] = _broken_chains(p, p.current)
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
    recovered = _per_component(p, p.picked(p.revenue, p.current) - p.picked(p.revenue, column))
    lost = _per_component(p, p.picked(p.valued, column) - p.picked(p.valued, p.current))
    forced = np.zeros_like(recovered, dtype=bool)
    forced[: p.chains.shape[0]] = _broken_chains(p, p.current)
    candidates = np.flatnonzero((recovered > 0) & ~forced)
    order = candidates[np.argsort(lost[candidates] / recovered[candidates], kind="stable")]
    needed = np.searchsorted(np.cumsum(recovered[order]), short) + 1
    revert = np.zeros_like(forced)
    revert[order[:needed]] = True
    return np.where(revert[p.component], p.current, column)


# --- the entry point -----------------------------------------------------------------------------


def solve(p: Portfolio, method: str = "auto", time_limit: float = 60.0) -> Solution:
    """Choose one candidate per product under the coupling rules.

    Args:
        p: the problem.
        method: "auto", "milp" or "greedy" (see the module docstring).
        time_limit: seconds scipy's milp may run.

    Returns:
        The choice, the products held and why, and what limited each product.

    Raises:
        ValueError: an unknown method.
    """
    if method not in ("auto", "milp", "greedy"):
        raise ValueError(f"unknown solver {method!r}: use 'auto', 'milp' or 'greedy'")
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
    if method == "auto":
        column, bound, failure = _decompose(q)
        both = q.max_changes is not None and q.revenue_floor is not None
        if column is None and not both:  # one limit: the relaxation proves it cannot be met
            return {}, bound, failure
        if column is not None:
            found["dp" if not q.has_global else "lagrangian"] = column
            if bound <= q.total(column) + 1e-9 * max(1.0, abs(bound)):
                return found, bound, failure
    n_vars = int(np.isfinite(q.valued).sum())
    if method == "milp" or (method == "auto" and n_vars <= MILP_MAX_VARIABLES):
        column, message = _milp(q, time_limit)
        if column is not None:
            found["milp"] = column
            bound = q.total(column) if not message else bound
        failure = message or failure
        if method == "milp" and column is None:
            del found["greedy"]  # a failed milp holds, as documented, rather than fall back
    return found, bound, failure


def _decompose(q: Portfolio) -> tuple[IntArray | None, float, str]:
    """The chain programme, with a Lagrangian search for the global limit(s)."""
    if not q.has_global:
        column = _best(q, q.scored)
        return column, q.total(column), ""
    if q.max_changes is not None and q.revenue_floor is not None:
        column, bound = _both_limits(q)
        if column is None:
            return None, bound, "no allowed prices reach the revenue floor within max_changes"
        return column, bound, ""
    if q.max_changes is not None:
        found = _lagrangian(q, _moves(q), float(q.max_changes))
        failure = "the change budget cannot be met (max_changes)"
    else:
        found = _lagrangian(q, -q.revenue, -float(q.revenue_floor or 0.0))
        failure = "no allowed prices reach the revenue floor (revenue_floor)"
    if found is None:
        return None, np.inf, failure
    return found[0], found[1], ""


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
    family = _best(q, q.scored) if q.chains.shape[0] else own
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
