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
