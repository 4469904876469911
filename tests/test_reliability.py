"""Reliability suite (issue 6): bad input, crashes and concurrent readers lose nothing.

Every test works on its own copy of one tiny warehouse that has a completed night (the baseline),
and ends by checking that no row was lost or duplicated (`assert_nothing_lost`). The last test
prints what the suite tried; see it with `pytest -rA -s tests/test_reliability.py`:

- bad input of every kind the issue names, written straight into the tables as a user's own ETL
  could (plus the kinds the tables' constraints cannot hold, checked on frames);
- SIGKILL from this process at the fault-injection points of `pipeline/faults.py` (training,
  optimising, inside the final write's transaction, and while publishing the analysts' snapshot),
  each in a real `pricing nightly` process;
- several reader processes holding the analysts' snapshot open during a nightly run;
- hostile and wrong input from the command line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from flows.nightly import nightly
from pipeline import faults, synth, validate
from pipeline import model as model_lib
from pipeline import warehouse as wh
from pipeline.cli import app
from pipeline.config import ModelConfig

N_PRODUCTS, N_DAYS, SEED, EPOCHS, HORIZON = 14, 200, 5, 2, 14
ROOT = Path(__file__).resolve().parent.parent
LEDGER: dict[str, Any] = {"bad_input_kinds": set(), "crash_points": set(), "readers": 0}
# The tiny seasonal world drifts between its own nights; keep saved models current, so that only
# the runs that ask for training (--retrain) train, and saved artefacts are really loaded.
CONFIG_TEXT = "[model]\ndrift_ratio = 1000.0\n"


# --------------------------------------------------------------------------- the baseline


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> dict[str, Any]:
    """A tiny world with one completed night, shared read-only by the tests (copied by each)."""
    path = tmp_path_factory.mktemp("baseline") / "pricing.duckdb"
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
    }


def run_nightly(path: Path, **overrides: Any) -> dict[str, Any]:
    """The nightly flow in this process, with the suite's settings."""
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


def assert_nothing_lost(path: Path, baseline: dict[str, Any]) -> None:
    """Inputs are whole; every completed night has exactly one row per product, none twice."""
    n_active = len(baseline["active"])
    assert scalar(path, "select count(*) from sales") == baseline["n_sales"]
    per_date = wh.query_readonly(
        path,
        "select effective_date, count(*) as n, count(distinct product_id) as products "
        "from recommendation_history group by effective_date",
    )
    assert (per_date["n"] == n_active).all() and (per_date["products"] == n_active).all()
    forecasts = wh.query_readonly(
        path,
        "select run_id, count(*) as n from forecasts join runs using (run_id) "
        "where status = 'completed' group by run_id",
    )
    assert (forecasts["n"] == n_active * HORIZON).all()
    assert sorted(latest(path)["product_id"]) == baseline["active"]


# --------------------------------------------------------------------------- bad input


def etl_writes_bad_rows(path: Path, ids: list[str]) -> dict[str, str]:
    """Corrupt the tables the way a user's own ETL could; returns product -> expected check."""
    future = dt.date.today() + dt.timedelta(days=30)
    last = scalar(path, "select max(ds) from sales")
    gap = [last - dt.timedelta(days=d) for d in (40, 41, 42)]
    with duckdb.connect(str(path)) as con:
        sales = "update sales set {} where product_id = ? and ds = ?"
        con.execute(sales.format("price = -2.0"), [ids[0], last])
        con.execute(sales.format("price = 0.0"), [ids[1], last])
        con.execute(sales.format("price = 'nan'::double"), [ids[2], last])
        con.execute(sales.format("units = 'nan'::double"), [ids[3], last])
        con.execute(sales.format("units = -3.0"), [ids[4], last])
        con.execute(sales.format("units = 'inf'::double"), [ids[5], last])
        con.execute("insert into sales values (?, ?, 1, 1.99, false, false)", [ids[6], future])
        con.execute(
            "delete from sales where product_id = ? and ds in (select unnest(?::date[]))",
            [ids[7], gap],
        )
        con.execute("insert into sales values ('GHOST-1', ?, 4, 2.49, false, false)", [last])
        products = "update products set {} where product_id = ?"
        con.execute(products.format("min_price = max_price + 1"), [ids[8]])
        con.execute(products.format("unit_cost = max_price + 1"), [ids[9]])
        con.execute(products.format("unit_cost = 'nan'::double"), [ids[10]])
    return {
        ids[0]: "price_positive", ids[1]: "price_positive", ids[2]: "price_missing",
        ids[3]: "units_missing", ids[4]: "units_non_negative", ids[5]: "non_finite",
        ids[6]: "future_date", ids[7]: "gap", "GHOST-1": "sales_product_known",
        ids[8]: "price_bounds", ids[9]: "unit_cost_below_max_price", ids[10]: "non_finite",
    }  # fmt: skip


