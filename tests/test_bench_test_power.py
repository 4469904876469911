"""`pricing bench test-power`: what one price test teaches, measured on a world's truth."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.bench import floors, test_power
from pipeline.cli import app
from pipeline.config import PricingConfig


@pytest.fixture(scope="module")
def result() -> dict:
    return test_power.run("demo", 60, [0], PricingConfig())


def _row(result: dict, population: str, design: str, band: str = "all") -> dict:
    [row] = [
        r
        for r in result["results"]
        if (r["population"], r["design"], r["units_a_day"]) == (population, design, band)
    ]
    return row


def test_designs_follow_the_configured_test():
    cfg = dataclasses.replace(PricingConfig(), explore_step=0.04, explore_phases=3)
    offsets = {d.name: d.offsets for d in test_power.designs(cfg)}
    assert offsets == {
        "configured": (0.04, 0.0, 0.04),
        "double_step": (0.08, 0.0, 0.08),
        "symmetric": (0.04, -0.04, 0.04),
        "none": (0.0, 0.0, 0.0),
    }


def test_a_bigger_step_teaches_more_and_no_test_teaches_nothing(result):
    configured = _row(result, "never_moved", "configured")
    assert configured["products"] > 0
    # Twice the price spread roughly halves the standard error of the product's own estimate.
    assert _row(result, "never_moved", "double_step")["median_se"] < 0.8 * configured["median_se"]
    assert _row(result, "never_moved", "symmetric")["median_se"] < configured["median_se"]
    # Without a test a never-moved price identifies nothing, and there is nothing to scale.
    none = _row(result, "never_moved", "none")
    assert none["identified"] == 0.0
    assert none["days_needed"] is None
    assert none["median_se"] > 5 * configured["median_se"]
    # Days needed are the test's own days scaled by (width / explore_width) ** 2.
    width = 2 * 1.6448536269514722 * configured["median_se"]
    assert configured["days_needed"] == pytest.approx(28 * width**2, rel=0.5)
    # Products with a moved history are counted too, with their history's evidence.
    assert _row(result, "all", "none")["products"] > configured["products"]
    assert _row(result, "all", "none")["days_needed"] is None


def test_the_engines_prediction_sits_near_what_the_test_reached(result):
    """`reach.reach_width`, from the true units and dispersion, against the measured error."""
    for design in ("configured", "double_step"):
        row = _row(result, "never_moved", design)
        assert 0.75 < row["predicted_se"] / row["median_se"] < 1.15, row
    # Only for designs that alternate a step and today's price, and tests that are all the
    # product's evidence.
    assert _row(result, "never_moved", "symmetric")["predicted_se"] is None
    assert _row(result, "never_moved", "none")["predicted_se"] is None
    assert _row(result, "all", "configured")["predicted_se"] is None


def test_table_has_a_line_per_row(result):
    lines = test_power.table(result).splitlines()
    assert lines[1].split()[:3] == ["population", "design", "units/day"]
    assert len(lines) == 2 + len(result["results"]) + 2 + 3
    assert lines[-5].startswith("history alone, regression: median standard error")
    assert lines[-4].startswith("history alone, oracle: median standard error")
    assert lines[-3].startswith("engine told the truth, trust region: capture ")


def test_cli_writes_the_json(tmp_path):
    out = tmp_path / "power.json"
    run = CliRunner().invoke(
        app, ["bench", "test-power", "--products", "30", "--seeds", "1", "--out", str(out)]
    )
    assert run.exit_code == 0, run.output
    written = json.loads(out.read_text())
    assert written["benchmark"] == "test-power"
    assert written["seeds"] == [1]
    assert {r["design"] for r in written["results"]} == {
        "configured", "double_step", "symmetric", "none"
    }  # fmt: skip


def test_history_bound_combines_own_errors_with_the_truths_spread(result):
    bound = result["history_bound"]
    # The bound cannot exceed what the prior alone would give, nor what the own errors alone
    # would (each a median absolute error of a normal: 0.6745 sd).
    assert 0 < bound["mae_bound"] <= 0.6745 * bound["prior_sd"] * 1.1
    assert bound["mae_bound"] <= 0.6745 * bound["median_se"] * 1.1
    assert 0.5 < bound["prior_sd"] < 1.2  # demo truths: uniform on -3.5..-0.5 (sd 0.87)


def test_the_posterior_median_uses_the_law_the_truths_were_drawn_from():
    rng = np.random.default_rng(1)
    truth = rng.uniform(-3.5, -0.5, 400)
    nan = np.full(400, np.nan)

    def median_error(se: float, centre=nan, spread=nan) -> float:
        errors = floors.posterior_median_errors(
            truth, np.full(400, se), (-3.5, -0.5), centre, spread, 50, rng
        )
        return float(np.median(errors, axis=1).mean())

    assert median_error(0.01) < 0.01
    # Told the prior's shape (uniform), the best estimate beats the normal-prior posterior mean
    # of the same spread (0.6745 posterior sd) where its own error is large.
    post = 1 / np.sqrt(1 / 0.45**2 + 1 / (3 / np.sqrt(12)) ** 2)
    assert median_error(0.45) < 0.6745 * post
    # Without information it is the prior's median; a tight cluster around the truth beats it.
    assert median_error(np.inf) == pytest.approx(np.median(np.abs(truth + 2.0)), rel=0.01)
    assert median_error(np.inf, truth + 0.05, np.full(400, 0.1)) < 0.12


def test_the_bound_is_the_median_over_products():
    """Three products of five known almost exactly, two not at all: the median product's error
    is small, whatever the unknown two's."""
    n = 500
    rows = pl.DataFrame(
        {
            "seed": np.repeat([0, 1], n // 2),
            "category": np.tile(["a", "b"], n // 2),
            "truth": np.random.default_rng(0).uniform(-3.5, -0.5, n),
            "se": np.where(np.arange(n) % 5 < 3, 0.01, np.inf),
            "prior_low": -3.5, "prior_high": -0.5, "prior_centre": np.nan, "prior_sd": np.nan,
        }
    )  # fmt: skip
    bound = floors.history_bound(rows, "se")
    assert bound["products"] == n
    assert bound["mae_bound"] < 0.05


def test_the_oracle_bound_is_a_floor_under_the_regressions(result):
    """An estimator told the whole demand but the level, elasticity and lift does at least as
    well as the regression, which must estimate the season, trend and noise too."""
    regression, oracle = result["history_bound"], result["oracle_bound"]
    assert oracle["products"] == regression["products"] > 0
    assert 0 < oracle["median_se"] <= regression["median_se"] * 1.05
    assert 0 < oracle["mae_bound"] <= regression["mae_bound"] * 1.05


def test_capture_reach_prices_the_truth_and_the_floor(result):
    reach = result["capture_reach"]
    assert set(reach) == {"cautious", "floor", "floor_no_trust"}
    # The first arm is the cautious oracle itself, and no arm beats the free oracle's gain by
    # much on the products it priced (the change budget can make a subset gain a little more).
    assert reach["cautious"]["capture_cautious"] == pytest.approx(1.0)
    for arm in reach.values():
        assert set(arm) == set(floors.CAPTURES)
        assert 0.0 < arm["capture_priced"] <= 1.05
    # The trust region costs the truth-told engine something against the free oracle.
    assert reach["cautious"]["capture"] < 1.0


@pytest.mark.parametrize("spread", [0.0, 0.15])
def test_the_elasticity_information_is_the_profiled_inverse(spread):
    """The Schur complement equals the elasticity's entry of the inverse information matrix."""
    rng = np.random.default_rng(3)
    weight = rng.uniform(0.0, 5.0, (4, 50))
    x = rng.normal(0.0, 0.1, (4, 50))
    promo = (rng.uniform(size=(4, 50)) < 0.2).astype(np.float64)
    se = floors.elasticity_se(weight, x, promo, np.full(4, spread))
    for i in range(4):
        columns = [np.ones(50), x[i]] + ([promo[i]] if spread > 0 else [])
        z = np.stack(columns, axis=1)
        info = z.T @ (weight[i][:, None] * z)
        if spread > 0:
            info[2, 2] += 1 / spread**2
        assert se[i] == pytest.approx(np.sqrt(np.linalg.inv(info)[1, 1]), rel=1e-9)
    # A lift known (no spread) is worth more than one to estimate; a price that never moved
    # identifies nothing.
    known = floors.elasticity_se(weight, x, promo, np.zeros(4))
    assert (known <= se + 1e-12).all()
    flat = floors.elasticity_se(weight, np.zeros((4, 50)), promo, np.full(4, spread))
    assert np.isinf(flat).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--seeds", "one"], "--seeds takes comma-separated integers"),
        (["--seeds", ","], "--seeds: give at least one seed"),
    ],
)
def test_cli_says_what_is_wrong_with_its_input(args, message):
    run = CliRunner().invoke(app, ["bench", "test-power", "--products", "10", *args])
    assert run.exit_code == 1
    assert message in run.output
    assert "internal error" not in run.output
