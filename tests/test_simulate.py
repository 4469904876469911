"""The closed loop (pipeline/simulate) on a CI-sized world: 20 products, 120 days, 3 nights."""

from __future__ import annotations

import pytest

from pipeline.config import ModelConfig, Settings
from pipeline.simulate import SimConfig, simulate, summarise


@pytest.mark.slow
def test_three_nights_run_every_policy(tmp_path) -> None:
    cfg = SimConfig(nights=3, products=20, days=120, seed=0)
    settings = Settings(model=ModelConfig(epochs=1, min_epochs=1))
    result = simulate(cfg, settings, workdir=tmp_path)
    assert [r["night"] for r in result["nights"]] == [1, 2, 3]
    first = result["nights"][0]
    assert set(first) >= {"engine", "engine_off", "loglog", "oracle", "keep"}
    assert first["keep"]["price_changes"] == 0
    assert first["engine"]["testing"] > 0  # unidentified products start testing on night 1
    assert first["engine_off"].get("testing", 0) == 0
    summary = summarise(result)
    assert summary["oracle_uplift"] > 0
    assert {"uplift", "capture", "capture_last_7"} <= set(summary["engine"])


@pytest.mark.slow
def test_engine_arms_share_the_training_of_identical_histories(tmp_path) -> None:
    # Night 1: both engine arms hold the world's history, so one trains and the other reuses.
    cfg = SimConfig(nights=1, products=8, days=120, seed=1, arms=("engine", "engine_off"))
    settings = Settings(model=ModelConfig(epochs=1, min_epochs=1))
    result = simulate(cfg, settings, workdir=tmp_path)
    assert result["nights"][0]["engine_off"]["expected_profit"] > 0
    assert any(p.is_file() for p in (tmp_path / "engine" / "models").rglob("*"))
    assert not (tmp_path / "engine_off" / "models").exists()
