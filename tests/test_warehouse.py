"""Tests of the DuckDB warehouse (pipeline/warehouse.py) on tiny hand-made frames."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from pipeline import warehouse as wh

AS_OF = dt.date(2025, 3, 1)
QUOTED = "o'brien's \"best\"; drop table sales; --"
TABLES = {
    "schema_migrations",
    "products",
    "sales",
    "runs",
    "model_versions",
    "forecasts",
    "recommendations",
    "data_issues",
}
VIEWS = {"latest_recommendations", "recommendation_history", "model_quality", "run_summary"}


def make_products() -> pl.DataFrame:
    ids = ["A1", "B2", QUOTED]
    return pl.DataFrame(
        {
            "product_id": ids,
            "name": ["apple", "bread", "quoted"],
            "category": ["fruit", "bakery", "odd"],
            "family_id": ["f1", None, None],
            "size_rank": pl.Series([1, None, None], dtype=pl.Int32),
            "unit_cost": [1.0, 0.5, 2.0],
            "current_price": [2.0, 1.0, 4.0],
            "min_price": [1.5, 0.7, 3.0],
            "max_price": [3.0, 1.5, 6.0],
            "is_active": [True, True, False],
            "is_kvi": [False, True, False],
            "launched_on": [dt.date(2025, 1, 1)] * 3,
        }
    )


def make_sales(days: int = 10) -> pl.DataFrame:
    start = dt.date(2025, 2, 1)
    rows = [
        {
            "product_id": product_id,
            "ds": start + dt.timedelta(days=d),
            "units": float(d),
            "price": 2.0,
            "promo": d % 3 == 0,
            "stockout": d == 5,
        }
        for product_id in ("A1", "B2", QUOTED)
        for d in range(days)
    ]
    return pl.DataFrame(rows)


def make_recommendations(run_id: str, as_of: dt.date, price: float) -> pl.DataFrame:
    # Columns deliberately in another order than the table, and only a subset of the nullable ones.
    return pl.DataFrame(
        {
            "reason": ["model says so", "kept"],
            "product_id": ["A1", "B2"],
            "run_id": [run_id, run_id],
            "effective_date": [as_of, as_of],
            "current_price": [2.0, 1.0],
            "recommended_price": [price, 1.0],
            "action": ["increase", "keep"],
            "expected_profit": [10.0, 5.0],
            "binding_rule": ["none", "none"],
        }
    )


def make_forecasts(run_id: str, as_of: dt.date) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "run_id": [run_id] * 2,
            "product_id": ["A1", "A1"],
            "ds": [as_of, as_of + dt.timedelta(days=1)],
            "price": [2.19, 2.19],
            "units_mean": [3.0, 4.0],
            "units_p10": [1.0, 2.0],
            "units_p90": [5.0, 6.0],
        }
    )


def make_model_versions(version: str, trained_at: dt.datetime, wape: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model_version": [version, version],
            "product_id": ["A1", "B2"],
            "trained_at": [trained_at, trained_at],
            "backtest_wape": [wape, 0.5],
            "baseline_wape": [0.4, 0.4],
            "elasticity": [-1.5, -0.8],
            "gate_passed": [True, False],
            "status": ["trained", "gate_failed"],
        }
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "wh" / "pricing.duckdb"


@pytest.fixture
def loaded(path: Path) -> Path:
    wh.write_inputs(path, make_products(), make_sales())
    return path


def nightly(path: Path, run_id: str, as_of: dt.date, price: float, **outputs: object) -> None:
    wh.record_run_start(path, run_id, "nightly", as_of, {"as_of": as_of, "shard": 1})
    wh.write_run_outputs(
        path,
        run_id,
        as_of,
        forecasts=make_forecasts(run_id, as_of),
        recommendations=make_recommendations(run_id, as_of, price),
        counts={"n_products": 2, "n_recommendations": 2, "expected_profit_uplift": 1.5},
        message="ok",
        **outputs,  # type: ignore[arg-type]
    )


def test_migrate_is_idempotent_and_creates_tables_and_views(path: Path) -> None:
    assert wh.schema_version(path) == 0
    first = wh.migrate(path)
    assert first[0] == "001_core_tables"
    assert wh.migrate(path) == []
    assert wh.schema_version(path) == wh.SCHEMA_VERSION >= 1
    objects = wh.query_readonly(
        path, "select table_name, table_type from information_schema.tables"
    )
    tables = set(objects.filter(pl.col("table_type") == "BASE TABLE")["table_name"])
    views = set(objects.filter(pl.col("table_type") == "VIEW")["table_name"])
    assert tables >= TABLES
    assert views >= VIEWS
    for view in VIEWS:  # every view binds against the schema
        assert wh.query_readonly(path, f"select * from {view}").height == 0


def test_inputs_round_trip_with_dtypes(loaded: Path) -> None:
    products, sales = make_products(), make_sales()
    assert wh.read_products(loaded).equals(products.sort("product_id"))
    assert wh.read_sales(loaded).equals(sales.sort("product_id", "ds"))
    assert wh.read_products(loaded, active_only=True)["product_id"].to_list() == ["A1", "B2"]
    assert wh.latest_sales_date(loaded) == dt.date(2025, 2, 10)
    assert wh.read_truth(loaded) is None


def test_write_inputs_replaces_and_truth_follows_the_data(loaded: Path) -> None:
    truth = pl.DataFrame({"product_id": ["A1"], "elasticity": [-1.2]})
    wh.write_inputs(loaded, make_products(), make_sales(days=4), truth)
    assert wh.read_sales(loaded).height == 12
    stored = wh.read_truth(loaded)
    assert stored is not None and stored.equals(truth)
    wh.write_inputs(loaded, make_products(), make_sales(days=4))
    assert wh.read_truth(loaded) is None


def test_bad_inputs_write_nothing(loaded: Path) -> None:
    duplicated = pl.concat([make_sales(), make_sales().head(1)])
    with pytest.raises(wh.WarehouseError, match="nothing was written"):
        wh.write_inputs(loaded, make_products(), duplicated)
    assert wh.read_sales(loaded).height == 30


def test_read_sales_filters(loaded: Path) -> None:
    before = dt.date(2025, 2, 4)
    sales = wh.read_sales(loaded, before=before, product_ids=["B2", QUOTED])
    assert sales["product_id"].unique().sort().to_list() == ["B2", QUOTED]
    assert sales["ds"].max() == dt.date(2025, 2, 3)
    assert sales.height == 6
    assert wh.read_sales(loaded, product_ids=[]).height == 0
    assert wh.read_sales(loaded, product_ids=["nope"]).columns == list(make_sales().columns)


def test_quoted_product_id_travels_as_a_parameter(loaded: Path) -> None:
    sales = wh.read_sales(loaded, product_ids=[QUOTED])
    assert sales.height == 10
    answer = wh.query_readonly(
        loaded, "select count(*) as n from sales where product_id = ?", [QUOTED]
    )
    assert answer["n"][0] == 10


def test_runs_are_recorded(loaded: Path) -> None:
    wh.record_run_start(loaded, "r1", "retrain", None, {"category": "fruit"})
    with pytest.raises(wh.WarehouseError, match="already recorded"):
        wh.record_run_start(loaded, "r1", "retrain", None, {})
    wh.record_run_end(loaded, "r1", "failed", {"n_trained": 0}, "out of memory")
    run = wh.query_readonly(loaded, "select * from run_summary").row(0, named=True)
    assert run["status"] == "failed" and run["message"] == "out of memory"
    assert run["n_trained"] == 0 and run["parameters"] == '{"category": "fruit"}'
    assert run["duration_s"] >= 0
    started = run["started_at"]
    assert abs((dt.datetime.now(dt.UTC).replace(tzinfo=None) - started).total_seconds()) < 60
    with pytest.raises(wh.WarehouseError, match="never started"):
        wh.record_run_end(loaded, "unknown", "completed")


def test_rerunning_a_date_replaces_instead_of_duplicating(loaded: Path) -> None:
    nightly(loaded, "night-1", AS_OF, 2.19)
    time.sleep(0.01)  # finished_at must order the two runs
    nightly(loaded, "night-2", AS_OF, 2.29)
    recs = wh.query_readonly(loaded, "select * from recommendations")
    assert recs.height == 2 and set(recs["run_id"]) == {"night-2"}
    forecasts = wh.query_readonly(loaded, "select * from forecasts")
    assert forecasts.height == 2 and set(forecasts["run_id"]) == {"night-2"}
    latest = wh.read_recommendations(loaded)
    assert latest["run_id"].to_list() == ["night-2", "night-2"]
    a1 = latest.row(0, named=True)
    assert a1["recommended_price"] == 2.29 and a1["name"] == "apple"
    assert a1["price_change_pct"] == pytest.approx(14.5)
    assert a1["as_of"] == AS_OF
    history = wh.read_recommendations(loaded, latest_only=False)
    assert history.height == 2 and set(history["flow"]) == {"nightly"}
    runs = wh.query_readonly(loaded, "select * from runs order by run_id")
    assert runs["status"].to_list() == ["completed", "completed"]
    assert runs["n_recommendations"].to_list() == [2, 2]


def test_latest_recommendations_follow_the_latest_date(loaded: Path) -> None:
    nightly(loaded, "night-1", AS_OF, 2.19)
    nightly(loaded, "night-2", AS_OF + dt.timedelta(days=1), 2.09)
    assert wh.read_recommendations(loaded)["run_id"].unique().to_list() == ["night-2"]
    assert wh.read_recommendations(loaded, latest_only=False).height == 4


def test_a_failed_write_leaves_the_previous_night_intact(loaded: Path) -> None:
    nightly(loaded, "night-1", AS_OF, 2.19)
    wh.record_run_start(loaded, "night-2", "nightly", AS_OF, {})
    broken = make_recommendations("night-2", AS_OF, 2.29).with_columns(
        pl.Series("reason", ["fine", None])  # reason is not null: fails after the deletes
    )
    with pytest.raises(wh.WarehouseError, match="nothing was written"):
        wh.write_run_outputs(
            loaded,
            "night-2",
            AS_OF,
            forecasts=make_forecasts("night-2", AS_OF),
            recommendations=broken,
            counts={"n_products": 2},
        )
    missing_column = make_recommendations("night-2", AS_OF, 2.29).drop("action")
    with pytest.raises(wh.WarehouseError, match="nothing was written"):
        wh.write_run_outputs(loaded, "night-2", AS_OF, recommendations=missing_column)
    latest = wh.read_recommendations(loaded)
    assert latest["run_id"].to_list() == ["night-1", "night-1"]
    assert wh.query_readonly(loaded, "select * from forecasts")["run_id"].unique().to_list() == [
        "night-1"
    ]
    status = wh.query_readonly(loaded, "select status from runs where run_id = 'night-2'")
    assert status["status"][0] == "running"


def test_model_versions_replace_and_latest(loaded: Path) -> None:
    old = dt.datetime(2025, 2, 1, 3, 0)
    new = dt.datetime(2025, 3, 1, 3, 0, tzinfo=dt.UTC)
    wh.record_run_start(loaded, "t1", "retrain", None, {})
    wh.write_run_outputs(loaded, "t1", None, model_versions=make_model_versions("v1", old, 0.3))
    wh.record_run_start(loaded, "t2", "retrain", None, {})
    wh.write_run_outputs(loaded, "t2", None, model_versions=make_model_versions("v2", new, 0.2))
    wh.record_run_start(loaded, "t3", "retrain", None, {})
    wh.write_run_outputs(loaded, "t3", None, model_versions=make_model_versions("v2", new, 0.1))
    everything = wh.read_model_versions(loaded, latest_only=False)
    assert everything.height == 4  # v2 was replaced, not duplicated
    latest = wh.read_model_versions(loaded)
    assert latest["model_version"].to_list() == ["v2", "v2"]
    assert latest["backtest_wape"].to_list() == [0.1, 0.5]
    # Aware timestamps are stored as naive UTC, whatever the machine's time zone.
    assert latest["trained_at"][0] == dt.datetime(2025, 3, 1, 3, 0)
    quality = wh.query_readonly(loaded, "select * from model_quality order by product_id")
    assert quality["wape_improvement"].to_list() == pytest.approx([0.75, -0.25])


def test_data_issues_are_written_once_per_run(loaded: Path) -> None:
    issues = pl.DataFrame(
        {"run_id": ["n1"], "product_id": ["A1"], "ds": [AS_OF], "check": ["units"], "detail": ["x"]}
    )
    wh.record_run_start(loaded, "n1", "nightly", AS_OF, {})
    wh.write_run_outputs(loaded, "n1", AS_OF, data_issues=issues)
    wh.write_run_outputs(loaded, "n1", AS_OF, data_issues=issues)  # a retried write task
    assert wh.query_readonly(loaded, 'select "check" from data_issues').height == 1


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("insert into runs (run_id) values ('x')", "INSERT"),
        ("drop table sales", "DROP"),
        ("copy sales to 'stolen.csv'", "COPY"),
        ("attach 'other.duckdb' as other", "ATTACH"),
        ("select 1; delete from sales", "DELETE"),
        ("set threads = 1", "SET"),
        ("import database 'dump'", "IMPORT"),  # parsed as a PRAGMA, but it creates tables
    ],
)
def test_query_readonly_refuses_writes(loaded: Path, sql: str, kind: str) -> None:
    with pytest.raises(wh.WarehouseError) as info:
        wh.query_readonly(loaded, sql)
    message = str(info.value)
    assert message == (
        f"pricing sql runs read-only queries (SELECT/WITH/...); refused a {kind} statement"
    )
    assert wh.read_sales(loaded).height == 30


def test_query_readonly_answers_reads_and_blocks_files(loaded: Path, tmp_path: Path) -> None:
    answer = wh.query_readonly(
        loaded,
        "with s as (select * from sales) select product_id, sum(units) as units from s "
        "group by product_id order by product_id",
    )
    assert answer["units"].to_list() == [45.0, 45.0, 45.0]
    assert wh.query_readonly(loaded, "describe sales").height == 6
    assert wh.query_readonly(loaded, "pragma table_info('products')").height == 12
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(wh.WarehouseError, match=r"^pricing sql: .*disabled"):
        wh.query_readonly(loaded, "select * from read_csv(?)", [str(secret)])
    with pytest.raises(wh.WarehouseError, match=r"^pricing sql: .*no_such_table"):
        wh.query_readonly(loaded, "select * from no_such_table")


def test_missing_warehouse_message(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "pricing.duckdb"
    expected = f"warehouse {missing} not found: run `pricing demo` or `pricing load` first"
    for call in (
        lambda: wh.read_products(missing),
        lambda: wh.read_sales(missing),
        lambda: wh.query_readonly(missing, "select 1"),
    ):
        with pytest.raises(wh.WarehouseError) as info:
            call()
        assert str(info.value) == expected
    assert not missing.parent.exists()  # reading never creates folders


def test_a_lock_held_by_another_process_times_out_with_a_message(
    loaded: Path, write_lock_holder
) -> None:
    with write_lock_holder(loaded):
        started = time.monotonic()
        with (
            pytest.raises(wh.WarehouseError, match="another process holds it"),
            wh.connect(loaded, read_only=True, lock_timeout_s=0.5),
        ):
            pass
        assert 0.4 < time.monotonic() - started < 10
    with wh.connect(loaded, read_only=True) as con:  # free again once the holder is gone
        assert con.execute("select count(*) from products").fetchone() == (3,)


def test_connect_creates_the_folder_and_closes(path: Path) -> None:
    with wh.connect(path) as con:
        con.execute("select 1")
    assert path.is_file()
    with pytest.raises(Exception, match="closed"):
        con.execute("select 1")


# --- the analysts' snapshot, abandoned runs, reads for the run-time checks -----------------------


def test_every_finished_write_publishes_the_analysts_snapshot(loaded: Path) -> None:
    snapshot = wh.analyst_path(loaded)
    assert snapshot.name == "pricing.analyst.duckdb"
    assert wh.reading_path(loaded) == snapshot
    assert wh.query_readonly(snapshot, "select count(*) as n from sales")["n"].item() == 30
    nightly(loaded, "night-1", AS_OF, 2.19)
    assert wh.read_recommendations(snapshot)["run_id"].to_list() == ["night-1", "night-1"]
    wh.record_run_start(loaded, "night-2", "nightly", AS_OF, {})
    broken = make_recommendations("night-2", AS_OF, 2.29).drop("action")
    with pytest.raises(wh.WarehouseError, match="nothing was written"):
        wh.write_run_outputs(loaded, "night-2", AS_OF, recommendations=broken)
    assert wh.read_recommendations(snapshot)["run_id"].to_list() == ["night-1", "night-1"]
    wh.record_run_end(loaded, "night-2", "failed", message="broken frame")
    runs = wh.query_readonly(snapshot, "select run_id, status from runs order by run_id")
    assert runs.rows() == [("night-1", "completed"), ("night-2", "failed")]
    assert not snapshot.with_name(snapshot.name + ".partial").exists()


def test_reading_path_falls_back_to_the_warehouse(path: Path) -> None:
    assert wh.reading_path(path) == path
    wh.migrate(path)  # a new warehouse publishes its first snapshot
    assert wh.reading_path(path) == wh.analyst_path(path)


def test_a_reader_holding_the_snapshot_never_blocks_the_writer(loaded: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print(c.execute('select count(*) from sales').fetchone()[0], flush=True); "
            "sys.stdin.readline(); "
            "print(c.execute('select count(*) from recommendations').fetchone()[0], flush=True)",
            str(wh.analyst_path(loaded)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "30"
        started = time.monotonic()
        nightly(loaded, "night-1", AS_OF, 2.19)  # would wait for the lock on a shared file
        assert time.monotonic() - started < 10
        assert wh.read_recommendations(wh.analyst_path(loaded)).height == 2
        out, _ = holder.communicate("go\n", timeout=30)
        assert out.strip() == "0"  # the held connection still reads the night it opened
    finally:
        holder.kill()
        holder.wait()


def test_a_new_run_can_abandon_runs_left_running(loaded: Path) -> None:
    assert wh.record_run_start(loaded, "dead", "nightly", AS_OF, {}) == 0
    assert wh.record_run_start(loaded, "alive", "nightly", AS_OF, {}, abandon_others=True) == 1
    runs = wh.query_readonly(loaded, "select run_id, status, message from runs order by run_id")
    assert runs["status"].to_list() == ["running", "failed"]
    assert runs["message"][1] == (
        "abandoned: the process running it stopped before it finished (killed or crashed); "
        "found by run alive"
    )


def test_reads_for_the_run_time_checks(loaded: Path) -> None:
    future = dt.date(2099, 1, 1)
    with wh.connect(loaded) as con:  # as a user's own ETL could write them
        con.execute("insert into sales values ('GHOST', ?, 1, 1.0, false, false)", [AS_OF])
        con.execute("insert into sales values ('A1', ?, 1, 1.0, false, false)", [future])
    orphans = wh.read_orphan_sales(loaded)
    assert orphans.select("product_id", "ds").rows() == [("GHOST", AS_OF)]
    assert wh.read_sales(loaded, after=AS_OF).select("product_id", "ds").rows() == [("A1", future)]
    assert wh.latest_sales_date(loaded) == future
    assert wh.latest_sales_date(loaded, not_after=dt.date(2030, 1, 1)) == AS_OF
