"""The scenario suite (pipeline/evaluate/suite.py, table.py) and `pricing evaluate --suite`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from pipeline import cli
from pipeline.config import ModelConfig, PricingConfig, Settings
from pipeline.evaluate import suite, table

# One small scenario end to end: 12 products, 150 days, one epoch (a few seconds on 2 cores).
SMALL = suite.SuiteOptions(scenarios=("promo_lift",), seeds=1, n_products=12, n_days=150, epochs=1)
HEADLINE = (
    "elasticity_mae", "elasticity_bias", "coverage", "wape", "naive_wape", "capture",
    "capture_priced", "loglog_capture", "loglog_capture_priced",
)  # fmt: skip


# Without the inelastic walk's price tests: in this small world all four products that move
# tonight are then tested, none is priced on its estimate, and the capture on the estimate
# (a headline figure) would have nothing to measure.
SMALL_SETTINGS = Settings(pricing=PricingConfig(inelastic_walk=False))


@pytest.fixture(scope="module")
def small_suite() -> dict:
    return suite.run_suite(SMALL, SMALL_SETTINGS)


@pytest.mark.slow
def test_one_small_scenario_runs_end_to_end_with_finite_figures(small_suite: dict) -> None:
    (run,) = small_suite["runs"]
    assert (run["scenario"], run["seed"], run["n_products"]) == ("promo_lift", 0, 12)
    figures = table.run_figures(run)
    for key in HEADLINE:
        assert isinstance(figures[key], float), key
    assert 0.0 <= figures["coverage"] <= 1.0
    assert run["elasticity"]["n_products"] >= 5
    decisions = run["decisions"]
    assert decisions["n_products"] == 12
    assert decisions["n_held"] == sum(decisions["holds"].values())
    assert 0 <= decisions["below_cost_explained"] <= decisions["below_cost"]
    assert run["endogenous"] is None  # no prices follow demand in this world
    json.loads(json.dumps(small_suite))  # the JSON the CLI writes
    scenarios = table.scenario_figures(small_suite["runs"])
    text = table.suite_table(scenarios)
    assert text.splitlines()[1].startswith("promo_lift") and "holds by reason" in text


@pytest.mark.slow
def test_the_fast_path_reports_the_night_s_elasticity_figures(small_suite: dict) -> None:
    (fast,) = suite.run_suite(replace(SMALL, forecast=False), SMALL_SETTINGS)["runs"]
    (full,) = small_suite["runs"]
    assert fast["elasticity"].keys() == full["elasticity"].keys()
    for key, value in full["elasticity"].items():
        assert fast["elasticity"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert fast["policies"]["loglog"] == full["policies"]["loglog"]
    # What it cannot give without the network.
    assert fast["forecast"] is None and fast["decisions"] is None
    assert fast["policies"]["model"] is None


def test_the_fast_path_flags_prices_that_follow_demand_as_the_night_does() -> None:
    # Prices set from latent demand in half the products: the regression's own statuses
    # (stats.evidence_statuses) name some of them confounded, and no exogenous product.
    options = suite.SuiteOptions(
        scenarios=("endogenous",), seeds=1, n_products=60, n_days=730, forecast=False
    )
    (run,) = suite.run_suite(options, Settings())["runs"]
    confounded = [p for p in run["products"] if p["status"] == "confounded"]
    assert run["endogenous"]["n_flagged"] == len(confounded) >= 3
    assert all(p["endogenous"] for p in confounded)
    never_moved = [p for p in run["products"] if not p["price_varied"]]
    assert never_moved and all(p["status"] == "not_identified" for p in never_moved)


def test_the_fast_path_needs_the_regression_elasticities() -> None:
    settings = Settings(model=ModelConfig(elasticity="joint"))
    with pytest.raises(suite.SuiteError, match=r"model\.elasticity"):
        suite.run_suite(replace(SMALL, forecast=False), settings)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scenarios": ("demo", "hotel")}, "unknown scenario.*hotel.*known: demo"),
        ({"scenarios": ()}, "unknown scenario"),
        ({"seeds": 0}, "at least 1"),
        ({"n_days": 20}, "--days"),
    ],
)
def test_suite_options_are_checked(options: dict, message: str) -> None:
    with pytest.raises(suite.SuiteError, match=message):
        suite.SuiteOptions(**options)


def _run(scenario: str, mae: float, held: dict[str, int]) -> dict:
    return {
        "scenario": scenario,
        "seconds": 1.0,
        "elasticity": {"median_abs_error": mae, "median_bias": -mae, "interval_coverage": 0.9},
        "decisions": {"holds": held, "n_held": sum(held.values())},
    }


def test_scenario_figures_are_medians_over_seeds() -> None:
    runs = [
        _run("a", 0.1, {"cold start": 2}),
        _run("a", 0.3, {"cold start": 4, "price never varied": 3}),
        _run("a", 0.2, {}),
        _run("b", 0.5, {}),
    ]
    figures = table.scenario_figures(runs)
    assert list(figures) == ["a", "b"]
    assert figures["a"]["elasticity_mae"] == pytest.approx(0.2)
    assert figures["a"]["elasticity_bias"] == pytest.approx(-0.2)
    assert figures["a"]["holds"] == {"cold start": 2, "price never varied": 0}
    assert figures["a"]["seeds"] == 3 and figures["b"]["wape"] is None
    text = table.suite_table(figures)
    assert "n/a" in text.splitlines()[2]  # b has no forecast figures
    assert "  a: cold start 2, price never varied 0" in text


def test_evaluate_suite_rejects_an_unknown_scenario_in_one_line() -> None:
    result = CliRunner().invoke(cli.app, ["evaluate", "--suite", "--scenarios", "demo,hotel"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: unknown scenario(s) hotel; known: {', '.join(suite.synth.SCENARIOS)}"
    ]


def test_evaluate_suite_fast_path_prints_the_table_and_writes_json(tmp_path) -> None:
    out = tmp_path / "suite.json"
    args = ["evaluate", "--suite", "--scenarios", "demo,launches", "--seeds", "2",
            "--products", "12", "--days", "120", "--no-forecast", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "[4/4] launches seed 1" in result.output  # the progress lines
    report = json.loads(out.read_text())
    assert [(r["scenario"], r["seed"]) for r in report["runs"]] == [
        ("demo", 0), ("demo", 1), ("launches", 0), ("launches", 1),
    ]  # fmt: skip
    assert report["scenarios"]["demo"]["seeds"] == 2
    assert report["options"]["forecast"] is False
    assert report["machine"]["cpus"] >= 1 and len(report["machine"]["load_average_end"]) == 3
