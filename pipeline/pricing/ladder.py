"""Steps 1-2 of the engine: the prices the rules allow, and the candidate ladder inside them.

Rules are applied in order (DESIGN section 5): min_price/max_price -> maximum change per run ->
margin floor over unit cost; the most restrictive bound wins and its rule is recorded. A floor is a
floor: a product whose price breaks a bound today (below its margin floor or min_price, above
max_price) moves toward it as far as the change per run and the price endings allow, and its
`base` price is that nearest allowed price (the price every hold and fallback keeps). The trust
region then narrows the range to the prices the product has sold at (`price_seen_lo` ..
`price_seen_hi`, widened by `trust_widening`), never past today's price or a required move: the
demand curve is a local fit, evidence only near those prices. The ladder holds the prices inside
the range that end in an allowed ending (e.g. .99), walked in whole cents, plus the base price.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pipeline.arrays import BoolArray, FloatArray, IntArray, StrArray
from pipeline.config import PricingConfig
from pipeline.pricing.limits import Endings, Limits

# Rules are applied in this order; in a conflict the later rule is the one that emptied the range.
RULE_ORDER: dict[str, int] = {
    "min_price": 0,
    "max_price": 0,
    "max_change_up": 1,
    "max_change_down": 1,
    "margin_floor": 2,
    "trust_region": 3,
}
TRUST_REGION = "trust_region"

# Float prices are compared at a tolerance far below a cent but above float noise.
PRICE_TOL = 1e-9
# Bounds are turned into cents with this slack so that 5.0 * 1.1 = 5.500000000000001 -> 550.
CENT_SLACK = 1e-6
# "Strictly above today's price" in a ladder of whole cents.
HALF_CENT = 0.005


@dataclass(frozen=True)
class PriceRange:
    """The prices the rules allow for each product, and the rule that set each bound.

    Attributes:
        lower: lowest allowed price per product (currency per unit).
        upper: highest allowed price per product.
        lower_rule: name of the rule that set `lower` (e.g. 'margin_floor').
        upper_rule: name of the rule that set `upper` (e.g. 'max_change_up').
        base: today's price, or where it breaks a bound the nearest allowed price toward it: the
            price a product keeps when it does not move by choice.
        need: the lowest price the bounds require (min_price or the margin floor, the higher).
        need_rule: 'min_price' or 'margin_floor', the rule that sets `need`.
        floor: the margin floor, unit_cost * (1 + margin_floor).
        short_rule: where `base` still breaks a bound (below `need`, above max_price), the rule
            that stops it ('max_change_up', 'max_change_down', 'max_price', 'price_ending');
            '' elsewhere.
    """

    lower: FloatArray
    upper: FloatArray
    lower_rule: StrArray
    upper_rule: StrArray
    base: FloatArray
    need: FloatArray
    need_rule: StrArray
    floor: FloatArray
    short_rule: StrArray

    @property
    def feasible(self) -> BoolArray:
        """True where some price satisfies every rule (NaN bounds count as infeasible)."""
        return self.lower <= self.upper + PRICE_TOL * np.maximum(1.0, np.abs(self.upper))

    @property
    def conflict_rule(self) -> StrArray:
        """For an empty range, the rule that emptied it: the later of the two bound rules."""
        lower_order = np.array([RULE_ORDER.get(r, 99) for r in self.lower_rule], dtype=np.int64)
        upper_order = np.array([RULE_ORDER.get(r, 99) for r in self.upper_rule], dtype=np.int64)
        return np.where(lower_order >= upper_order, self.lower_rule, self.upper_rule)


# --- step 1: guardrails --------------------------------------------------------------------------


def _tighten(
    bound: FloatArray, rule: StrArray, limit: FloatArray, name: str, lower_side: bool
) -> tuple[FloatArray, StrArray]:
    # Strictly tighter only: on a tie the rule applied first keeps the credit.
    tighter = limit > bound if lower_side else limit < bound
    return np.where(tighter, limit, bound), np.where(tighter, name, rule).astype(object)


def _tol(price: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore"):
        return PRICE_TOL * np.maximum(1.0, np.abs(price))


def _collapse(
    lower: FloatArray, upper: FloatArray, lower_rule: StrArray, upper_rule: StrArray, limits: Limits
) -> tuple[FloatArray, FloatArray]:
    """Where a required move is longer than one run allows, the range shrinks to the run's limit.

    A price below its margin floor or min_price rises by max_change_up toward it; one above
    max_price falls by max_change_down. Only min_price above max_price is left as a conflict.
    """
    with np.errstate(invalid="ignore"):
        empty = lower > upper + _tol(upper)
        catalogue = limits.min_price <= limits.max_price + _tol(limits.max_price)
    rise = empty & catalogue & (upper_rule == "max_change_up")
    fall = empty & catalogue & ~rise & (lower_rule == "max_change_down")
    return np.where(rise, upper, lower), np.where(fall, lower, upper)


def _trust_region(
    prange: PriceRange,
    current_price: FloatArray,
    seen: tuple[FloatArray, FloatArray],
    widening: float | FloatArray,
) -> PriceRange:
    """The range narrowed to the prices seen, widened; never past today's or the base price.

    `widening` is one fraction for all products or one per product.

    A price already outside the region stays where it is, and a move a bound forces (a floor
    above the region) goes as far as that bound needs: there the bound, not the region, is named.
    """
    lower, upper, base = prange.lower, prange.upper, prange.base
    seen_lo, seen_hi = seen
    with np.errstate(invalid="ignore"):
        region_hi, region_lo = seen_hi * (1 + widening), seen_lo * (1 - widening)
        top = np.where(np.isfinite(seen_hi), np.maximum(base, region_hi), np.inf)
        bottom = np.where(np.isfinite(seen_lo), np.minimum(base, region_lo), -np.inf)
        cut = top < upper - _tol(upper)
        forced = (base > current_price + _tol(current_price)) & (region_hi < base)
        named = np.where(forced, prange.lower_rule, TRUST_REGION)
        upper_rule = np.where(cut, named, prange.upper_rule).astype(object)
        upper = np.where(cut, top, upper)
        cut = bottom > lower + _tol(lower)
        forced = (base < current_price - _tol(current_price)) & (region_lo > base)
        named = np.where(forced, prange.upper_rule, TRUST_REGION)
        lower_rule = np.where(cut, named, prange.lower_rule).astype(object)
        lower = np.where(cut, bottom, lower)
    return replace(prange, lower=lower, upper=upper, lower_rule=lower_rule, upper_rule=upper_rule)


def allowed_range(
    current_price: FloatArray,
    unit_cost: FloatArray,
    limits: Limits,
    seen: tuple[FloatArray, FloatArray] | None = None,
    widening: float | FloatArray = 0.0,
) -> PriceRange:
    """Apply the price rules in order; the most restrictive bound wins and its rule is recorded.

    Order: min_price/max_price -> max change per run from the current price -> margin floor over
    unit cost (a floor above max_price cannot be met: max_price wins) -> the trust region.
    `limits` already holds each rule's most restrictive value over the catalogue and the global,
    category and product rules (`pipeline.pricing.limits.resolve`), KVI limits included. A price
    that breaks a bound today moves toward it by at most the change per run (`base`).

    Args:
        current_price: shelf price now, shape [P].
        unit_cost: cost per unit, shape [P].
        limits: every product's rules.
        seen: the lowest and highest price each product has sold at, [P] each (NaN: unknown,
            no trust region); None for none at all.
        widening: the trust region's widening beyond `seen`, a fraction on each side.

    Returns:
        The allowed range per product; `lower > upper` where min_price is above max_price.
    """
    n = current_price.shape[0]
    lower, lower_rule = np.asarray(limits.min_price, dtype=float), np.full(n, "min_price", object)
    upper, upper_rule = np.asarray(limits.max_price, dtype=float), np.full(n, "max_price", object)
    up = current_price * (1 + limits.max_change_up)
    upper, upper_rule = _tighten(upper, upper_rule, up, "max_change_up", False)
    down = current_price * (1 - limits.max_change_down)
    lower, lower_rule = _tighten(lower, lower_rule, down, "max_change_down", True)
    floor = unit_cost * (1 + limits.margin_floor)
    capped = np.minimum(floor, limits.max_price)
    lower, lower_rule = _tighten(lower, lower_rule, capped, "margin_floor", True)
    lower, upper = _collapse(lower, upper, lower_rule, upper_rule, limits)
    with np.errstate(invalid="ignore"):
        need = np.fmax(limits.min_price, floor)
        need_rule = np.where(floor > limits.min_price, "margin_floor", "min_price").astype(object)
    bounds = _Bounds(lower, upper, lower_rule, upper_rule, limits, need)
    prange = bounds.moved(current_price, floor, need_rule)
    return prange if seen is None else _trust_region(prange, current_price, seen, widening)


@dataclass(frozen=True)
class _Bounds:
    """An allowed range before the base prices, with what the bounds require."""

    lower: FloatArray
    upper: FloatArray
    lower_rule: StrArray
    upper_rule: StrArray
    limits: Limits
    need: FloatArray

    def moved(self, current: FloatArray, floor: FloatArray, need_rule: StrArray) -> PriceRange:
        """The range with each product's base price and, where it falls short, why."""
        lower, upper, endings = self.lower, self.upper, self.limits.endings
        with np.errstate(invalid="ignore"):
            feasible = lower <= upper + _tol(upper)
            rise = feasible & (current < lower - _tol(lower))
            fall = feasible & (current > upper + _tol(upper))
        low_in, high_in = ending_extremes(lower, upper, endings)
        _, high_part = ending_extremes(current + HALF_CENT, upper, endings)
        low_part, _ = ending_extremes(lower, current - HALF_CENT, endings)
        # No ending inside the range: move to the allowed ending nearest to it, short of it.
        part_rise = rise & ~np.isfinite(low_in) & np.isfinite(high_part)
        part_fall = fall & ~np.isfinite(high_in) & np.isfinite(low_part)
        lower = np.where(part_rise, high_part, lower)
        upper = np.where(part_fall, low_part, upper)
        base = np.where(rise, np.where(np.isfinite(low_in), low_in, high_part), current)
        base = np.where(fall, np.where(np.isfinite(high_in), high_in, low_part), base)
        base = np.where(np.isfinite(base), base, current)
        return PriceRange(
            lower=lower,
            upper=upper,
            lower_rule=self.lower_rule,
            upper_rule=self.upper_rule,
            base=base,
            need=self.need,
            need_rule=need_rule,
            floor=floor,
            short_rule=self._short_rules(base, current, feasible),
        )

    def _short_rules(self, base: FloatArray, current: FloatArray, feasible: BoolArray) -> StrArray:
        """The rule that keeps each base price short of what the bounds require ('' if none)."""
        need, top = self.need, np.asarray(self.limits.max_price, dtype=float)
        lower, upper = self.lower, self.upper
        with np.errstate(invalid="ignore"):
            below = feasible & (base < need - _tol(need))
            above = feasible & (base > top + _tol(top))
            # The range reached the bound: only the endings kept the price short of it.
            stuck_up = (upper >= need - _tol(need)) | (
                (base <= current + _tol(current)) & (upper > current + HALF_CENT)
            )
            stuck_down = (lower <= top + _tol(top)) | (
                (base >= current - _tol(current)) & (lower < current - HALF_CENT)
            )
        rule = np.full(base.shape[0], "", dtype=object)
        rule = np.where(below, np.where(stuck_up, "price_ending", self.upper_rule), rule)
        rule = np.where(above, np.where(stuck_down, "price_ending", self.lower_rule), rule)
        return rule.astype(object)


