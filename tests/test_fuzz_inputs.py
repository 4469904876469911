"""Fuzzed input files: generated from the data contract, damaged, loaded with `pricing load`.

For every damage kind of tests/damage.py, hypothesis draws clean sales or product rows (awkward
product ids, quotes, separators and non-ASCII text inside values, extreme numbers), the damage
turns them into a file, and the file is appended to a copy of a small warehouse. Each file must be
either loaded exactly (the warehouse then holds exactly the clean rows) or refused with one line
naming the file, the row (where the damage has one) and the check, the warehouse unchanged. Any
other exception fails the test. The counts of files tried per kind go to the session's reliability
report (tests/conftest.py). `PRICING_FUZZ_EXAMPLES=200` draws more files per kind and table
(default 1; 6 in the slow run).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import loading
from pipeline import warehouse as wh
from pipeline.config import PricingConfig
from pipeline.ingest import InputError
from tests.damage import (
    DAMAGES,
    FIRST_NEW_DAY,
    KNOWN_IDS,
    LATIN1_IDS,
    LATIN1_KINDS,
    DamagedFile,
    typed_products,
    typed_sales,
)

EXAMPLES = int(os.environ.get("PRICING_FUZZ_EXAMPLES", "1"))
LATIN1_TEXT = "abcXYZ019 ,;\"'-éüßÅ"
ANY_TEXT = LATIN1_TEXT + "\t漢字☕🍎"


# --------------------------------------------------------------------------- clean rows


def _label(alphabet: str, prefix: str) -> st.SearchStrategy[str]:
    # Values are stripped when read (" A1 " is "A1"), so a label never starts or ends in space.
    return st.text(alphabet, max_size=8).map(lambda text: f"{prefix}{text}".strip())


def sales_rows(ids: tuple[str, ...]) -> st.SearchStrategy[pl.DataFrame]:
    """1-12 sales rows of known products on days after the warehouse's history."""
    units = st.one_of(
        st.integers(0, 500).map(float), st.floats(0, 1e6), st.sampled_from([0.0, 1e-300])
    )
    price = st.one_of(st.floats(0.01, 1e4), st.sampled_from([1e-300, 0.01, 9999.99]))
    keys = st.lists(
        st.tuples(st.sampled_from(ids), st.integers(0, 60)), min_size=1, max_size=12, unique=True
    )

    def rows(chosen: list[tuple[str, int]]) -> st.SearchStrategy[pl.DataFrame]:
        drawn = [
            st.fixed_dictionaries(
                {
                    "product_id": st.just(pid),
                    "ds": st.just(FIRST_NEW_DAY + dt.timedelta(days=day)),
                    "units": units,
                    "price": price,
                    "promo": st.booleans(),
                    "stockout": st.booleans(),
                }
            )
            for pid, day in chosen
        ]
        return st.tuples(*drawn).map(lambda r: typed_sales(list(r)))

    return keys.flatmap(rows)


@st.composite
def product_rows(draw: st.DrawFn, alphabet: str) -> pl.DataFrame:
    """1-6 new products with every column given and consistent prices."""
    n = draw(st.integers(1, 6))
    rows = []
    for i in range(n):
        price = draw(st.floats(0.05, 1e4))
        rows.append(
            {
                "product_id": draw(_label(alphabet, f"N{i}-")),
                "name": draw(_label(alphabet, "name ")),
                "category": draw(_label(alphabet, "c-")),
                "family_id": draw(st.none() | _label(alphabet, "F")),
                "size_rank": draw(st.none() | st.integers(1, 9)),
                "unit_cost": price * draw(st.floats(0, 0.99)),
                "current_price": price,
                "min_price": price * draw(st.floats(0.5, 1.0)),
                "max_price": price * draw(st.floats(1.0, 2.0)),
                "is_active": draw(st.booleans()),
                "is_kvi": draw(st.booleans()),
                "launched_on": draw(st.none() | st.dates(dt.date(2020, 1, 1), dt.date(2025, 1, 1))),
            }
        )
    return typed_products(rows)


