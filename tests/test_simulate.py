"""The closed loop (pipeline/simulate) on a CI-sized world: 20 products, 120 days, 3 nights,
and its report (`pricing report --simulation`)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import ModelConfig, Settings
from pipeline.features import price_seen_range
from pipeline.report import ReportError
from pipeline.simulate import SimConfig, night_line, simulate, summarise, table_header
from pipeline.simulate.loop import _Arm, _policy_night, _regular_shelf, world_of
from pipeline.simulate.report import read_result, write_simulation_report


@pytest.fixture(scope="module")
def three_nights(tmp_path_factory) -> dict:
    cfg = SimConfig(nights=3, products=20, days=120, seed=0)
    settings = Settings(model=ModelConfig(epochs=1, min_epochs=1))
    return simulate(cfg, settings, workdir=tmp_path_factory.mktemp("sim"))


@pytest.mark.slow
def test_three_nights_run_every_policy(three_nights) -> None:
    result = three_nights
    assert [r["night"] for r in result["nights"]] == [1, 2, 3]
    first = result["nights"][0]
    assert set(first) >= {"engine", "engine_off", "loglog", "oracle", "cautious", "keep"}
    assert first["keep"]["price_changes"] == 0
    assert first["engine"]["testing"] > 0  # unidentified products start testing on night 1
    assert first["engine_off"].get("testing", 0) == 0
    summary = summarise(result)
    assert summary["oracle_uplift"] > 0
    assert {"uplift", "capture", "capture_last_7"} <= set(summary["engine"])
    # Each engine is measured against the cautious oracle too: its uplift over that one's.
    for arm in ("engine", "engine_off"):
        assert summary[arm]["capture_cautious"] == pytest.approx(
            summary[arm]["uplift"] / summary["cautious"]["uplift"]
        )
    # The elastic products are a part of the whole: their uplift is reported on its own too.
    assert 0 < summary["elastic"]["oracle_uplift"] <= summary["oracle_uplift"] + 1e-6
    for record in result["nights"]:
        for arm in ("engine", "oracle", "keep"):
            assert record[arm]["expected_profit_elastic"] <= record[arm]["expected_profit"] + 1e-6
    # How many shelf prices sit at their max_price (where walks end); the kept shelf starts below.
    at_cap = [result["nights"][-1][arm]["at_max_price"] for arm in ("engine", "oracle", "keep")]
    assert at_cap[2] == 0 and all(0 <= n <= 20 for n in at_cap)
    assert summary["engine"]["at_max_price_last"] == at_cap[0]


@pytest.mark.slow
def test_pricing_report_draws_a_simulation_against_its_oracle(three_nights, tmp_path) -> None:
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(three_nights, default=str))
    run = CliRunner().invoke(app, ["report", "--simulation", str(path)])
    assert run.exit_code == 0, run.output
    page = (tmp_path / "sim.html").read_text()
    assert page.count("<img") == 1 and "data:image/png;base64," in page
    assert "capture on elastic products" in page and "engine_off" in page
    assert "of the cautious oracle" in page
    assert page.count("<tr>") == 1 + 4 + 1 + 3  # capture: header + 4 policies; nights: 1 + 3


def test_a_simulation_report_refuses_files_that_are_not_one(tmp_path) -> None:
    with pytest.raises(ReportError, match="no such file"):
        read_result(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ReportError, match="not a JSON file"):
        write_simulation_report(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"nights": []}))
    with pytest.raises(ReportError, match="not a simulation"):
        read_result(tmp_path / "y.json")
    run = CliRunner().invoke(app, ["report", "--simulation", str(tmp_path / "y.json")])
    assert run.exit_code == 1 and "not a simulation" in run.output


@pytest.mark.parametrize("walk", [True, False])
def test_the_cautious_oracle_keeps_the_evidence_rules_and_the_oracle_does_not(walk: bool) -> None:
    world = world_of(SimConfig(products=40, days=180, seed=2))
    day = world.sales["ds"].max() + dt.timedelta(days=1)
    settings = Settings()
    settings = replace(settings, pricing=replace(settings.pricing, inelastic_walk=walk))
    seen = price_seen_range(world.sales)
    true_e = world.truth.select("product_id", "elasticity").unique("product_id")
    prices = {}
    for name in ("oracle", "cautious"):
        recs = _policy_night(_Arm(name, world.products, world.sales), day, world.truth, settings)
        prices[name] = recs.select("product_id", pl.col("recommended_price").alias(name))
    frame = prices["oracle"].join(prices["cautious"], on="product_id").join(seen, on="product_id")
    frame = frame.join(true_e, on="product_id").join(
        world.products.select("product_id", "current_price"), on="product_id"
    )
    widen = 1 + settings.pricing.trust_widening
    inelastic = pl.lit(not walk) & (pl.col("elasticity") >= -1)
    # The cautious oracle stays inside the trust region (with room for a price ending's
    # rounding), or keeps a price that already lies outside it. Where the engine never walks an
    # inelastic product, a true elasticity of -1 or above stays inside the prices sold at; where
    # a price test's finding walks it (`inelastic_walk`), the oracle, knowing it, walks it too.
    hi = pl.when(inelastic).then(pl.col("price_seen_hi")).otherwise(pl.col("price_seen_hi") * widen)
    lo = pl.when(inelastic).then(pl.col("price_seen_lo")).otherwise(pl.col("price_seen_lo") / widen)
    moved = pl.col("cautious") != pl.col("current_price")
    outside = frame.filter(
        moved & ((pl.col("cautious") > hi + 0.5) | (pl.col("cautious") < lo - 0.5))
    )
    assert outside.height == 0, outside
    # Inelastic products the oracle raises past the prices sold at: only where they walk.
    above = (pl.col("elasticity") >= -1) & (pl.col("cautious") > pl.col("price_seen_hi") + 0.05)
    assert (frame.filter(above).height > 0) == walk
    # The oracle is free of those rules: it goes beyond them somewhere in this world.
    assert frame.filter((pl.col("oracle") > hi + 0.5) | (pl.col("oracle") < lo - 0.5)).height > 0


def test_the_loop_starts_at_regular_shelf_prices() -> None:
    # b's history ends in a promotion: its shelf starts at its last regular price, inside its
    # guardrails; a never had a regular day (kept as it is); c's regular price is above max_price.
    day = [dt.date(2026, 1, d) for d in (1, 2, 3)]
    sales = pl.DataFrame(
        {
            "product_id": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "ds": day * 3,
            "price": [4.0, 4.0, 4.0, 5.0, 5.5, 4.4, 9.0, 9.0, 7.0],
            "promo": [True] * 3 + [False, False, True] + [False, False, True],
        }
    )
    products = pl.DataFrame(
        {
            "product_id": ["a", "b", "c"],
            "current_price": [4.0, 4.4, 7.0],
            "min_price": [3.0, 3.0, 5.0],
            "max_price": [6.0, 8.0, 8.0],
        }
    )
    shelf = _regular_shelf(products, sales).sort("product_id")["current_price"].to_list()
    assert shelf == [4.0, 5.5, 8.0]


@pytest.mark.slow
def test_engine_arms_share_the_training_of_identical_histories(tmp_path) -> None:
    # Night 1: both engine arms hold the world's history, so one trains and the other reuses.
    cfg = SimConfig(nights=1, products=8, days=120, seed=1, arms=("engine", "engine_off"))
    settings = Settings(model=ModelConfig(epochs=1, min_epochs=1))
    result = simulate(cfg, settings, workdir=tmp_path)
    assert result["nights"][0]["engine_off"]["expected_profit"] > 0
    assert any(p.is_file() for p in (tmp_path / "engine" / "models").rglob("*"))
    assert not (tmp_path / "engine_off" / "models").exists()


def test_each_night_line_shows_the_progress_and_the_time_left() -> None:
    arms = ["engine", "oracle", "keep"]
    record = {"night": 14, "day": "2026-11-14"} | {
        arm: {"expected_profit": 1000.0 * (k + 1), "price_changes": 2, "seconds": 1.0}
        for k, arm in enumerate(arms)
    }
    line = night_line(record, arms, total=56, elapsed=700.0)  # 50 s a night, 42 nights to go
    assert line.startswith("[#####...............] 0:35:00    14 2026-11-14")
    assert "3,000" in line and len(table_header(arms)) == len(line)
