"""Scale-out: the nightly flow with its shards trained on a local Dask cluster of two worker
processes prices exactly as the default in-process runner does.

Exact equality holds because every shard seeds its own training, including the weight
initialisers (pipeline/model/layers.py), and because the tests run TensorFlow without its oneDNN
kernels (conftest.py, inherited by the workers), whose floating-point order follows the OpenMP
thread count that Dask sets to 1 in its workers."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows.nightly import nightly
from pipeline import synth
from pipeline import warehouse as wh

pytestmark = pytest.mark.slow  # whole flows under the Prefect test harness

COLUMNS = ["product_id", "action", "recommended_price", "binding_rule"]


def _night(folder: Path, world: synth.World, run_settings: str) -> tuple[dict, pl.DataFrame]:
    path = folder / "pricing.duckdb"
    wh.write_inputs(path, world.products, world.sales)
    config = folder / "settings.toml"
    config.write_text("[run]\nshard_size = 8\n" + run_settings)
    summary = nightly(warehouse_path=str(path), config_file=str(config), epochs=2)
    recs = wh.query_readonly(path, "select * from latest_recommendations order by product_id")
    return summary, recs


@pytest.fixture(scope="module")
def world() -> synth.World:
    return synth.generate_world(n_products=16, n_days=200, seed=11)


def test_dask_cluster_gives_the_same_recommendations(tmp_path_factory, world, prefect_harness):
    local, local_recs = _night(tmp_path_factory.mktemp("local"), world, "")
    dask, dask_recs = _night(tmp_path_factory.mktemp("dask"), world, "dask_workers = 2\n")
    assert local["n_trained"] == dask["n_trained"] > 8  # both shards trained
    assert dask_recs.select(COLUMNS).equals(local_recs.select(COLUMNS))
    for column in ("elasticity", "expected_units", "expected_profit"):
        assert dask_recs[column].fill_null(0).to_list() == pytest.approx(
            local_recs[column].fill_null(0).to_list(), rel=1e-9, abs=1e-9
        )
