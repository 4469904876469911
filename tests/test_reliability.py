"""Reliability suite (issues 6 and 14): bad input, concurrent readers and hostile input lose
nothing; crashes, a full disk and damaged artefacts are tests/test_crashes.py, fuzzed input files
tests/test_fuzz_inputs.py, processes left behind tests/test_processes.py.

Every test that needs a completed night works on its own copy of one tiny warehouse that has one
(the baseline of tests/baseline.py, built once per session and never written to), and ends by
checking that no row was lost or duplicated (`assert_nothing_lost`); those tests are marked slow.
What the reliability tests tried is counted as they run and printed at the end of the session
(tests/conftest.py); see it with `pytest -rA tests/test_reliability.py tests/test_crashes.py
tests/test_fuzz_inputs.py tests/test_processes.py`. Here:

- bad input of every kind the issue names, written straight into the tables as a user's own ETL
  could (plus the kinds the tables' constraints cannot hold, checked on frames);
- several reader processes holding the analysts' snapshot open during a nightly run, and ten
  `pricing sql` processes at a time querying it while the run writes;
- hostile and wrong input from the command line.

What the suite covers is declared once (ETL_KINDS, FRAME_KINDS, READER_MODES, SQL_READERS, and
tests/damage.py's DAMAGES), the tests are parametrized from those declarations, and the last test
checks them against what the issues ask for.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline import synth, validate
from pipeline import warehouse as wh
from pipeline.cli import app
from tests import processes as proc
from tests.baseline import (
    N_DAYS,
    N_PRODUCTS,
    SEED,
    assert_nothing_lost,
    copy_warehouse,
    latest,
    run_nightly,
    scalar,
)
from tests.damage import DAMAGES

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


@pytest.mark.slow
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
    baseline["ledger"].bad_input_kinds.update(ETL_KINDS)


# The kinds the tables' keys stop, checked on frames (see the next test).
FRAME_KINDS = ("duplicate (product_id, ds)", "missing units", "missing price")


def test_bad_rows_the_tables_cannot_hold_are_handled_too(
    tmp_path: Path, reliability_ledger: Any
) -> None:
    """Duplicates and nulls are stopped by the tables' keys; frames from elsewhere get checked."""
    path = tmp_path / "pricing.duckdb"
    world = synth.generate_world(n_products=N_PRODUCTS, n_days=N_DAYS, seed=SEED)
    wh.write_inputs(path, world.products, world.sales)
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
    reliability_ledger.bad_input_kinds.update(FRAME_KINDS)


@pytest.mark.slow
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

# Two readers hold one connection open for the whole run, one opens a new one again and again.
READER_MODES = ("hold", "hold", "poll")

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


@pytest.mark.slow
def test_readers_holding_the_snapshot_never_fail_the_run_or_see_a_mix(
    baseline: dict[str, Any], tmp_path: Path
) -> None:
    path = copy_warehouse(baseline, tmp_path)
    snapshot, go = wh.analyst_path(path), tmp_path / "go"
    readers = [start_reader(snapshot, go, mode) for mode in READER_MODES]
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
    for mode, report in zip(READER_MODES, reports, strict=True):
        if mode != "hold":
            continue
        assert night_of(report["before"], n) == night_of(report["after"], n) == old
        assert report["before"] == report["after"]  # the held connection kept its night
        assert night_of(report["fresh"], n) == new
    poller = reports[READER_MODES.index("poll")]
    seen = [night_of(view, n) for view in poller["seen"]]
    assert seen and set(seen) <= {old, new}
    assert seen == sorted(seen, key=lambda run: run == new)  # old, then new, never back
    assert_nothing_lost(path, baseline)


# Ten `pricing sql` processes at a time, round after round, while a nightly run writes.
SQL_READERS = 10
SQL_QUERY = (
    "select (select count(*) from latest_recommendations) || ':' || "
    "(select count(distinct run_id) from latest_recommendations) || ':' || "
    "(select min(run_id) from latest_recommendations) || ':' || "
    "(select count(*) from recommendation_history) as seen"
)
SEEN = re.compile(r"(\d+):(\d+):([0-9a-f-]{36}):(\d+)")


def sql_round(path: Path, tag: str) -> list[tuple[int, str]]:
    """Run SQL_READERS `pricing sql` processes at once; their exit codes and outputs."""
    env = proc.cli_env({proc.TAG_ENV: tag})
    command = [sys.executable, "-m", "pipeline.cli", "sql", SQL_QUERY, "--warehouse", str(path)]
    readers = [
        subprocess.Popen(command, cwd=proc.ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(SQL_READERS)
    ]
    return [(reader.wait(timeout=300), reader.communicate()[0]) for reader in readers]


@pytest.mark.slow
def test_ten_pricing_sql_readers_at_a_time_never_fail_the_run_or_see_a_mix(
    baseline: dict[str, Any], tmp_path: Path
) -> None:
    path = copy_warehouse(baseline, tmp_path)
    tag, done, results = f"sql-{tmp_path.name}", threading.Event(), []

    def read_until_done() -> None:
        while not done.is_set():  # rounds while the run goes on, then one after it
            results.extend(sql_round(path, tag))
        results.extend(sql_round(path, tag))

    driver = threading.Thread(target=read_until_done)
    driver.start()
    try:
        summary = run_nightly(path)
    finally:
        done.set()
        driver.join(timeout=600)
    old, new, n = baseline["summary"]["run_id"], summary["run_id"], len(baseline["active"])
    seen = []
    for code, output in results:
        assert code == 0, output
        found = SEEN.search(output)
        assert found is not None, output
        rows, runs, run, history = found.groups()
        assert (int(rows), int(runs)) == (n, 1) and run in {old, new}  # a whole night
        # The run replaces the same date's night: one night in the history, never half of two.
        assert int(history) == n
        seen.append(run)
    assert len(seen) >= 2 * SQL_READERS and seen[-SQL_READERS:] == [new] * SQL_READERS
    print(
        f"\n{len(seen)} `pricing sql` runs during the night: {seen.count(old)} saw the old night, "
        f"{seen.count(new)} the new one, none failed or saw a mix"
    )
    assert proc.left_running(tag) == []
    assert set(latest(path)["run_id"]) == {new}
    assert_nothing_lost(path, baseline)


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


@pytest.mark.slow
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
def test_pricing_sql_refuses_writes_and_ddl(
    baseline: dict[str, Any], tmp_path: Path, sql: str
) -> None:
    path = copy_warehouse(baseline, tmp_path)
    line = one_line_error(invoke("sql", sql, "--warehouse", str(path)))
    assert "pricing sql runs read-only queries" in line and "refused a" in line
    assert_nothing_lost(path, baseline)
    assert latest(path).equals(baseline["latest"])


@pytest.mark.slow
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


# --------------------------------------------------------------------------- the counts


def test_the_suite_covers_what_the_issues_name() -> None:
    """The declared coverage: 20+ bad-input kinds (fuzzed included), 10+ concurrent readers."""
    kinds = set(ETL_KINDS) | set(FRAME_KINDS) | set(DAMAGES)
    print(
        f"\nreliability suite: {len(kinds)} bad-input kinds ({len(ETL_KINDS)} from a user's ETL, "
        f"{len(FRAME_KINDS)} the tables' keys stop, {len(DAMAGES)} damages of fuzzed files); "
        f"{len(READER_MODES)} reader processes holding the snapshot; {SQL_READERS} `pricing sql` "
        "processes at a time during a nightly run"
    )
    assert len(kinds) >= 20
    assert len(READER_MODES) >= 2 and {"hold", "poll"} <= set(READER_MODES)
    assert SQL_READERS >= 10
