"""`pricing bench tune` (pipeline/bench/tune.py): tuning on one world, the verdict on others."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline import cli
from pipeline.bench import tune as bench
from pipeline.config import ModelConfig
from pipeline.tune import objective
from pipeline.tune.sampling import draw_sample

BASE = ModelConfig(epochs=2, min_epochs=2)
N_PRODUCTS, N_DAYS, SAMPLE = 20, 200, 6


def test_the_verdict_is_scored_on_worlds_the_tuning_never_saw():
    result = bench.run(["demo"], N_PRODUCTS, N_DAYS, SAMPLE, 0.4, 3, 1, SAMPLE, base=BASE)
    (row,) = result["scenarios"]
    tuning = row["tuning"]
    assert tuning["seed"] == 3 and tuning["trials"].get("complete", 0) >= 1
    assert tuning["in_sample_tuned"] <= tuning["in_sample_default"]
    # (`pricing tune`'s own tests hold it to its budget; a busy machine can stretch a trial.)
    assert tuning["within_budget"] == (tuning["seconds"] <= tuning["budget_seconds"])
    (held,) = row["held_out"]
    assert held["seed"] == 4 and held["products"] == SAMPLE
    # The defaults' held-out score is the tuning objective on a sample of the other world.
    sample = draw_sample(bench.world_night("demo", N_PRODUCTS, N_DAYS, 4), BASE, SAMPLE, None, 4)
    assert held["default"] == pytest.approx(objective.evaluate(sample, BASE).wape, rel=1e-3)
    assert held["ratio"] == pytest.approx(held["tuned"] / held["default"])
    assert row["ratio"] == held["ratio"] and row["tuned_wape"] == held["tuned"]
    # Forecasters that know the true demand, scored on the same days: the room tuning has.
    assert held["truth_median"] == row["truth_median_wape"]
    assert 0 < held["truth_median"] < held["default"] and 0 < held["truth_mean"] < held["naive"]
    summary = result["summary"]
    assert summary["scenarios"] == 1 and summary["worst_ratio"] == row["ratio"]
    assert summary["better"] == int(row["ratio"] <= bench.GOOD_RATIO)
    assert summary["target_met"] == (row["ratio"] <= bench.GOOD_RATIO)
    assert "| demo |" in bench.table(result)


def test_the_truth_is_scored_on_the_days_the_backtest_scores():
    world, tonight = bench._world_and_night("demo", N_PRODUCTS, N_DAYS, 5)
    sample = draw_sample(tonight, BASE, SAMPLE, None, 5)
    known = bench.truth_wape(sample, world.truth, BASE)
    # Zero the units on every day the backtest scores: nothing sold, so no WAPE at all.
    units = sample.panel.units.copy()
    for end in objective.fold_ends(sample.panel.n_days, BASE):
        units[:, end - BASE.validation_days : end] = 0.0
    blank = dataclasses.replace(sample, panel=dataclasses.replace(sample.panel, units=units))
    assert np.isnan(bench.truth_wape(blank, world.truth, BASE)["median"])
    assert 0 < known["median"] < 1.5 and 0 < known["mean"] < 1.5


def test_the_command_refuses_an_unknown_scenario(tmp_path: Path):
    result = CliRunner().invoke(cli.app, ["bench", "tune", "--scenarios", "demo,nowhere"])
    assert result.exit_code == 1
    assert "unknown scenario(s) nowhere" in result.output


def test_the_command_writes_its_json(tmp_path: Path):
    config = tmp_path / "fast.toml"
    config.write_text("[model]\nepochs = 1\nmin_epochs = 1\n")
    out = tmp_path / "bench.json"
    args = ["bench", "tune", "--scenarios", "demo", "--products", str(N_PRODUCTS), "--days",
            str(N_DAYS), "--sample", "4", "--minutes", "0.2", "--holdout", "1",
            "--eval-products", "4", "--config", str(config), "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["benchmark"] == "tune" and written["options"]["sample"] == 4
    assert [r["scenario"] for r in written["scenarios"]] == ["demo"]
    assert "target met" in result.stderr