# The issue's kinds that a user's ETL can write into the tables (see etl_writes_bad_rows).
ETL_KINDS = (
    "negative price", "zero price", "missing price", "missing units", "negative units",
    "non-finite values", "future dates", "gaps", "sales for unknown products",
    "min price above max price", "unit cost above max price",
)  # fmt: skip


def test_bad_rows_from_a_users_etl_are_quarantined_and_the_run_goes_on(
    baseline: dict[str, Any], tmp_path: Path
) -> None:
    path = copy_warehouse(baseline, tmp_path)
    expected = etl_writes_bad_rows(path, baseline["active"])
    n_sales_before = scalar(path, "select count(*) from sales")
    summary = run_nightly(path)

    assert summary["as_of"] == baseline["summary"]["as_of"]  # the future row moved nothing
    issues = wh.query_readonly(
        path, "select * from data_issues where run_id = ?", [summary["run_id"]]
    )
    found = dict(issues.select("product_id", "check").unique().iter_rows())
    assert found == expected
    assert summary["n_data_issues"] == issues.height == len(expected)  # one row per bad row
    recs = latest(path)
    assert recs.height == len(baseline["active"]) and set(recs["run_id"]) == {summary["run_id"]}
    reason = dict(recs.select("product_id", "reason").iter_rows())
    action = dict(recs.select("product_id", "action").iter_rows())
    held = {pid: check for pid, check in expected.items() if pid in reason and check != "gap"}
    assert all(action[pid] == "hold" for pid in held)
    # The pricing engine's own input check names a NaN unit cost first; every other hold names
    # the data issue.
    nan_cost = baseline["active"][10]
    assert "invalid input: unit_cost" in reason[nan_cost]
    assert all(f"data issue: {held[pid]}" in reason[pid] for pid in held if pid != nan_cost)
    others = [pid for pid in baseline["active"] if pid not in held]
    assert others and all("data issue" not in reason[pid] for pid in others)
    assert scalar(path, "select count(*) from sales") == n_sales_before  # quarantined, not deleted
    LEDGER["bad_input_kinds"] |= set(ETL_KINDS)


def test_bad_rows_the_tables_cannot_hold_are_handled_too(baseline: dict[str, Any]) -> None:
    """Duplicates and nulls are stopped by the tables' keys; frames from elsewhere get checked."""
    path: Path = baseline["path"]
    sales = wh.read_sales(path).head(30)
    with pytest.raises(duckdb.ConstraintException), duckdb.connect(":memory:") as con:
        con.execute((wh.MIGRATIONS_DIR / "001_core_tables.sql").read_text())
        con.register("incoming", pl.concat([sales, sales.head(1)]))
        con.execute("insert into sales select * from incoming")
    bad = pl.concat([sales, sales.head(1)]).with_columns(
        units=pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise("units"),
        price=pl.when(pl.int_range(pl.len()) == 6).then(None).otherwise("price"),
    )
    checked = validate.check_history(wh.read_products(path), bad)
    assert sorted(checked.issues["check"]) == sorted(
        ["unique_product_day", "unique_product_day", "units_missing", "price_missing"]
    )
    assert checked.sales.height == 30 - 3  # both copies of the duplicated day, and the two nulls
    LEDGER["bad_input_kinds"] |= {"duplicate (product_id, ds)", "missing units", "missing price"}


