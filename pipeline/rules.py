"""Pricing rules by scope: global (the `[pricing]` settings), per category and per product.

Category and product rules live in a TOML rules file named by `pricing.rules_file`:

    [category.beverages]
    max_change_up = 0.05            # fraction of the current price per run
    price_endings = [0.49, 0.99]

    [product.P00012]
    min_price = 1.99                # currency per unit
    max_price = 3.49
    hold = "supplier contract until March"   # keep the price, with this reason

    [product."SKU.7"]               # ids with dots or spaces are quoted
    kvi_max_change = 0.02

Every rule that applies to a product applies at once (its catalogue row, the global settings, its
category's rules and its own); where they disagree the most restrictive wins: the highest floor,
the lowest cap, the smallest change limit, only the price endings every scope allows. So a scope
can tighten but never loosen another: to give one category more room, loosen the global value and
tighten the others. The coupling rules (family ordering, the change budget, the revenue floor)
are global only and live in `[pricing]`.

A malformed rules file raises `RulesError` with one line naming the file and the key.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import UserError


class RulesError(UserError, ValueError):
    """A malformed rules file; the message is one line naming the file and the key."""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole_cents(value: float) -> bool:
    return abs(value * 100 - round(value * 100)) < 1e-6


def _endings_ok(value: object) -> bool:
    if not isinstance(value, list | tuple):
        return False
    return all(_is_number(e) and 0 <= e < 1 and _whole_cents(float(e)) for e in value)


_FRACTION = "must be a fraction in [0, 1)"
_PRICE = "must be a positive price"
# key -> (check, message when the check fails); shared by PricingConfig and rules files.
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "min_price": (lambda v: _is_number(v) and 0 < v < math.inf, _PRICE),
    "max_price": (lambda v: _is_number(v) and 0 < v < math.inf, _PRICE),
    "max_change_up": (lambda v: _is_number(v) and 0 <= v < 1, _FRACTION),
    "max_change_down": (lambda v: _is_number(v) and 0 <= v < 1, _FRACTION),
    "kvi_max_change": (lambda v: _is_number(v) and 0 <= v < 1, _FRACTION),
    "margin_floor": (lambda v: _is_number(v) and -1 < v < 10, "must be in (-1, 10)"),
    "price_endings": (
        _endings_ok,
        "must be a list of whole-cent fractions in [0, 1), e.g. [0.49, 0.99]",
    ),
    "hold": (lambda v: isinstance(v, str) and v.strip() != "", "must be a non-empty reason"),
}
SCOPED_RULES: tuple[str, ...] = tuple(_CHECKS)


def rule_problem(key: str, value: object) -> str | None:
    """What is wrong with a rule's value, or None when it is valid.

    Args:
        key: a rule name from `SCOPED_RULES`.
        value: its value as written (TOML types: int, float, str, list).

    Returns:
        A message fragment such as "must be a fraction in [0, 1)", or None.
    """
    check, message = _CHECKS[key]
    return None if check(value) else f"{message}, got {value!r}"


def _normalised(key: str, value: Any) -> Any:
    if key == "price_endings":
        return tuple(float(e) for e in value)
    if key == "hold":
        return value.strip()
    return float(value)


@dataclass(frozen=True)
class Rules:
    """The rules one scope sets; None means the scope leaves the rule to the others."""

    min_price: float | None = None
    max_price: float | None = None
    max_change_up: float | None = None
    max_change_down: float | None = None
    kvi_max_change: float | None = None
    margin_floor: float | None = None
    price_endings: tuple[float, ...] | None = None
    hold: str | None = None


@dataclass(frozen=True)
class RuleSet:
    """Category and product rules, as (name, Rules) pairs in file order (hashable, unlike dicts)."""

    categories: tuple[tuple[str, Rules], ...] = ()
    products: tuple[tuple[str, Rules], ...] = ()


# --- reading a rules file -----------------------------------------------------------------------


def load_rules(path: str | Path) -> RuleSet:
    """Read and validate a TOML rules file.

    Raises:
        RulesError: the file is missing, is not TOML, or a section, key or value is invalid.
    """
    path = Path(path)
    raw = read_toml(path, "rules file", "check pricing.rules_file", RulesError)
    return parse_rules(raw, str(path))


def read_toml(path: Path, what: str, hint: str, error: type[ValueError]) -> dict[str, Any]:
    """Parse a TOML settings file; a missing or malformed one raises `error` with one line."""
    if not path.is_file():
        raise error(f"{what} {path} not found: {hint}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {path} is not valid TOML: {exc}") from None


def parse_rules(raw: Mapping[str, Any], source: str = "rules") -> RuleSet:
    """Validate parsed TOML (`{"category": {...}, "product": {...}}`) into a RuleSet.

    Args:
        raw: the parsed document.
        source: the file name used in error messages.

    Raises:
        RulesError: an unknown section or rule, or an invalid value; the message names the key.
    """
    for section in raw:
        if section not in ("category", "product"):
            raise RulesError(
                f"rules file {source}: key '{section}': unknown section; use [category.NAME] or "
                "[product.ID] (global rules go in the [pricing] settings)"
            )
    return RuleSet(
        categories=_scope(raw.get("category", {}), "category", source),
        products=_scope(raw.get("product", {}), "product", source),
    )


def _scope(table: Any, scope: str, source: str) -> tuple[tuple[str, Rules], ...]:
    if not isinstance(table, dict):
        raise RulesError(f"rules file {source}: key '{scope}': must be tables like [{scope}.NAME]")
    scoped = []
    for name, values in table.items():
        if not isinstance(values, dict):
            raise RulesError(f"rules file {source}: key '{scope}.{name}': must be a table of rules")
        scoped.append((str(name), _rules(values, f"{scope}.{name}", source)))
    return tuple(scoped)


def _rules(values: dict[str, Any], where: str, source: str) -> Rules:
    for key, value in values.items():
        if key not in _CHECKS:
            raise RulesError(
                f"rules file {source}: key '{where}.{key}': unknown rule; known rules: "
                f"{', '.join(SCOPED_RULES)}"
            )
        problem = rule_problem(key, value)
        if problem is not None:
            raise RulesError(f"rules file {source}: key '{where}.{key}': {problem}")
    rules = Rules(**{key: _normalised(key, value) for key, value in values.items()})
    low, high = rules.min_price, rules.max_price
    if low is not None and high is not None and low > high:
        raise RulesError(
            f"rules file {source}: key '{where}.min_price': {low} is above max_price {high}"
        )
    return rules
