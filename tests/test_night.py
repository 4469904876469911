"""The night as a pure function: inputs in, outputs out, no Prefect and no DuckDB.

The flows wire the same functions into tasks (tests/test_flows.py); here the night runs from
frames in memory, and the flow's written output is checked to be exactly what it computes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import polars as pl
import pytest

from pipeline import night, synth
from pipeline import warehouse as wh
from pipeline.config import Settings
from pipeline.contract import ACTION_HOLD, STATUS_TRAINED

EPOCHS = 1


def _settings(tmp_path) -> Settings:
    settings = Settings(warehouse=tmp_path / "pricing.duckdb")
    model = replace(settings.model, epochs=EPOCHS, min_epochs=EPOCHS)
    return replace(settings, model=model, run=replace(settings.run, shard_size=4))


def _night(world: synth.World, settings: Settings) -> night.NightOutputs:
    inputs = night.inputs_from_frames(world.products, world.sales)
    tonight = night.prepare_night(inputs)
    run = night.RunInfo.new("00000000-night-test", inputs.as_of)
    plan = night.plan_training(tonight, settings, run, force=False)
    models = night.train_models(tonight, plan, settings)
    return night.price_night(tonight, models, settings, run)


@pytest.fixture(scope="module")
def world() -> synth.World:
    return synth.generate_world(n_products=8, n_days=160, seed=4)


@pytest.mark.slow
def test_a_night_prices_every_active_product_from_frames(world, tmp_path):
    settings = _settings(tmp_path)
    outputs = _night(world, settings)
    active = world.products.filter("is_active")["product_id"].to_list()
    recs = outputs.recommendations
    assert recs is not None and sorted(recs["product_id"]) == sorted(active)
    assert outputs.forecasts is not None
    assert outputs.forecasts.height == len(active) * settings.model.horizon
    trained = outputs.model_versions
    assert trained.height == outputs.counts["n_trained"] > 0
    assert set(trained.filter(pl.col("gate_passed"))["status"]) <= {STATUS_TRAINED}
    assert outputs.counts["n_holds"] == recs.filter(pl.col("action") == ACTION_HOLD).height
    assert outputs.message.startswith(f"{len(active)} products priced")
    assert not settings.warehouse.exists()  # nothing was written anywhere but the model folder


@pytest.mark.slow
def test_a_product_retrained_alone_is_pooled_with_the_reused_models(world, tmp_path):
    settings = _settings(tmp_path)
    first = _night(world, settings)
    versions = first.model_versions
    alone = versions["product_id"][0]
    # Tonight only `alone` lacks a current model: it trains alone, and its elasticity's prior
    # stands on the own estimates stored with the models the others reuse.
    kept = versions.filter(pl.col("product_id") != alone)
    inputs = night.inputs_from_frames(world.products, world.sales, versions=kept)
    tonight = night.prepare_night(inputs)
    run = night.RunInfo.new("00000000-night-again", inputs.as_of)
    plan = night.plan_training(tonight, settings, run, force=False)
    assert [job.panel.product_ids for job in plan.jobs] == [(alone,)]
    pool = plan.jobs[0].pool
    assert pool is not None and len(pool.estimate) == kept.height
    assert sorted(pool.groups) == sorted(inputs.categories[p] or "" for p in kept["product_id"])


_IN_A_FRESH_PROCESS = """
import json, sys, pathlib
from dataclasses import replace
from pipeline import night, synth
from pipeline.config import Settings
tmp = pathlib.Path(sys.argv[1])
settings = Settings(warehouse=tmp / "pricing.duckdb")
settings = replace(settings, model=replace(settings.model, epochs=1, min_epochs=1))
world = synth.generate_world(n_products=4, n_days=120, seed=1)
inputs = night.inputs_from_frames(world.products, world.sales)
tonight = night.prepare_night(inputs)
run = night.RunInfo.new("fresh", inputs.as_of)
models = night.train_models(tonight, night.plan_training(tonight, settings, run, False), settings)
out = night.price_night(tonight, models, settings, run)
print(json.dumps({"rows": out.recommendations.height,
                  "loaded": sorted(m for m in ("prefect", "duckdb") if m in sys.modules)}))
"""


@pytest.mark.slow
def test_the_night_needs_neither_prefect_nor_duckdb(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _IN_A_FRESH_PROCESS, str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"rows": 4, "loaded": []}


@pytest.mark.slow
def test_the_nightly_flow_writes_exactly_what_the_night_computes(world, tmp_path, prefect_harness):
    from flows.nightly import nightly

    settings = _settings(tmp_path)
    wh.write_inputs(settings.warehouse, world.products, world.sales)
    config = tmp_path / "settings.toml"
    config.write_text(f"[model]\nepochs = {EPOCHS}\nmin_epochs = {EPOCHS}\n[run]\nshard_size = 4\n")
    summary = nightly(warehouse_path=str(settings.warehouse), config_file=str(config))
    written = wh.read_recommendations(settings.warehouse, latest_only=True)

    computed = _night(world, replace(settings, warehouse=tmp_path / "elsewhere" / "w.duckdb"))
    assert computed.recommendations is not None
    ignore = ["run_id", "model_version", "effective_date", "created_at"]
    columns = [c for c in computed.recommendations.columns if c not in ignore]
    expected = computed.recommendations.select(columns).sort("product_id")
    assert written.select(columns).sort("product_id").equals(expected)
    assert summary["n_trained"] == computed.counts["n_trained"]