# --------------------------------------------------------------------------- crashes


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A `pricing` subprocess's environment: this session's Prefect server, no GPU noise."""
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    env.pop(faults.PAUSE_ENV, None)
    return {**env, **(extra or {})}


def start_nightly(path: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pipeline.cli", "nightly", "--warehouse", str(path)]
    settings = ["--config", str(path.with_name("settings.toml")), "--epochs", str(EPOCHS)]
    return subprocess.Popen(
        [*command, *settings, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(marker: Path, process: subprocess.Popen[str], timeout_s: float = 300) -> None:
    """Wait until the process paused at its fault point (wrote the marker)."""
    deadline = time.monotonic() + timeout_s
    while not marker.exists():
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(
                f"nightly exited with {process.returncode} before pausing:\n{output[-3000:]}"
            )
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"nightly did not reach its fault point in {timeout_s} s")
        time.sleep(0.1)


def kill_at(path: Path, stage: str, *args: str) -> None:
    """Run `pricing nightly` in a separate process and SIGKILL it when it pauses at `stage`."""
    marker = path.parent / f"paused-{stage}"
    env = cli_env({faults.PAUSE_ENV: stage, faults.MARKER_ENV: str(marker)})
    process = start_nightly(path, *args, env=env)
    try:
        wait_for(marker, process)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        if process.stdout:
            process.stdout.close()


@pytest.mark.parametrize(
    ("stage", "args"),
    [("train", ("--retrain",)), ("optimise", ()), ("write", ())],
)
def test_a_run_killed_before_its_commit_loses_nothing(
    baseline: dict[str, Any], tmp_path: Path, stage: str, args: tuple[str, ...]
) -> None:
    path = copy_warehouse(baseline, tmp_path)
    kill_at(path, stage, *args)

    with wh.connect(path, read_only=True, lock_timeout_s=5) as con:  # the file opens at once
        assert con.execute("select count(*) from runs").fetchone() == (2,)
    assert latest(path).equals(baseline["latest"])  # intact and complete: count and content
    assert latest(wh.analyst_path(path)).equals(baseline["latest"])
    killed = scalar(path, "select run_id from runs where status = 'running'")
    assert_nothing_lost(path, baseline)

    summary = run_nightly(path)  # the next run succeeds
    run = wh.query_readonly(path, "select status, message from runs where run_id = ?", [killed])
    assert run["status"].item() == "failed" and run["message"].item().startswith("abandoned:")
    assert set(latest(path)["run_id"]) == {summary["run_id"]}
    assert latest(wh.analyst_path(path)).equals(latest(path))
    assert_nothing_lost(path, baseline)
    LEDGER["crash_points"].add(stage)


def test_a_run_killed_while_publishing_the_snapshot_keeps_both_nights_whole(
    baseline: dict[str, Any], tmp_path: Path
) -> None:
    path = copy_warehouse(baseline, tmp_path)
    kill_at(path, "publish")

    # The night was committed: the warehouse has it whole, analysts still see the old one whole.
    new = latest(path)
    assert new.height == len(baseline["active"]) and new["run_id"].n_unique() == 1
    assert new["run_id"][0] != baseline["latest"]["run_id"][0]
    assert latest(wh.analyst_path(path)).equals(baseline["latest"])
    assert_nothing_lost(path, baseline)

    summary = run_nightly(path)
    assert latest(wh.analyst_path(path)).equals(latest(path))
    assert set(latest(path)["run_id"]) == {summary["run_id"]}
    assert scalar(path, "select count(*) from runs where status = 'running'") == 0
    assert_nothing_lost(path, baseline)
    LEDGER["crash_points"].add("publish")


def test_rerunning_a_date_replaces_never_duplicates(
    baseline: dict[str, Any], tmp_path: Path
) -> None:
    path = copy_warehouse(baseline, tmp_path)
    as_of = dt.date.fromisoformat(baseline["summary"]["as_of"])
    runs = [run_nightly(path, as_of=as_of) for _ in range(2)]
    recs = wh.query_readonly(
        path, "select * from recommendations where effective_date = ?", [as_of]
    )
    assert recs.height == len(baseline["active"])
    assert set(recs["run_id"]) == {runs[-1]["run_id"]}
    assert_nothing_lost(path, baseline)


# --------------------------------------------------------------------------- concurrent readers

READER = r"""
import duckdb, json, sys, time
from pathlib import Path

