"""Step 6 of the engine: one readable sentence per product, saying why its price was chosen.

A change quotes the old and new price, the expected uplift over the horizon and the rule that
set it; a keep says why the price did not move (already best, a change below min_change, no
allowed ending in the range, or a coupling rule); a hold quotes its reason. Each sentence ends
with the elasticity and its interval, and notes a product priced although its forecast would
have held it.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from pipeline.arrays import StrArray
from pipeline.config import PricingConfig
from pipeline.pricing.choice import CHANGE, ENDING, HOLD, LIMITED, SMALL
from pipeline.pricing.ladder import CENT_SLACK
from pipeline.pricing.limits import Endings
from pipeline.pricing.portfolio import FAMILY_ORDER, MAX_CHANGES


def _elasticity_text(e: float, lo: float, hi: float) -> str:
    # math, not numpy: this runs once per product on Python floats.
    if not math.isfinite(e):
        return ""
    text = f"elasticity {e:.2f}"
    if math.isfinite(lo) and math.isfinite(hi):
        text += f", interval {lo:.2f} to {hi:.2f}"
    return f" ({text})"


def _rule_text(rule: str, price: float, optimum: float) -> str:
    if rule == "none":
        return "best price inside the allowed range"
    # The optimum says which side the rule pushed from: above the price means a cap.
    return f"{'capped' if optimum > price else 'floored'} by {rule}"


def _range_text(lower: float, upper: float) -> str:
    # Quote the first and last whole cent inside the range, not roundings that may fall outside.
    first = np.ceil(lower * 100 - CENT_SLACK) / 100
    last = np.floor(upper * 100 + CENT_SLACK) / 100
    return f"{first:.2f}-{last:.2f}"


def endings_text(endings: Endings) -> StrArray:
    """Per product, the prices its endings allow, e.g. 'price ending in .49/.99'."""
    texts = [
        "whole-cent price"
        if ends.size == 100
        else "price ending in " + "/".join(f".{c:02d}" for c in ends)
        for ends in endings.sets
    ]
    return np.array([*texts, "price ending allowed by every rule"], dtype=object)[endings.index]


def _coupling_text(rule: str, family: object, cfg: PricingConfig) -> str:
    if rule == FAMILY_ORDER:
        per_unit = " nor more per unit" if cfg.family_unit_price else ""
        return f"in family {family} a larger size never costs less than a smaller one{per_unit}"
    if rule == MAX_CHANGES:
        return f"at most {cfg.max_changes} price changes per run, taken by larger gains"
    return f"total expected revenue stays at or above {cfg.revenue_floor:.0%} of today's"


def _keep_sentence(row: dict[str, object], cfg: PricingConfig, tail: str) -> str:
    cur, chosen, outcome = float(row["current"]), float(row["chosen"]), row["outcome"]
    if outcome == ENDING:
        return (
            f"keep {cur:.2f}: no {row['ends']} fits the allowed range "
            f"{_range_text(float(row['lower']), float(row['upper']))}{tail}"
        )
    if outcome == SMALL:
        pct = (chosen - cur) / cur * 100
        return (
            f"keep {cur:.2f}: best allowed price {chosen:.2f} ({pct:+.1f}%) is a smaller change "
            f"than min_change {cfg.min_change * 100:.1f}%{tail}"
        )
    rule = str(row["rule"])
    if outcome == LIMITED:
        return (
            f"keep {cur:.2f}: held back by {rule} "
            f"({_coupling_text(rule, row['family'], cfg)}); best price alone "
            f"{float(row['own']):.2f}{tail}"
        )
    bound = "" if rule == "none" else f"; {_rule_text(rule, cur, float(row['optimum']))}"
    return f"keep {cur:.2f}: already the best allowed price{bound}{tail}"


def _change_sentence(row: dict[str, object], cfg: PricingConfig, tail: str) -> str:
    cur, price, rule = float(row["current"]), float(row["price"]), str(row["rule"])
    if row["limit"]:
        why = (
            f"set by {rule} ({_coupling_text(rule, row['family'], cfg)}; best price alone "
            f"{float(row['own']):.2f})"
        )
    else:
        why = _rule_text(rule, price, float(row["optimum"]))
    verb = "raise" if price > cur else "lower"
    return (
        f"{verb} {cur:.2f} -> {price:.2f} ({(price - cur) / cur * 100:+.1f}%): expected "
        f"{cfg.objective} {float(row['uplift']):+.2f} over the horizon; {why}{tail}"
    )


def _sentence(row: dict[str, object], cfg: PricingConfig) -> str:
    if row["outcome"] == HOLD:
        return f"hold {float(row['current']):.2f}: {row['hold']}"
    tail = _elasticity_text(float(row["e"]), float(row["lo"]), float(row["hi"]))
    if row["outcome"] == CHANGE:
        text = _change_sentence(row, cfg, tail)
    else:
        text = _keep_sentence(row, cfg, tail)
    note = row["note"]
    return text if not note else f"{text}; priced although {note} (not in hold_statuses)"


def explain(columns: dict[str, npt.ArrayLike], cfg: PricingConfig) -> list[str]:
    """One readable sentence per product.

    Args:
        columns: equal-length arrays 'outcome', 'hold', 'current', 'price', 'chosen' (best
            allowed price alone, before min_change), 'own' (best price alone), 'uplift'
            (objective uplift), 'rule', 'limit' (the coupling rule, or ''), 'family', 'note'
            (why a released product would have been held), 'ends' (its endings, in words),
            'optimum', 'lower', 'upper', 'e', 'lo', 'hi'.
        cfg: pricing rules (min_change, the coupling limits and the objective's name).

    Returns:
        The sentences, in row order.
    """
    names = list(columns)
    values = [np.asarray(columns[name]).tolist() for name in names]
    return [_sentence(dict(zip(names, row, strict=True)), cfg) for row in zip(*values, strict=True)]
