"""Deployments: what `pricing serve` registers, the prefect.yaml twin, and a served retrain run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from flows.deploy import NIGHTLY_DEPLOYMENT, RETRAIN_DEPLOYMENT, build_deployments
from pipeline import synth
from pipeline import warehouse as wh
from pipeline.config import RunConfig, load_settings

ROOT = Path(__file__).resolve().parent.parent


def _settings(tmp_path: Path, extra: str = ""):
    config = tmp_path / "settings.toml"
    config.write_text('[run]\nnightly_cron = "30 1 * * *"\ntimezone = "Europe/Berlin"\n' + extra)
    return load_settings(config, tmp_path / "pricing.duckdb"), config


@pytest.mark.slow
def test_nightly_is_scheduled_in_its_time_zone_and_retrain_is_not(tmp_path, prefect_harness):
    from prefect import get_client

    settings, config = _settings(tmp_path)
    ids = [deployment.apply() for deployment in build_deployments(settings, config)]
    with get_client(sync_client=True) as client:
        nightly, retrain = (client.read_deployment(i) for i in ids)
    assert nightly.name == NIGHTLY_DEPLOYMENT and retrain.name == RETRAIN_DEPLOYMENT
    (schedule,) = nightly.schedules
    assert schedule.schedule.cron == "30 1 * * *"
    assert schedule.schedule.timezone == "Europe/Berlin"
    assert retrain.schedules == []
    for deployment in (nightly, retrain):
        assert deployment.global_concurrency_limit.limit == 1
        assert deployment.concurrency_options.collision_strategy.value == "ENQUEUE"
        assert deployment.parameters == {
            "warehouse_path": str((tmp_path / "pricing.duckdb").resolve()),
            "config_file": str(config.resolve()),
        }
        assert deployment.entrypoint in ("flows.nightly.nightly", "flows.nightly.retrain")


def test_prefect_yaml_describes_the_same_two_deployments():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    by_name = {d["name"]: d for d in spec["deployments"]}
    assert set(by_name) == {NIGHTLY_DEPLOYMENT, RETRAIN_DEPLOYMENT}
    nightly, retrain = by_name[NIGHTLY_DEPLOYMENT], by_name[RETRAIN_DEPLOYMENT]
    assert nightly["schedules"] == [{"cron": RunConfig().nightly_cron, "timezone": "UTC"}]
    assert "schedules" not in retrain
    from prefect.flows import load_flow_from_entrypoint

    for deployment, flow_name in ((nightly, "nightly"), (retrain, "retrain")):
        assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
        entrypoint = str(ROOT / deployment["entrypoint"])
        assert load_flow_from_entrypoint(entrypoint).name == flow_name


def _wait_for_deployment(name: str, warehouse: Path, timeout_s: float) -> None:
    """`pricing serve` registers its deployments once it has started; wait until it has (the
    deployment may exist already, from another test, with another warehouse)."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            try:
                deployment = client.read_deployment_by_name(name)
                if deployment.parameters.get("warehouse_path") == str(warehouse.resolve()):
                    return
            except ObjectNotFound:
                pass
            time.sleep(1)
    raise AssertionError(f"{name} was not served for {warehouse} within {timeout_s} s")


@pytest.mark.slow
def test_served_retrain_deployment_runs_when_triggered(tmp_path, prefect_harness):
    """`pricing serve` in its own process picks up a retrain started through the Prefect API."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    world = synth.generate_world(n_products=6, n_days=150, seed=2)
    path = tmp_path / "pricing.duckdb"
    wh.write_inputs(path, world.products, world.sales)
    _, config = _settings(tmp_path, "shard_size = 3\n")
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    server = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", "--warehouse", str(path),
         "--config", str(config)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_deployment(f"retrain/{RETRAIN_DEPLOYMENT}", path, timeout_s=240)
        product = world.products["product_id"][0]
        run = run_deployment(
            f"retrain/{RETRAIN_DEPLOYMENT}",
            parameters={"product_ids": [product], "epochs": 1},
            timeout=300,
        )
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    assert run.state.is_completed(), run.state
    runs = wh.query_readonly(path, "select flow, status, n_trained, stage_seconds from runs")
    assert runs.rows()[0][:3] == ("retrain", "completed", 1)
    assert '"train"' in runs["stage_seconds"][0]