# --- step 2: candidate ladders -------------------------------------------------------------------


@dataclass(frozen=True)
class _EndingGrid:
    """The ending prices inside each range, as an arithmetic walk over whole cents.

    The k-th allowed price from `base` dollars is 100 * (base + k // E) + ends[k % E] cents; the
    product's prices are steps `skip .. skip + count - 1` of that walk.
    """

    ends: IntArray
    base: IntArray
    skip: IntArray
    count: IntArray

    def cents(self, step: IntArray) -> IntArray:
        """Price in cents of the given steps (broadcast against [P, 1])."""
        walk = self.skip[:, None] + step
        n_ends = self.ends.size
        return 100 * (self.base[:, None] + walk // n_ends) + self.ends[walk % n_ends]


def _ending_grid(lower: FloatArray, upper: FloatArray, ends: IntArray) -> _EndingGrid:
    ok = np.isfinite(lower) & np.isfinite(upper)
    # Integer cents avoid float drift (4.35 * 100 = 434.99999...); prices are at least a cent.
    lo = np.where(ok, np.ceil(np.where(ok, lower, 0) * 100 - CENT_SLACK), 1).astype(np.int64)
    hi = np.where(ok, np.floor(np.where(ok, upper, 0) * 100 + CENT_SLACK), 0).astype(np.int64)
    lo = np.maximum(lo, 1)
    base = lo // 100
    skip = np.searchsorted(ends, lo - 100 * base, side="left").astype(np.int64)
    span = hi - 100 * base
    upto = (span // 100) * ends.size + np.searchsorted(ends, span % 100, side="right")
    count = np.clip(upto - skip, 0, None).astype(np.int64)
    return _EndingGrid(ends=ends, base=base, skip=skip, count=count)


def ending_prices(
    lower: FloatArray, upper: FloatArray, endings: Endings, slots: int
) -> tuple[FloatArray, IntArray]:
    """Up to `slots` ending prices per product, spread evenly, and how many the range holds."""
    ladder = np.full((lower.shape[0], slots), np.nan)
    count = np.zeros(lower.shape[0], dtype=np.int64)
    slot = np.arange(slots, dtype=np.int64)[None, :]
    for k, ends in enumerate(endings.sets):
        rows = np.flatnonzero(endings.index == k)
        grid = _ending_grid(lower[rows], upper[rows], ends)
        n = grid.count[:, None]
        # round(slot * (n - 1) / (slots - 1)) in integers; distinct whenever n > slots.
        spread = (2 * slot * (n - 1) + (slots - 1)) // (2 * (slots - 1))
        step = np.where(n > slots, spread, np.minimum(slot, np.maximum(n - 1, 0)))
        ladder[rows] = np.where(slot < n, grid.cents(step) / 100, np.nan)
        count[rows] = grid.count
    return ladder, count


def ending_extremes(
    lower: FloatArray, upper: FloatArray, endings: Endings
) -> tuple[FloatArray, FloatArray]:
    """The lowest and the highest allowed ending price inside each range (NaN where none)."""
    prices, count = ending_prices(lower, upper, endings, 2)
    return prices[:, 0], np.where(count >= 2, prices[:, 1], prices[:, 0])


def candidate_ladders(
    current_price: FloatArray,
    allowed_min: FloatArray,
    allowed_max: FloatArray,
    cfg: PricingConfig,
    endings: Endings | None = None,
) -> FloatArray:
    """Candidate prices per product: ending prices inside the range plus the current price.

    At most `cfg.n_candidates` ending prices are kept, spread evenly over the range (an even
    subsample that always keeps both extremes); the current price is always added, even if it
    breaks an ending. NaN bounds give a ladder of the current price alone.

    Args:
        current_price: shelf price now, shape [P] (the engine passes the base price: today's, or
            the nearest allowed price where today's breaks a bound).
        allowed_min: lowest allowed price, shape [P].
        allowed_max: highest allowed price, shape [P].
        cfg: pricing rules (price_endings, n_candidates).
        endings: per-product endings (`Limits.endings`); default `cfg.price_endings` for all.

    Returns:
        Prices sorted ascending per row, NaN-padded, shape [P, n_candidates + 1].
    """
    n = current_price.shape[0]
    endings = endings if endings is not None else Endings.uniform(cfg.price_endings, n)
    ladder, _ = ending_prices(allowed_min, allowed_max, endings, cfg.n_candidates)
    current = np.asarray(current_price, dtype=float)
    already = np.any(np.abs(ladder - current[:, None]) <= PRICE_TOL, axis=1)
    extra = np.where(already, np.nan, current)[:, None]
    return np.sort(np.hstack([ladder, extra]), axis=1)


def without_small_changes(
    ladder: FloatArray,
    current_price: FloatArray,
    min_change: float,
    keep: FloatArray | None = None,
) -> FloatArray:
    """The ladder without candidates closer to the current price than `min_change` (relative).

    A relabel this small is not worth making, and dropping such candidates before the choice (not
    reverting them after it) keeps coupled choices, such as a family's order, intact. The price in
    `keep` (a base price the bounds force, however close) always stays.
    """
    gap = np.abs(ladder - current_price[:, None])
    small = (gap > PRICE_TOL) & (gap < min_change * current_price[:, None])
    if keep is not None:
        small &= np.abs(ladder - keep[:, None]) > PRICE_TOL
    return np.where(small, np.nan, ladder)
