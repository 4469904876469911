"""The reliability suites' shared world: a tiny warehouse with one completed night (the baseline).

Built once per session (the `baseline` fixture in tests/conftest.py) and never written to; every
test works on its own copy (`copy_warehouse`) and ends by checking that no row was lost or
duplicated (`assert_nothing_lost`, which also counts into the session's reliability ledger).
Used by tests/test_reliability.py and tests/test_crashes.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import polars as pl

from pipeline import synth
from pipeline import warehouse as wh

N_PRODUCTS, N_DAYS, SEED, EPOCHS, HORIZON = 14, 200, 5, 2, 14
# The tiny seasonal world drifts between its own nights; keep saved models current, so that only
# the runs that ask for training (--retrain) train, and saved artefacts are really loaded.
CONFIG_TEXT = "[model]\ndrift_ratio = 1000.0\n"


def build_baseline(path: Path, ledger: Any) -> dict[str, Any]:
    """Write the tiny world to `path`, run one night; what the tests compare against."""
    config = path.with_name("settings.toml")
    config.write_text(CONFIG_TEXT)
    world = synth.generate_world(n_products=N_PRODUCTS, n_days=N_DAYS, seed=SEED)
    wh.write_inputs(path, world.products, world.sales, world.truth)
    summary = run_nightly(path)
    return {
        "path": path,
        "summary": summary,
        "latest": latest(path),
        "n_sales": world.sales.height,
        "active": sorted(world.products.filter("is_active")["product_id"]),
        "ledger": ledger,
    }


def run_nightly(path: Path, **overrides: Any) -> dict[str, Any]:
    """The nightly flow in this process, with the suite's settings."""
    from flows.nightly import nightly

    config = str(path.with_name("settings.toml"))
    return nightly(warehouse_path=str(path), config_file=config, epochs=EPOCHS, **overrides)


def copy_warehouse(baseline: dict[str, Any], folder: Path) -> Path:
    """A private copy of the baseline warehouse and its analysts' snapshot."""
    folder.mkdir(parents=True, exist_ok=True)
    source: Path = baseline["path"]
    for file in (source, wh.analyst_path(source), source.with_name("settings.toml")):
        shutil.copy2(file, folder / file.name)
    return folder / source.name


def latest(path: Path) -> pl.DataFrame:
    """The latest night's recommendations in a warehouse or snapshot file, by product."""
    return wh.query_readonly(path, "select * from latest_recommendations order by product_id")


def scalar(path: Path, sql: str, params: list[Any] | None = None) -> Any:
    return wh.query_readonly(path, sql, params).row(0)[0]


def lost_or_duplicated(path: Path, baseline: dict[str, Any], n_sales: int | None = None) -> int:
    """Rows missing or doubled: sales against the expected count, and per completed night the
    recommendations (one per active product) and forecasts (one per product and horizon day)."""
    n_active = len(baseline["active"])
    expected_sales = baseline["n_sales"] if n_sales is None else n_sales
    off = abs(scalar(path, "select count(*) from sales") - expected_sales)
    per_date = wh.query_readonly(
        path,
        "select effective_date, count(*) as n, count(distinct product_id) as products "
        "from recommendation_history group by effective_date",
    )
    off += int((per_date["n"] - n_active).abs().sum())
    off += int((per_date["products"] - n_active).abs().sum())
    forecasts = wh.query_readonly(
        path,
        "select run_id, count(*) as n from forecasts join runs using (run_id) "
        "where status = 'completed' group by run_id",
    )
    off += int((forecasts["n"] - n_active * HORIZON).abs().sum())
    return off


def assert_nothing_lost(path: Path, baseline: dict[str, Any], n_sales: int | None = None) -> None:
    """Inputs are whole; every completed night has exactly one row per product, none twice.

    Args:
        path: the warehouse (or snapshot) to check.
        baseline: the baseline it was copied from.
        n_sales: the sales rows it must hold (default: the baseline's).
    """
    off = lost_or_duplicated(path, baseline, n_sales)
    baseline["ledger"].nights_checked(off)
    assert off == 0
    assert sorted(latest(path)["product_id"]) == baseline["active"]
