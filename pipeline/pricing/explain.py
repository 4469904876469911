"""Step 6 of the engine: one readable sentence per product, saying why its price was chosen.

A change quotes the old and new price, the expected uplift over the horizon and the rule that
set it; a keep says why the price did not move (already best, a change below min_change, no
allowed ending in the range, or a coupling rule); a hold quotes its reason, and a held product
moved toward its margin floor says both. A price left below unit cost, below its margin floor or
min_price, or above max_price names the rule that keeps it there. Each sentence ends with the
elasticity and its interval, and notes a product priced although its forecast would have held it.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from pipeline.arrays import StrArray
from pipeline.config import PricingConfig
from pipeline.pricing.choice import CHANGE, ENDING, FLOOR, HOLD, LIMITED, SMALL
from pipeline.pricing.holds import inelastic
from pipeline.pricing.ladder import CENT_SLACK, PRICE_TOL, TRUST_REGION
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


# Rules that only ever raise a price, and rules that only ever lower one.
_FLOORS = frozenset({"min_price", "max_change_down", "margin_floor"})
_CAPS = frozenset({"max_price", "max_change_up"})


def _rule_text(rule: str, price: float, row: dict[str, object], cfg: PricingConfig) -> str:
    if rule == "none":
        return "best price inside the allowed range"
    if rule == TRUST_REGION:
        seen = f"{float(row['seen_lo']):.2f}-{float(row['seen_hi']):.2f}"
        if inelastic(float(row["e"]), cfg) and not row["walks"]:
            return (
                f"held within the prices it has sold at ({seen}): demand looks inelastic, so "
                f"{cfg.objective} would rise without bound with price and the price is not raised "
                "beyond them on this evidence; a price test would identify it"
            )
        within = f"within {cfg.trust_widening:.0%} of " if cfg.trust_widening > 0 else "within "
        return (
            f"held {within}the prices it has sold at ({seen}): the demand curve is not known "
            "beyond them"
        )
    if rule in _FLOORS:
        return f"floored by {rule}"
    if rule in _CAPS:
        return f"capped by {rule}"
    # Any other rule (a coupling rule, the endings): the optimum says which way it pushed.
    return f"{'capped' if float(row['optimum']) > price else 'floored'} by {rule}"


def _outside_text(row: dict[str, object], price: float) -> str:
    """The bounds a price breaks ('below unit cost 4.20 (margin floor 4.41)'), or ''."""
    cost, floor, need, top = (float(row[k]) for k in ("cost", "floor", "need", "max_price"))
    tol = PRICE_TOL * max(1.0, abs(price))
    parts = []
    if price < cost - tol:
        floor_text = f" (margin floor {floor:.2f})" if floor > cost + tol else ""
        parts.append(f"below unit cost {cost:.2f}{floor_text}")
    elif price < floor - tol:
        parts.append(f"below the margin floor {floor:.2f} (unit cost {cost:.2f})")
    elif price < need - tol:
        parts.append(f"below min_price {need:.2f}")
    if price > top + tol:
        parts.append(f"above max_price {top:.2f}")
    return " and ".join(parts)


def _why_outside(row: dict[str, object], price: float) -> str:
    """The rule or hold that keeps a price outside its bounds."""
    short, cur = str(row["short"]), float(row["current"])
    if row["keeps"]:
        return "kept by this hold"
    if not row["feasible"]:
        low, top = float(row["min_price"]), float(row["max_price"])
        return f"min_price {low:.2f} is above max_price {top:.2f}"
    if short == "max_change_up":
        return f"max_change_up allows at most {float(row['upper']):.2f} tonight"
    if short == "max_change_down":
        return f"max_change_down allows at least {float(row['lower']):.2f} tonight"
    if short == "max_price":
        return f"max_price {float(row['max_price']):.2f} is under it"
    if short == "price_ending":
        # Between what the bound needs (or today's price, when nothing fits on the way) and
        # the furthest the other rules allow tonight.
        stuck = abs(price - cur) <= PRICE_TOL * max(1.0, abs(cur))
        if price < float(row["need"]):
            low, high = (cur if stuck else float(row["need"])), float(row["upper"])
        else:
            low, high = float(row["lower"]), (cur if stuck else float(row["max_price"]))
        return f"no {row['ends']} fits between {low:.2f} and {high:.2f}"
    # Only a margin floor below cost (a negative margin_floor) leaves a price below cost.
    return f"the margin floor {float(row['floor']):.2f} allows it"


def _bound_clause(row: dict[str, object], price: float) -> str:
    """Why a price outside its bounds stays there, e.g. 'below unit cost 4.20: max_price 3.99
    is under it'; '' for a price inside them."""
    outside = _outside_text(row, price)
    if not outside or math.isnan(price):
        return ""
    return f"{outside}: {_why_outside(row, price)}"


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
    bound = _bound_clause(row, cur)
    if outcome == ENDING:
        if bound:
            return f"keep {cur:.2f}: {bound}{tail}"
        return (
            f"keep {cur:.2f}: no {row['ends']} fits the allowed range "
            f"{_range_text(float(row['lower']), float(row['upper']))}{tail}"
        )
    bound = f"; {bound}" if bound else ""
    if outcome == SMALL:
        pct = (chosen - cur) / cur * 100
        return (
            f"keep {cur:.2f}: best allowed price {chosen:.2f} ({pct:+.1f}%) is a smaller change "
            f"than min_change {cfg.min_change * 100:.1f}%{bound}{tail}"
        )
    rule = str(row["rule"])
    if outcome == LIMITED:
        return (
            f"keep {cur:.2f}: held back by {rule} "
            f"({_coupling_text(rule, row['family'], cfg)}); best price alone "
            f"{float(row['own']):.2f}{bound}{tail}"
        )
    if bound:
        return f"keep {cur:.2f}: already the best allowed price{bound}{tail}"
    why = "" if rule == "none" else f"; {_rule_text(rule, cur, row, cfg)}"
    return f"keep {cur:.2f}: already the best allowed price{why}{tail}"


