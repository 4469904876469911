"""The coupled-choice problem: `Portfolio`, its `Solution`, and the pieces every method shares.

The shared pieces are the family-ordering compatibility of neighbouring sizes, the exact chain
programme (a max-plus dynamic programme along each family, all families at once), the check of a
choice against every rule (`violations`) and per-component sums, where a component is a family
chain or a product outside every family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from pipeline.arrays import BoolArray, FloatArray, IntArray, StrArray
from pipeline.pricing.ladder import PRICE_TOL

FAMILY_ORDER, MAX_CHANGES, REVENUE_FLOOR = "family_order", "max_changes", "revenue_floor"
# The current price wins ties: a relabel must pay for itself.
_TIE = 1e-9


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
    ok = b_price >= a_price - PRICE_TOL * np.maximum(1.0, a_price)
    if p.unit_size is not None:
        a_size = p.unit_size[np.maximum(before, 0)][:, :, None, None]
        b_size = p.unit_size[np.maximum(after, 0)][:, :, None, None]
        # b / b_size <= a / a_size, multiplied out (sizes are positive); NaN size: no rule.
        per_unit = b_price * a_size <= a_price * b_size + PRICE_TOL * np.maximum(1.0, a_price)
        ok &= per_unit | ~np.isfinite(a_size * b_size)
    ok |= (after < 0)[:, :, None, None]  # padding follows anything
    return np.where(ok, 0.0, -np.inf)


def chain_best(p: Portfolio, value: FloatArray) -> tuple[IntArray, FloatArray]:
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


def ordered_best(p: Portfolio, value: FloatArray) -> IntArray:
    """Best column per product under family order: argmax for singles, the programme for chains."""
    column = np.argmax(value, axis=1).astype(np.int64)
    if p.chains.shape[0]:
        cols, _ = chain_best(p, value)
        member = p.chains >= 0
        column[p.chains[member]] = cols[member]
    return column


def broken_chains(p: Portfolio, column: IntArray) -> BoolArray:
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
    for f in np.flatnonzero(broken_chains(p, column)):
        found.append(f"family {chain_name(p, int(f))} is out of size order")
    if p.max_changes is not None and p.changes(column) > p.max_changes:
        found.append(f"{p.changes(column)} changes exceed max_changes {p.max_changes}")
    if p.revenue_floor is not None:
        short = p.revenue_floor - p.total_revenue(column)
        if short > 1e-9 * max(1.0, abs(p.revenue_floor)):
            found.append(f"revenue {p.total_revenue(column):.2f} is below the floor")
    return found


def chain_name(p: Portfolio, chain: int) -> str:
    """A chain's name for messages (its family_id), or '#k' when the problem names none."""
    return p.chain_names[chain] if chain < len(p.chain_names) else f"#{chain}"


def change_indicator(p: Portfolio) -> FloatArray:
    """[P, C] 1.0 for every column other than today's price."""
    return (np.arange(p.value.shape[1])[None, :] != p.current[:, None]).astype(float)


def per_component(p: Portfolio, values: FloatArray) -> FloatArray:
    """[F + P] per-product values summed per component (chains first, then every product)."""
    return np.bincount(p.component, weights=values, minlength=p.chains.shape[0] + p.n_products)
