"""Incremental loads (pipeline/loading.py, `pricing load --mode`): append, upsert and replace.

Each test builds its own warehouse from tiny hand-written CSV files. The last test replays nights
of a small synthetic world twice, appending one day per night to one warehouse and replacing the
whole history of the other, and requires the same recommendations every night.
`PRICING_REPLAY_NIGHTS=30 pytest tests/test_load_modes.py -k replay -s` runs the 30-night
version (about 10 minutes on a 2-core machine).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline import loading, synth
from pipeline import warehouse as wh
from pipeline.cli import app
from pipeline.config import PricingConfig
from pipeline.ingest import InputError
from pipeline.warehouse.inputs import TableChange

SALES = """product_id,ds,units,price
A1,2025-01-01,2,2.00
A1,2025-01-02,3,2.20
B2,2025-01-01,1,1.50
"""
PRODUCTS = """product_id,unit_cost,category,min_price,max_price
A1,1.00,fruit,1.50,3.00
B2,0.80,veg,1.00,2.50
"""


def write(folder: Path, name: str, text: str) -> Path:
    file = folder / name
    file.write_text(text)
    return file


def load(path: Path, mode: str, **files: Path) -> dict[str, TableChange]:
    return loading.load_files(path, PricingConfig(), mode=mode, **files)


def table(path: Path, name: str) -> pl.DataFrame:
    keys = "product_id, ds" if name == "sales" else "product_id"
    return wh.query_readonly(path, f"select * from {name} order by {keys}")


@pytest.fixture()
def loaded(tmp_path: Path) -> Path:
    """A warehouse holding SALES and PRODUCTS (loaded by append into a new file)."""
    path = tmp_path / "wh" / "pricing.duckdb"
    sales, products = write(tmp_path, "sales.csv", SALES), write(tmp_path, "p.csv", PRODUCTS)
    changes = load(path, "append", sales=sales, products=products)
    assert changes == {"products": TableChange(added=2), "sales": TableChange(added=3)}
    return path


def refused(path: Path, mode: str, message: str, **files: Path) -> None:
    """The load fails with exactly `message` and the warehouse is as it was."""
    before = {name: table(path, name) for name in ("products", "sales")}
    with pytest.raises(InputError) as info:
        load(path, mode, **files)
    assert str(info.value) == message
    for name, frame in before.items():
        assert table(path, name).equals(frame), name


# --------------------------------------------------------------------------- append


def test_append_adds_new_days_and_refuses_a_day_already_loaded(
    loaded: Path, tmp_path: Path
) -> None:
    day = write(tmp_path, "day.csv", "product_id,ds,units,price\nB2,2025-01-02,4,1.40\n")
    assert load(loaded, "append", sales=day) == {"sales": TableChange(added=1)}
    sales = table(loaded, "sales")
    assert sales.height == 4 and sales.row(3) == ("B2", dt.date(2025, 1, 2), 4.0, 1.4, False, False)
    again = write(
        tmp_path,
        "again.csv",
        "product_id,ds,units,price\nA1,2025-01-03,1,2.0\nA1,2025-01-02,9,2.2\n",
    )
    refused(
        loaded,
        "append",
        "again.csv row 2: check 'unique_product_day' failed: product_id A1, ds 2025-01-02 is "
        "already in the warehouse: use --mode upsert to replace it, or --mode replace to replace "
        "the table",
        sales=again,
    )


def test_append_refuses_a_known_product_and_sales_of_an_unknown_one(
    loaded: Path, tmp_path: Path
) -> None:
    known = write(tmp_path, "new.csv", "product_id,unit_cost,current_price\nC3,1,2\nB2,1,2\n")
    refused(
        loaded,
        "append",
        "new.csv row 2: check 'unique_product_id' failed: product_id B2 is already in the "
        "warehouse: use --mode upsert to replace it, or --mode replace to replace the table",
        products=known,
    )
    ghost = write(
        tmp_path, "ghost.csv", "product_id,ds,units,price\nA1,2025-01-03,1,2\nZ9,2025-01-03,1,2\n"
    )
    refused(
        loaded,
        "append",
        "ghost.csv row 2: check 'sales_product_known' failed: product 'Z9' is not in the "
        "warehouse: add the product (--products) or remove its sales",
        sales=ghost,
    )


def test_a_new_product_with_its_first_sales_takes_its_defaults_from_them(
    loaded: Path, tmp_path: Path
) -> None:
    products = write(tmp_path, "p2.csv", "product_id,unit_cost\nC3,1.00\n")
    sales = write(
        tmp_path,
        "s2.csv",
        "product_id,ds,units,price\nC3,2025-01-02,5,3.00\nC3,2025-01-03,4,2.50\n",
    )
    changes = load(loaded, "append", sales=sales, products=products)
    assert changes == {"products": TableChange(added=1), "sales": TableChange(added=2)}
    c3 = table(loaded, "products").row(2, named=True)
    assert (c3["current_price"], c3["min_price"], c3["max_price"]) == (2.5, 1.75, 3.75)
    assert c3["launched_on"] == dt.date(2025, 1, 2) and c3["category"] == "uncategorised"


# --------------------------------------------------------------------------- upsert


def test_upsert_replaces_days_of_the_same_key_and_adds_the_rest(
    loaded: Path, tmp_path: Path
) -> None:
    fix = write(
        tmp_path,
        "fix.csv",
        "product_id,ds,units,price,promo\nA1,2025-01-02,7,2.10,yes\nB2,2025-01-02,1,1.5,no\n",
    )
    assert load(loaded, "upsert", sales=fix) == {"sales": TableChange(added=1, replaced=1)}
    sales = table(loaded, "sales")
    assert sales.rows() == [
        ("A1", dt.date(2025, 1, 1), 2.0, 2.0, False, False),  # untouched
        ("A1", dt.date(2025, 1, 2), 7.0, 2.1, True, False),  # replaced
        ("B2", dt.date(2025, 1, 1), 1.0, 1.5, False, False),
        ("B2", dt.date(2025, 1, 2), 1.0, 1.5, False, False),  # added
    ]


def test_upsert_changes_only_the_named_products_and_the_values_given(
    loaded: Path, tmp_path: Path
) -> None:
    before = table(loaded, "products")
    # A new cost for A1 (category, prices kept), a delisting of B2, and a new product.
    update = write(
        tmp_path,
        "update.csv",
        "product_id,unit_cost,is_active,current_price\nA1,1.20,,\nB2,,false,\nC3,0.50,,1.00\n",
    )
    assert load(loaded, "upsert", products=update) == {"products": TableChange(added=1, replaced=2)}
    after = table(loaded, "products")
    a1, b2, c3 = (after.row(i, named=True) for i in range(3))
    assert a1 == {**before.row(0, named=True), "unit_cost": 1.2}
    assert b2 == {**before.row(1, named=True), "is_active": False}
    assert (c3["current_price"], c3["min_price"], c3["max_price"]) == (1.0, 0.7, 1.5)
    assert c3["launched_on"] is None and c3["is_active"]
    assert table(loaded, "sales").height == 3  # a delisting never deletes history
    with_cost = write(tmp_path, "nocost.csv", "product_id,is_active\nD4,true\n")
    refused(
        loaded,
        "upsert",
        "nocost.csv row 1: check 'unit_cost_numeric' failed: unit_cost is empty (a new product "
        "needs its unit_cost)",
        products=with_cost,
    )


def test_an_update_is_checked_as_a_whole_row(loaded: Path, tmp_path: Path) -> None:
    # A1's stored max_price is 3.00: a cost above it cannot be priced.
    dear = write(tmp_path, "dear.csv", "product_id,unit_cost\nB2,0.9\nA1,3.5\n")
    refused(
        loaded,
        "upsert",
        "dear.csv row 2: check 'unit_cost_below_max_price' failed: unit_cost 3.5 is above "
        "max_price 3.0: no allowed price covers the cost",
        products=dear,
    )


# --------------------------------------------------------------------------- replace


def test_replace_reports_what_it_drops_and_keeps_the_other_table(
    loaded: Path, tmp_path: Path
) -> None:
    products_before = table(loaded, "products")
    only_a1 = write(tmp_path, "a1.csv", "product_id,ds,units,price\nA1,2025-01-02,3,2.20\n")
    changes = load(loaded, "replace", sales=only_a1)
    assert changes == {"sales": TableChange(added=0, replaced=1, dropped=2)}
    assert table(loaded, "sales").height == 1
    assert table(loaded, "products").equals(products_before)
    assert loading.describe(changes, "replace", loaded) == [
        f"loaded into {loaded} (replace): sales 0 added, 1 replaced",
        "replace dropped 2 sales rows the files did not have",
    ]


def test_replacing_products_never_orphans_the_kept_sales(loaded: Path, tmp_path: Path) -> None:
    only_a1 = write(tmp_path, "pa.csv", "product_id,unit_cost\nA1,1.0\n")
    refused(
        loaded,
        "replace",
        "pa.csv: check 'sales_product_known' failed: the warehouse has sales of product 'B2' "
        "(from 2025-01-01) that pa.csv lacks: --mode replace keeps the sales, so list every "
        "product (is_active false delists one)",
        products=only_a1,
    )


def test_replacing_both_tables_checks_the_sales_against_the_new_products_only(
    loaded: Path, tmp_path: Path
) -> None:
    sales = write(tmp_path, "s.csv", SALES)
    products = write(tmp_path, "pa.csv", "product_id,unit_cost\nA1,1.0\n")
    refused(
        loaded,
        "replace",
        "s.csv row 3: check 'sales_product_known' failed: product 'B2' is not in pa.csv: add the "
        "product (--products) or remove its sales",
        sales=sales,
        products=products,
    )


def test_replace_drops_the_demo_truth_append_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "pricing.duckdb"
    world = synth.generate_world(n_products=3, n_days=40, seed=2)
    wh.write_inputs(path, world.products, world.sales, world.truth)
    last = world.sales["ds"].max()
    day = world.sales.filter(pl.col("ds") == last).with_columns(ds=last + dt.timedelta(days=1))
    day.write_csv(tmp_path / "day.csv")
    load(path, "append", sales=tmp_path / "day.csv")
    assert wh.read_truth(path) is not None
    world.sales.write_csv(tmp_path / "all.csv")
    changes = load(path, "replace", sales=tmp_path / "all.csv")
    assert changes["sales"] == TableChange(added=0, replaced=world.sales.height, dropped=3)
    assert wh.read_truth(path) is None


# --------------------------------------------------------------------------- the command


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_the_command_prints_its_lines_and_refuses_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "pricing.duckdb"
    sales, products = write(tmp_path, "s.csv", SALES), write(tmp_path, "p.csv", PRODUCTS)
    result = invoke(
        "load", "--sales", str(sales), "--products", str(products), "--warehouse", str(path)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"loaded into {path} (append): products 2 added; sales 3 added"
    ]
    for args, message in (
        ((), "error: nothing to load: give --sales FILE, --products FILE or both"),
        (
            ("--sales", str(sales), "--mode", "merge"),
            "error: unknown load mode 'merge': use one of append, upsert, replace",
        ),
        (
            ("--sales", str(sales)),
            "error: s.csv row 1: check 'unique_product_day' failed: product_id A1, ds 2025-01-01 "
            "is already in the warehouse: use --mode upsert to replace it, or --mode replace to "
            "replace the table",
        ),
    ):
        result = invoke("load", *args, "--warehouse", str(path))
        assert result.exit_code == 1 and result.stderr.splitlines() == [message]


# --------------------------------------------------------------------------- nightly replay

# A world whose nights change prices (not only holds), whether 3 or 30 nights are replayed.
REPLAY_PRODUCTS, REPLAY_DAYS, REPLAY_SEED = 8, 400, 2
# Columns that name the run, not the recommendation.
RUN_COLUMNS = ("run_id", "model_version", "run_finished_at")


def recommendations(path: Path) -> pl.DataFrame:
    recs = wh.query_readonly(path, "select * from latest_recommendations order by product_id")
    return recs.drop([c for c in RUN_COLUMNS if c in recs.columns])


@pytest.mark.slow
def test_replay_appending_one_day_a_night_matches_replacing_everything(
    tmp_path: Path, prefect_harness: None
) -> None:
    from flows.nightly import nightly

    nights = int(os.environ.get("PRICING_REPLAY_NIGHTS", "3"))
    world = synth.generate_world(REPLAY_PRODUCTS, REPLAY_DAYS, REPLAY_SEED)
    days = sorted(world.sales["ds"].unique())
    products = tmp_path / "products.csv"
    world.products.write_csv(products)
    history = tmp_path / "history.csv"
    world.sales.filter(pl.col("ds") < days[-nights]).write_csv(history)
    incremental, whole = tmp_path / "inc" / "pricing.duckdb", tmp_path / "whole" / "pricing.duckdb"
    load(incremental, "replace", sales=history, products=products)
    same, changes = 0, 0
    for day in days[-nights:]:
        today = tmp_path / f"sales-{day}.csv"
        rows = world.sales.filter(pl.col("ds") == day)
        rows.write_csv(today)
        assert load(incremental, "append", sales=today)["sales"].added == rows.height
        everything = tmp_path / "everything.csv"
        world.sales.filter(pl.col("ds") <= day).write_csv(everything)
        load(whole, "replace", sales=everything, products=products)
        runs = [nightly(warehouse_path=str(p), epochs=1) for p in (incremental, whole)]
        assert runs[0]["as_of"] == runs[1]["as_of"] == str(day + dt.timedelta(days=1))
        recs = recommendations(incremental)
        assert recs.equals(recommendations(whole)), day
        same += 1
        changes += runs[0]["n_changes"]
    print(
        f"\nreplay: {same} of {nights} nights gave the same recommendations either way "
        f"({changes} price changes among them)"
    )
    assert same == nights and changes > 0  # not a comparison of holds only