def _move_text(cur: float, price: float) -> str:
    verb = "raise" if price > cur else "lower"
    return f"{verb} {cur:.2f} -> {price:.2f} ({(price - cur) / cur * 100:+.1f}%)"


def _change_sentence(row: dict[str, object], cfg: PricingConfig, tail: str) -> str:
    price, rule = float(row["price"]), str(row["rule"])
    bound = _bound_clause(row, price)
    if bound:
        why = bound
    elif row["limit"]:
        why = (
            f"set by {rule} ({_coupling_text(rule, row['family'], cfg)}; best price alone "
            f"{float(row['own']):.2f})"
        )
    else:
        why = _rule_text(rule, price, row, cfg)
    return (
        f"{_move_text(float(row['current']), price)}: expected {cfg.objective} "
        f"{float(row['uplift']):+.2f} over the horizon; {why}{tail}"
    )


def _floor_sentence(row: dict[str, object]) -> str:
    """A held product moved toward the bound its price breaks, and why it is otherwise held."""
    cur, price = float(row["current"]), float(row["price"])
    if price < cur:
        name, today = "max_price", f"above its max_price {float(row['max_price']):.2f}"
    elif float(row["floor"]) >= float(row["need"]):
        floor, cost = float(row["floor"]), float(row["cost"])
        name, today = "margin floor", f"below its margin floor {floor:.2f} (unit cost {cost:.2f})"
    else:
        name, today = "min_price", f"below its min_price {float(row['need']):.2f}"
    bound = _bound_clause(row, price)
    move = _move_text(cur, price)
    what = f"{move} toward its {name}; {bound}" if bound else f"{move}: {today} today"
    return f"{what}; otherwise held: {row['hold']}"


def _sentence(row: dict[str, object], cfg: PricingConfig) -> str:
    if row["outcome"] == HOLD:
        cur = float(row["current"])
        bound = _bound_clause(row, cur)
        return f"hold {cur:.2f}: {row['hold']}" + (f"; {bound}" if bound else "")
    if row["outcome"] == FLOOR:
        return _floor_sentence(row)
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
            'optimum', 'lower', 'upper', 'e', 'lo', 'hi', 'cost', 'floor' (the margin floor),
            'need' (the lowest price the bounds require), 'min_price', 'max_price', 'feasible'
            (the rules leave some price), 'short' (the rule that keeps the base price outside
            its bounds, or ''), 'keeps' (a hold that keeps today's price), 'seen_lo', 'seen_hi'
            (the prices it has sold at), 'walks' (an inelastic estimate its price test found,
            free to walk the widened trust region).
        cfg: pricing rules (min_change, the coupling limits and the objective's name).

    Returns:
        The sentences, in row order.
    """
    names = list(columns)
    values = [np.asarray(columns[name]).tolist() for name in names]
    return [_sentence(dict(zip(names, row, strict=True)), cfg) for row in zip(*values, strict=True)]