snapshot, go, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
ROWS = "select * from latest_recommendations order by product_id"
DATES = "select effective_date, count(*) from recommendation_history group by 1 order by 1"


def look(con):
    return {"rows": con.execute(ROWS).fetchall(), "dates": con.execute(DATES).fetchall()}


def dump(value):
    print(json.dumps(value, default=str), flush=True)


if mode == "hold":  # one connection open for the whole nightly run
    con = duckdb.connect(snapshot, read_only=True)
    before = look(con)
    dump({"ready": True})
    while not go.exists():
        time.sleep(0.05)
    after = look(con)
    con.close()
    with duckdb.connect(snapshot, read_only=True) as fresh:
        dump({"before": before, "after": after, "fresh": look(fresh)})
else:  # a new connection again and again while the run goes on
    seen = []
    dump({"ready": True})
    while not go.exists():
        with duckdb.connect(snapshot, read_only=True) as con:
            seen.append(look(con))
        time.sleep(0.05)
    dump({"seen": seen})
"""


def start_reader(snapshot: Path, go: Path, mode: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", READER, str(snapshot), str(go), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert json.loads(process.stdout.readline()) == {"ready": True}
    return process


def night_of(view: dict[str, Any], n_active: int) -> str:
    """The one run a reader's view shows; fails on a mix of nights or a partial night."""
    run_ids = {row[0] for row in view["rows"]}
    assert len(run_ids) == 1 and len(view["rows"]) == n_active
    assert all(count == n_active for _, count in view["dates"])
    return run_ids.pop()


def test_readers_holding_the_snapshot_never_fail_the_run_or_see_a_mix(
    baseline: dict[str, Any], tmp_path: Path
) -> None:
    path = copy_warehouse(baseline, tmp_path)
    snapshot, go = wh.analyst_path(path), tmp_path / "go"
    readers = [start_reader(snapshot, go, mode) for mode in ("hold", "hold", "poll")]
    try:
        summary = run_nightly(path)
        cli = CliRunner().invoke(
            app,
            ["sql", "select count(*) as n from latest_recommendations", "--warehouse", str(path)],
        )  # an analyst's query while the readers still hold the old night
        assert cli.exit_code == 0, cli.output
    finally:
        go.touch()
        reports = [json.loads(reader.communicate(timeout=120)[0]) for reader in readers]
    old, new, n = baseline["summary"]["run_id"], summary["run_id"], len(baseline["active"])
    for report in reports[:2]:
        assert night_of(report["before"], n) == night_of(report["after"], n) == old
        assert report["before"] == report["after"]  # the held connection kept its night
        assert night_of(report["fresh"], n) == new
    seen = [night_of(view, n) for view in reports[2]["seen"]]
    assert seen and set(seen) <= {old, new}
    assert seen == sorted(seen, key=lambda run: run == new)  # old, then new, never back
    assert_nothing_lost(path, baseline)
    LEDGER["readers"] = max(LEDGER["readers"], len(readers))


# --------------------------------------------------------------------------- hostile input

HOSTILE = "x'); drop table sales; --"


