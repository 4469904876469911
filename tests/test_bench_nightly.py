"""`pricing bench nightly`: how stage times are summarised as growth with the number of products."""

from __future__ import annotations

import pytest

from pipeline.bench.nightly import growth, growth_exponent, table


def _night(total: float, train: float) -> dict:
    stages = {"read": 0.5, "train": train, "forecast": 1.0, "optimise": 0.1, "write": 0.4}
    return {"total_s": total, "stages_s": stages, "n_trained": 0}


RESULTS = [
    {"products": 100, "retrain": _night(30.0, 25.0), "current": _night(5.0, 0.0)},
    {"products": 1000, "retrain": _night(300.0, 250.0), "current": _night(8.0, 0.0)},
]


def test_growth_exponent_is_the_slope_in_logs():
    assert growth_exponent([100, 1000], [2.0, 20.0]) == pytest.approx(1.0)
    assert growth_exponent([100, 400], [3.0, 6.0]) == pytest.approx(0.5)
    assert growth_exponent([100], [2.0]) is None
    assert growth_exponent([100, 1000], [0.0, 0.0]) is None


def test_growth_reports_each_stage_per_product_and_its_exponent():
    summary = growth(RESULTS)
    assert summary["retrain"]["train"] == {"exponent": 1.0, "ms_per_product": [250.0, 250.0]}
    assert summary["current"]["read"]["exponent"] == 0.0
    assert summary["current"]["train"]["exponent"] is None  # nothing trained, nothing to fit
    assert summary["current"]["total"]["ms_per_product"] == [50.0, 8.0]


def test_table_has_a_line_per_size_and_night_and_the_exponents():
    lines = table({"sizes": RESULTS, "growth": growth(RESULTS)}).splitlines()
    assert lines[0].split() == [
        "products", "night", "read", "train", "forecast", "optimise", "write", "total"
    ]  # fmt: skip
    assert lines[1].split()[:4] == ["100", "retrain", "0.50", "25.00"]
    assert lines[-2].split()[:4] == ["exponent", "retrain", "0.0", "1.0"]
    assert len(lines) == 1 + 4 + 2