# --------------------------------------------------------------------------- the warehouse


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with the known products and ten days of their sales, copied per file."""
    path = tmp_path_factory.mktemp("fuzz") / "pricing.duckdb"
    days = [FIRST_NEW_DAY - dt.timedelta(days=d) for d in range(1, 11)]
    sales = typed_sales(
        [
            {
                "product_id": pid,
                "ds": day,
                "units": 3.0,
                "price": 2.5,
                "promo": False,
                "stockout": False,
            }
            for pid in KNOWN_IDS
            for day in days
        ]
    )
    products = pl.DataFrame(
        {"product_id": list(KNOWN_IDS), "unit_cost": [1.0] * len(KNOWN_IDS)}
    ).with_columns(
        name=pl.col("product_id"), category=pl.lit("known"), current_price=pl.lit(2.5),
        min_price=pl.lit(1.5), max_price=pl.lit(4.0), is_active=pl.lit(True),
        is_kvi=pl.lit(False), launched_on=pl.lit(days[-1]),
    )  # fmt: skip
    wh.write_inputs(path, typed_products(products.to_dicts()), sales)
    return path


def snapshot(path: Path) -> dict[str, pl.DataFrame]:
    return {
        "products": wh.query_readonly(path, "select * from products order by product_id"),
        "sales": wh.query_readonly(path, "select * from sales order by product_id, ds"),
    }


def loaded_rows(path: Path, table: str) -> pl.DataFrame:
    if table == "sales":
        return wh.query_readonly(
            path, "select * from sales where ds >= ? order by product_id, ds", [FIRST_NEW_DAY]
        )
    known = list(KNOWN_IDS)
    return wh.query_readonly(
        path,
        "select * from products where product_id not in (select unnest(?::varchar[])) "
        "order by product_id",
        [known],
    )


@functools.cache
def template_rows(template: Path) -> dict[str, pl.DataFrame]:
    return snapshot(template)


def try_load(template: Path, table: str, clean: pl.DataFrame, damaged: DamagedFile) -> str:
    """Load the file into a copy of the template; check the outcome; returns 'loaded'/'refused'."""
    before = template_rows(template)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pricing.duckdb"
        shutil.copyfile(template, path)
        shutil.copyfile(wh.analyst_path(template), wh.analyst_path(path))
        file = Path(folder) / f"{table}{damaged.suffix}"
        file.write_bytes(damaged.content)
        try:
            loading.load_files(path, PricingConfig(), mode="append", **{table: file})
        except InputError as exc:
            check_refusal(str(exc), file.name, damaged)
            after = snapshot(path)
            assert all(after[name].equals(frame) for name, frame in before.items())
            return "refused"
        assert damaged.check is None, f"loaded a file that check {damaged.check!r} must refuse"
        order = ["product_id", "ds"] if table == "sales" else ["product_id"]
        expected = clean if damaged.rows is None else damaged.rows
        assert loaded_rows(path, table).equals(expected.sort(order)), "loaded, but not exactly"
        return "loaded"


def check_refusal(message: str, name: str, damaged: DamagedFile) -> None:
    assert "\n" not in message and message.startswith(name), message
    found = re.match(rf"{re.escape(name)}(?: row (\d+))?: check '(\w+)' failed: ", message)
    assert found is not None, message
    assert damaged.check is not None, f"refused a file that must load: {message}"
    row, check = found.groups()
    assert check == damaged.check, message
    if damaged.row is not None:
        assert row is not None and int(row) == damaged.row, message


# --------------------------------------------------------------------------- the property


def _fuzz(kind: str, table: str, template: Path, ledger: Any, examples: int) -> None:
    latin = kind in LATIN1_KINDS
    clean_rows = (
        sales_rows(LATIN1_IDS if latin else KNOWN_IDS)
        if table == "sales"
        else product_rows(LATIN1_TEXT if latin else ANY_TEXT)
    )

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(clean=clean_rows, data=st.data())
    def run(clean: pl.DataFrame, data: st.DataObject) -> None:
        row = data.draw(st.integers(1, clean.height), label="damaged row")
        outcome = try_load(template, table, clean, DAMAGES[kind](clean, row))
        ledger.fuzzed(kind, outcome)

    run()


@pytest.mark.parametrize("table", ["sales", "products"])
@pytest.mark.parametrize("kind", list(DAMAGES))
def test_a_damaged_file_loads_exactly_or_is_refused_in_one_line(
    kind: str, table: str, template: Path, reliability_ledger: Any
) -> None:
    _fuzz(kind, table, template, reliability_ledger, EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(DAMAGES))
def test_more_damaged_files_of_every_kind(
    kind: str, template: Path, reliability_ledger: Any
) -> None:
    for table in ("sales", "products"):
        _fuzz(kind, table, template, reliability_ledger, max(EXAMPLES, 6))