def invoke(*args: str) -> Any:
    """Run the CLI in-process; returns click's result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(app, list(args))


def one_line_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "sql",
    [
        "insert into runs (run_id) values ('x')",
        "update sales set units = 0",
        "delete from recommendations",
        "truncate sales",
        "drop table sales",
        "create table t as select 1",
        "create view v as select 1",
        "alter table sales add column x int",
        "copy sales to 'stolen.csv'",
        "export database 'dump'",
        "import database 'dump'",
        "attach 'other.duckdb' as other",
        "install httpfs",
        "load httpfs",
        "set threads = 1",
        "checkpoint",
        "begin transaction",
        "select 1; delete from sales",
    ],
)
def test_pricing_sql_refuses_writes_and_ddl(baseline: dict[str, Any], sql: str) -> None:
    line = one_line_error(invoke("sql", sql, "--warehouse", str(baseline["path"])))
    assert "pricing sql runs read-only queries" in line and "refused a" in line
    assert scalar(baseline["path"], "select count(*) from sales") == baseline["n_sales"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--products", HOSTILE), f"unknown or inactive product id(s): {HOSTILE}"),
        (("--category", HOSTILE), f"no active products in category '{HOSTILE}'"),
    ],
)
def test_hostile_ids_from_the_cli_never_become_sql(
    baseline: dict[str, Any], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    path = copy_warehouse(baseline, tmp_path)
    line = one_line_error(invoke("retrain", *args, "--epochs", "1", "--warehouse", str(path)))
    assert message in line
    assert_nothing_lost(path, baseline)


def test_hostile_file_names_and_ids_load_as_plain_values(tmp_path: Path) -> None:
    folder = tmp_path / "it's; drop table sales; --"
    folder.mkdir()
    sales_file, products_file = folder / "sales'; --.csv", folder / 'products";.csv'
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=d) for d in range(5)]
    pl.DataFrame(
        {"product_id": [HOSTILE] * 5, "ds": days, "units": [3.0] * 5, "price": [1.99] * 5}
    ).write_csv(sales_file)
    pl.DataFrame({"product_id": [HOSTILE], "unit_cost": [0.8]}).write_csv(products_file)
    path = tmp_path / "wh" / "pricing.duckdb"
    result = invoke(
        "load", "--sales", str(sales_file), "--products", str(products_file),
        "--warehouse", str(path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert wh.read_products(path)["product_id"].to_list() == [HOSTILE]
    assert wh.read_sales(path, product_ids=[HOSTILE]).height == 5


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[model]\nepochz = 3\n", "config key 'model.epochz'"),
        ("[model]\nhorizon = 0\n", "config key 'model.horizon'"),
        ('[pricing]\nmax_change_up = "lots"\n', "config key 'pricing.max_change_up'"),
        ("[modle]\nepochs = 3\n", "config key 'modle'"),
        ("model = 3\n", "config key 'model'"),
        ("[model\nepochs = 3\n", "is not valid TOML"),
    ],
)
def test_a_malformed_config_gives_one_line_naming_the_key(
    tmp_path: Path, text: str, named: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    path = tmp_path / "pricing.duckdb"
    line = one_line_error(invoke("nightly", "--config", str(config), "--warehouse", str(path)))
    assert named in line
    assert not path.exists()  # refused before anything was touched


def test_a_model_artefact_of_another_format_is_refused_not_loaded(
    baseline: dict[str, Any], tmp_path: Path
) -> None:
    path = copy_warehouse(baseline, tmp_path)
    folder = Path(scalar(path, "select artefact from model_quality where artefact is not null"))
    meta_file = folder / model_lib.META_FILE
    original = meta_file.read_text()
    cfg = ModelConfig(**json.loads(original)["model_config"])
    try:
        meta_file.write_text(json.dumps({**json.loads(original), "format": 0}))
        with pytest.raises(model_lib.ModelArtefactError, match=r"has format 0, .*pricing retrain"):
            model_lib.load(folder, cfg)
        # The nightly run does not load it: it retrains that shard and goes on.
        summary = run_nightly(path)
    finally:
        meta_file.write_text(original)
    assert summary["n_trained"] > 0
    failed = wh.query_readonly(path, "select * from runs where status = 'failed'")
    assert failed.height == 0
    assert_nothing_lost(path, baseline)


# --------------------------------------------------------------------------- the counts


def test_the_suite_reports_its_counts() -> None:
    kinds, points, readers = (
        LEDGER["bad_input_kinds"], LEDGER["crash_points"], LEDGER["readers"]
    )  # fmt: skip
    if not (kinds and points and readers):
        pytest.skip("run the whole module to get the counts")
    print(
        f"\nreliability suite: {len(kinds)} bad-input kinds tried ({', '.join(sorted(kinds))}); "
        f"{len(points)} crash points injected ({', '.join(sorted(points))}); "
        f"{readers} concurrent reader processes; no row lost or duplicated"
    )
    assert len(kinds) >= 12 and len(points) >= 3 and readers >= 2
