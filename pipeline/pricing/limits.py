"""Every product's pricing rules resolved: the most restrictive of catalogue, global, category
and product rules, as arrays the ladder and the holds read (`resolve`).

The rules themselves are parsed and validated in `pipeline.rules` (rules files) and
`pipeline.config` (the global `[pricing]` settings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.arrays import BoolArray, FloatArray, IntArray, StrArray
from pipeline.config import PricingConfig
from pipeline.rules import Rules, RuleSet

ALL_CENTS: IntArray = np.arange(100, dtype=np.int64)


@dataclass(frozen=True)
class Endings:
    """Allowed cent endings per product, as indices into a few distinct sets.

    Attributes:
        sets: sorted unique cents (0..99) of each distinct set.
        index: [P] the set of each product; -1 where the rules leave no ending allowed.
    """

    sets: tuple[IntArray, ...]
    index: IntArray

    @classmethod
    def uniform(cls, endings: Sequence[float], n: int) -> Endings:
        """The same endings for n products (no endings: every cent)."""
        return cls(sets=(ending_cents(endings),), index=np.zeros(n, dtype=np.int64))


def ending_cents(endings: Sequence[float]) -> IntArray:
    """Allowed cent endings as sorted unique integers (0..99); no endings means every cent."""
    if len(endings) == 0:
        return ALL_CENTS
    return np.unique(np.rint(np.asarray(endings, dtype=float) * 100).astype(np.int64))


@dataclass(frozen=True)
class Limits:
    """Every product's rules after combining scopes (the most restrictive value of each).

    Attributes:
        min_price: lowest price the catalogue and the rules allow, [P].
        max_price: highest price the catalogue and the rules allow, [P].
        max_change_up: largest increase per run as a fraction (KVI limit applied), [P].
        max_change_down: largest decrease per run as a fraction (KVI limit applied), [P].
        margin_floor: price >= unit_cost * (1 + margin_floor), [P].
        endings: allowed price endings per product.
        hold: [P] the reason a rule holds the product (None where none does).
    """

    min_price: FloatArray
    max_price: FloatArray
    max_change_up: FloatArray
    max_change_down: FloatArray
    margin_floor: FloatArray
    endings: Endings
    hold: StrArray


def _positions(keys: Sequence[str], scoped: tuple[tuple[str, Rules], ...]) -> IntArray:
    where = {name: i for i, (name, _) in enumerate(scoped)}
    return np.fromiter((where.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))


def _gather(scoped: tuple[tuple[str, Rules], ...], key: str, index: IntArray) -> FloatArray:
    # Position -1 (no rules for this product) reads the NaN appended last.
    values = [getattr(rules, key) for _, rules in scoped]
    table = np.array([np.nan if v is None else v for v in values] + [np.nan], dtype=float)
    return table[index]


class _Scopes:
    """The category and product rule rows of each product, for per-key reductions."""

    def __init__(self, rules: RuleSet, product_id: Sequence[str], category: Sequence[str]):
        self.rules = rules
        self.category = _positions(category, rules.categories)
        self.product = _positions(product_id, rules.products)

    def strictest(self, key: str, first: npt.ArrayLike, tighter: np.ufunc) -> FloatArray:
        """`first` tightened by the category's and the product's value of `key` (NaN: unset)."""
        cat = _gather(self.rules.categories, key, self.category)
        own = _gather(self.rules.products, key, self.product)
        return tighter(tighter(np.asarray(first, dtype=float), cat), own)

    def hold(self) -> StrArray:
        """A product's own hold reason, else its category's, else None."""
        texts = [
            [
                None if rules.hold is None else f"held by the rules of {scope} {name}: {rules.hold}"
                for name, rules in scoped
            ]
            + [None]
            for scope, scoped in (
                ("product", self.rules.products),
                ("category", self.rules.categories),
            )
        ]
        own = np.array(texts[0], dtype=object)[self.product]
        cat = np.array(texts[1], dtype=object)[self.category]
        return np.where(own != None, own, cat).astype(object)  # noqa: E711 (object array)

    def endings(self, default: Sequence[float]) -> Endings:
        """The intersection of the global, category and product endings of every product."""
        pairs = np.stack([self.category, self.product], axis=1)
        combos, which = np.unique(pairs, axis=0, return_inverse=True)
        sets: list[IntArray] = []
        index = np.empty(len(combos), dtype=np.int64)
        for k, (cat, own) in enumerate(combos):
            allowed = ending_cents(default)
            for scoped, pos in ((self.rules.categories, cat), (self.rules.products, own)):
                chosen = scoped[pos][1].price_endings if pos >= 0 else None
                if chosen is not None:
                    allowed = np.intersect1d(allowed, ending_cents(chosen))
            index[k] = _set_index(sets, allowed)
        return Endings(sets=tuple(sets), index=index[which.reshape(-1)])


def _set_index(sets: list[IntArray], allowed: IntArray) -> int:
    if allowed.size == 0:
        return -1
    for i, known in enumerate(sets):
        if np.array_equal(known, allowed):
            return i
    sets.append(allowed)
    return len(sets) - 1


def resolve(
    product_id: Sequence[str],
    category: Sequence[str],
    is_kvi: BoolArray,
    min_price: FloatArray,
    max_price: FloatArray,
    cfg: PricingConfig,
) -> Limits:
    """Combine the catalogue, global, category and product rules of every product.

    Args:
        product_id: the products, [P].
        category: each product's category, [P].
        is_kvi: key-value item flags, [P].
        min_price: catalogue lower limit, [P].
        max_price: catalogue upper limit, [P].
        cfg: global rules and `cfg.rules` (category and product rules).

    Returns:
        The most restrictive value of every rule per product.
    """
    scopes = _Scopes(cfg.rules, product_id, category)
    kvi = scopes.strictest("kvi_max_change", np.full(len(product_id), cfg.kvi_max_change), np.fmin)

    def change(key: str, default: float) -> FloatArray:
        limit = scopes.strictest(key, np.full(len(product_id), default), np.fmin)
        return np.where(is_kvi, np.fmin(limit, kvi), limit)

    return Limits(
        min_price=scopes.strictest("min_price", min_price, np.fmax),
        max_price=scopes.strictest("max_price", max_price, np.fmin),
        max_change_up=change("max_change_up", cfg.max_change_up),
        max_change_down=change("max_change_down", cfg.max_change_down),
        margin_floor=scopes.strictest(
            "margin_floor", np.full(len(product_id), cfg.margin_floor), np.fmax
        ),
        endings=scopes.endings(cfg.price_endings),
        hold=scopes.hold(),
    )
