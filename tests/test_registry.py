"""Tests of pipeline/registry.py: saving shards, reusing them, and the staleness rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline import forecast, model, registry
from pipeline.config import ModelConfig
from pipeline.contract import STATUS_GATE_FAILED
from pipeline.features import build_panel, panel_until
from pipeline.stats import IDENTIFIED_REGULAR
from tests.worlds import sales_frame, trainable_panel

CFG = ModelConfig(
    epochs=1, min_epochs=0, hidden_units=4, segment_days=64, warmup_days=8, horizon=7,
    validation_days=14,
)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    _, panel = trainable_panel(n_products=6, n_days=200, seed=11, min_observed=150)
    as_of = panel.end
    folder = tmp_path_factory.mktemp("models") / "v1" / "shard-000"
    outputs, _ = registry.train_shard(panel, CFG, folder)
    versions = pl.DataFrame(
        {
            "product_id": list(panel.product_ids),
            "trained_at": [dt.datetime.combine(as_of, dt.time())] * len(panel.product_ids),
            "artefact": [str(folder)] * len(panel.product_ids),
        }
    )
    return panel, folder, outputs, versions, as_of


def test_reused_models_lend_their_own_estimates_to_the_pooling(trained) -> None:
    panel, folder, outputs, _, _ = trained
    reused = list(panel.product_ids[:4])
    categories = {pid: ("a" if i < 2 else "b") for i, pid in enumerate(panel.product_ids)}
    pool = registry.reused_pool({str(folder): reused}, categories)
    assert pool is not None and list(pool.groups) == ["a", "a", "b", "b"]
    assert outputs.raw_elasticity is not None and outputs.raw_se is not None
    np.testing.assert_allclose(pool.estimate, outputs.raw_elasticity[:4])
    np.testing.assert_allclose(pool.se, outputs.raw_se[:4])
    assert registry.reused_pool({}, categories) is None


def test_a_saved_shard_reproduces_its_forecast(trained) -> None:
    panel, folder, outputs, _, _ = trained
    again = registry.load_shard(folder, panel, CFG)
    assert again.product_ids == outputs.product_ids
    np.testing.assert_allclose(again.base_daily, outputs.base_daily, rtol=1e-4)
    np.testing.assert_allclose(again.elasticity, outputs.elasticity, rtol=1e-5)
    np.testing.assert_allclose(again.model_abs_error, outputs.model_abs_error)
    # The backtest gap's standard error, which the quality gate's margin stands on.
    assert outputs.error_gap_se is not None and (outputs.error_gap_se > 0).all()
    np.testing.assert_allclose(again.error_gap_se, outputs.error_gap_se)
    # What the regression said comes back too (saved beside the model), and the reference
    # price the baseline is at is the model's own: that of the days before its backtest.
    np.testing.assert_allclose(again.ref_price, outputs.ref_price)
    np.testing.assert_allclose(again.ref_price, panel_until(panel, panel.n_days - 14).ref_price)
    for name in forecast.REGRESSION_FIELDS:
        mine, theirs = getattr(outputs, name), getattr(again, name)
        if mine.dtype == object:
            assert theirs.tolist() == mine.tolist(), name
        else:
            np.testing.assert_allclose(theirs, mine, rtol=1e-12, equal_nan=True, err_msg=name)


def test_current_models_are_reused_and_stale_ones_retrained(trained) -> None:
    panel, folder, _, versions, as_of = trained
    ids, ok = list(panel.product_ids), np.ones(len(panel.product_ids), bool)
    to_train, reuse = registry.plan_training(ids, ok, versions, as_of, 7, False, panel, CFG)
    assert to_train == [] and reuse == {str(folder): ids}
    # Too old.
    later = as_of + dt.timedelta(days=8)
    to_train, reuse = registry.plan_training(ids, ok, versions, later, 7, False, panel, CFG)
    assert to_train == ids and reuse == {}
    # Forced.
    assert registry.plan_training(ids, ok, versions, as_of, 7, True)[0] == ids
    # Demand drifted: one product's recent sales tripled.
    units = panel.units.copy()
    units[0, -28:] *= 3.0
    moved = dataclasses.replace(panel, units=units)
    to_train, reuse = registry.plan_training(ids, ok, versions, as_of, 7, False, moved, CFG)
    assert to_train == ids and reuse == {}
    # Too little history: neither trained nor reused.
    few = ok.copy()
    few[0] = False
    to_train, _ = registry.plan_training(ids, few, versions, later, 7, False, panel, CFG)
    assert to_train == ids[1:]


def test_a_shard_lends_only_its_latest_products_and_only_while_all_can_be_forecast(
    trained, tmp_path
) -> None:
    """A product retrained alone since has a newer model: the old shard still runs (it needs
    all its products' histories) but lends only the others, so no product is forecast twice.
    A product no longer sold leaves the shard nothing to run on: its others train again,
    rather than stop the night."""
    panel, folder, _, versions, as_of = trained
    ids, ok = list(panel.product_ids), np.ones(len(panel.product_ids), bool)
    alone = tmp_path / "v2" / "shard-000"
    registry.train_shard(panel.select(np.array([0])), CFG, alone)
    retrained = versions.with_columns(
        artefact=pl.when(pl.col("product_id") == ids[0]).then(pl.lit(str(alone)))
        .otherwise("artefact")
    )  # fmt: skip
    to_train, reuse = registry.plan_training(ids, ok, retrained, as_of, 7, False, panel, CFG)
    assert to_train == [] and reuse == {str(folder): ids[1:], str(alone): [ids[0]]}
    loaded = [registry.load_shard(Path(f), panel, CFG, pids) for f, pids in reuse.items()]
    assert sorted(registry.concat_outputs(loaded).product_ids) == sorted(ids)  # each once
    gone = ids[:-1]  # the last product is no longer sold
    to_train, reuse = registry.plan_training(gone, ok[:-1], versions, as_of, 7, False, panel, CFG)
    assert to_train == gone and reuse == {}


def test_a_regression_shard_saved_without_its_fields_is_retrained(trained, tmp_path) -> None:
    """Saved before the regression's fields were stored (same format): tonight could not tell
    which products are not identified or confounded, so the shard trains again."""
    panel, folder, _, versions, as_of = trained
    older = tmp_path / "older"
    shutil.copytree(folder, older)
    meta = json.loads((older / model.META_FILE).read_text())
    for name in forecast.REGRESSION_FIELDS:
        meta.pop(name, None)
    (older / model.META_FILE).write_text(json.dumps(meta))
    ids, ok = list(panel.product_ids), np.ones(len(panel.product_ids), bool)
    moved = versions.with_columns(artefact=pl.lit(str(older)))
    assert registry.plan_training(ids, ok, moved, as_of, 7, False, panel, CFG) == (ids, {})


def test_an_artefact_of_another_format_or_shape_is_retrained_not_loaded(trained) -> None:
    panel, folder, _, versions, as_of = trained
    ids, ok = list(panel.product_ids), np.ones(len(panel.product_ids), bool)
    other = dataclasses.replace(CFG, hidden_units=8)
    to_train, reuse = registry.plan_training(ids, ok, versions, as_of, 7, False, panel, other)
    assert to_train == ids and reuse == {}
    with pytest.raises(model.ModelArtefactError, match="hidden_units=4"):
        registry.load_shard(folder, panel, other)


def test_a_model_that_loses_to_seasonal_naive_is_recorded_as_gate_failed(tmp_path) -> None:
    # Sales repeat an exact weekly pattern, answering price cuts early on (elasticity -2); the
    # price stays put over the last 60 days, so seasonal-naive is perfect on the backtest's days,
    # no trained model can beat it and every product fails the backtest gate.
    start, days = dt.date(2025, 1, 1), 160
    weekly = [10.0, 8.0, 8.0, 9.0, 12.0, 18.0, 15.0]
    price = [1.8 if t % 10 == 0 and t < 100 else 2.0 for t in range(days)]
    rows = [
        (pid, start + dt.timedelta(days=t), scale * weekly[t % 7] * (price[t] / 2.0) ** -2.0,
         price[t], False, False)
        for pid, scale in (("A", 1.0), ("B", 3.0))
        for t in range(days)
    ]  # fmt: skip
    panel = build_panel(sales_frame(rows), ["A", "B"], start + dt.timedelta(days=days))
    assert panel.price_varied.all()
    outputs, _ = registry.train_shard(panel, CFG, tmp_path / "shard-000")
    assert (outputs.naive_abs_error == 0).all() and (outputs.model_abs_error > 0).all()
    table = forecast.product_table(outputs, panel, {"A": "x", "B": "x"}, CFG)
    assert table["status"].to_list() == [STATUS_GATE_FAILED] * 2
    assert table["hold_reason"].str.starts_with("forecast lost to seasonal-naive").all()
    # No trusted product to pool from: the pooled estimate falls back to -1; each keeps its own.
    assert table["pooled_elasticity"].to_list() == [-1.0, -1.0]
    np.testing.assert_allclose(table["elasticity"].to_numpy(), outputs.elasticity, rtol=1e-6)
    trained_at = dt.datetime(2025, 6, 10)
    artefacts = {"A": str(tmp_path / "shard-000"), "B": str(tmp_path / "shard-000")}
    rows = registry.model_version_rows(table, "v1", "run-1", artefacts, trained_at)
    assert rows["gate_passed"].to_list() == [False, False]
    assert rows["status"].to_list() == [STATUS_GATE_FAILED] * 2
    # What the regression estimated is recorded: no promotions, so no promotion lift.
    assert rows["identified_by"].to_list() == [IDENTIFIED_REGULAR] * 2
    assert rows["promo_effect"].to_list() == [None, None]
    assert rows["confounding_z"].is_not_null().all()
