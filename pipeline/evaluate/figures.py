"""Small helpers for reported figures: finite floats or None, medians, percentages."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def finite(value: object) -> float | None:
    """`value` as a float, or None when it is missing or not finite (JSON has no NaN)."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if np.isfinite(number) else None


def rounded(value: object, digits: int = 3) -> float | None:
    """`value` rounded for a JSON figure, or None when it is missing or not finite."""
    number = finite(value)
    return None if number is None else round(number, digits)


def median(values: Iterable[object]) -> float | None:
    """Median of the finite values, or None when there are none."""
    numbers = [v for v in (finite(x) for x in values) if v is not None]
    return float(np.median(numbers)) if numbers else None


def percent(value: float | None) -> str:
    """0.953 -> '95.3%'; None -> 'n/a'."""
    return "n/a" if value is None else f"{value:.1%}"
