"""`pricing load`: a user's sales and products files into the warehouse, whole or incrementally.

A shop's nightly ETL sends yesterday's sales and the few catalogue rows that changed (a new cost, a
new product, a delisting), not two years of history. Modes, per file given:

- `append` (the default): new rows only; a (product_id, ds) or product_id already in the
  warehouse fails the load.
- `upsert`: new rows are added, rows with a key already there replace it; a product row changes
  only the values it gives (an empty cell or an absent column keeps the warehouse's value).
- `replace`: the table is emptied first.

No mode deletes history: a delisting is an upsert with `is_active` false. `replace` keeps the
other table as it is, so it refuses a products file that lacks a product the kept sales refer
to; it reports how many rows it dropped. The file checks are `pipeline/ingest.py`'s; the checks
that need the warehouse (sales of an unknown product, a key already there) run inside the load's
transaction (`warehouse.load_inputs`), so everything is written or nothing is, and every refusal
is one line naming the file, the row and the check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline import ingest
from pipeline import warehouse as wh
from pipeline.config import PricingConfig
from pipeline.contract import PRODUCTS_REQUIRED
from pipeline.ingest import InputError
from pipeline.warehouse.inputs import LOAD_MODES, InputsView, LoadFrames, TableChange

DEFAULT_MODE = "append"


@dataclass(frozen=True)
class LoadFiles:
    """A load's files, read and checked on their own (before the warehouse is opened)."""

    mode: str
    sales: pl.DataFrame | None  # validated, in file order
    sales_name: str
    products: pl.DataFrame | None  # parsed (`ingest.parse_products`), in file order
    products_name: str


def read_files(sales: Path | None, products: Path | None, mode: str) -> LoadFiles:
    """Read and check the files on their own: every per-row check of `pipeline/ingest.py`.

    Raises:
        InputError: no file given, an unknown mode, or a file fails a check (one line).
    """
    if mode not in LOAD_MODES:
        raise InputError(f"unknown load mode {mode!r}: use one of {', '.join(LOAD_MODES)}")
    if sales is None and products is None:
        raise InputError("nothing to load: give --sales FILE, --products FILE or both")
    sales_frame = None
    if sales is not None:
        raw = ingest.read_table_file(sales)
        sales_frame = ingest.validate_sales(raw, sales.name, keep_order=True)
    parsed = None
    if products is not None:
        # An update may name only the columns it changes (a delisting: product_id, is_active).
        required = ("product_id",) if mode == "upsert" else PRODUCTS_REQUIRED
        parsed = ingest.parse_products(ingest.read_table_file(products), products.name, required)
    return LoadFiles(
        mode,
        sales_frame,
        sales.name if sales else "",
        parsed,
        products.name if products else "",
    )


def _first_row(hits: pl.Series) -> int | None:
    """The 1-based file row of the first true value, or None."""
    found = hits.arg_true()
    return int(found[0]) + 1 if found.len() else None


def _refuse_known(files: LoadFiles, view: InputsView) -> None:
    """Append adds only: a product or sales key already in the warehouse fails the load."""
    advice = "use --mode upsert to replace it, or --mode replace to replace the table"
    if files.products is not None:
        ids = files.products["product_id"]
        row = _first_row(view.keys_present("products", files.products))
        if row is not None:
            raise InputError(
                f"{files.products_name} row {row}: check 'unique_product_id' failed: product_id "
                f"{ids[row - 1]} is already in the warehouse: {advice}"
            )
    if files.sales is not None:
        row = _first_row(view.keys_present("sales", files.sales))
        if row is not None:
            key = files.sales.row(row - 1, named=True)
            raise InputError(
                f"{files.sales_name} row {row}: check 'unique_product_day' failed: product_id "
                f"{key['product_id']}, ds {key['ds']} is already in the warehouse: {advice}"
            )


def _history(files: LoadFiles, view: InputsView, ids: pl.Series) -> pl.DataFrame:
    """Sales history of `ids` after the load: the warehouse's kept rows, then the file's."""
    parts = []
    if not (files.mode == "replace" and files.sales is not None):
        parts.append(view.sales_history(ids))
    if files.sales is not None:
        parts.append(ingest.sales_history(files.sales))
    ordered = [part.with_columns(_order=pl.lit(n)) for n, part in enumerate(parts)]
    both = pl.concat(ordered, how="vertical_relaxed")
    # A file's row replaces (upsert) or follows the warehouse's: on the same last day, it wins.
    return both.group_by("product_id").agg(
        pl.col("first_day").min(),
        pl.col("last_day").max(),
        pl.col("last_price").sort_by("last_day", "_order").last(),
    )


def _products(files: LoadFiles, view: InputsView, pricing: PricingConfig) -> pl.DataFrame | None:
    if files.products is None:
        return None
    ids = files.products["product_id"]
    existing = view.products(ids) if files.mode == "upsert" else None
    history = _history(files, view, ids)
    return ingest.complete_products(files.products, files.products_name, history, pricing, existing)


def _check_references(files: LoadFiles, view: InputsView) -> None:
    """Every sales row after the load refers to a product the warehouse will have."""
    replacing_products = files.mode == "replace" and files.products is not None
    if files.sales is not None:
        known, names = [], []
        if files.products is not None:
            known.append(files.products["product_id"])
            names.append(files.products_name)
        if not replacing_products:
            known.append(view.product_ids())
            names.append("the warehouse")
        ids = pl.concat([part.cast(pl.String) for part in known])
        ingest.check_sales_known(files.sales, files.sales_name, ids, " or ".join(names))
    elif files.products is not None and replacing_products:
        orphan = view.first_sale_outside(files.products["product_id"])
        if orphan is not None:
            raise InputError(
                f"{files.products_name}: check 'sales_product_known' failed: the warehouse has "
                f"sales of product {orphan['product_id']!r} (from {orphan['ds']}) that "
                f"{files.products_name} lacks: --mode replace keeps the sales, so list every "
                "product (is_active false delists one)"
            )


def _preparer(files: LoadFiles, pricing: PricingConfig) -> Callable[[InputsView], LoadFrames]:
    def prepare(view: InputsView) -> LoadFrames:
        if files.mode == "append":
            _refuse_known(files, view)
        _check_references(files, view)
        return LoadFrames(products=_products(files, view, pricing), sales=files.sales)

    return prepare


def load_files(
    path: Path,
    pricing: PricingConfig,
    sales: Path | None = None,
    products: Path | None = None,
    mode: str = DEFAULT_MODE,
) -> dict[str, TableChange]:
    """Check the files and write them into the warehouse in `mode`, all or nothing.

    Args:
        path: the warehouse file (created if missing).
        pricing: gives the default min/max price factors of new products.
        sales: a sales CSV or Parquet file, or None.
        products: a products CSV or Parquet file, or None.
        mode: append, upsert or replace (see the module's docstring).

    Returns:
        What changed per table written ("products", "sales").

    Raises:
        InputError: a file fails a check (one line naming file, row and check); nothing written.
        WarehouseError: the warehouse cannot be written (nothing written).
    """
    files = read_files(sales, products, mode)
    return wh.load_inputs(path, mode, _preparer(files, pricing))


def describe(changes: dict[str, TableChange], mode: str, path: Path) -> list[str]:
    """The lines `pricing load` prints: what changed per table, and what `replace` dropped."""
    parts = []
    for table, change in changes.items():
        counts = [f"{change.added:,} added"]
        if mode != "append":
            counts.append(f"{change.replaced:,} {'replaced' if table == 'sales' else 'updated'}")
        parts.append(f"{table} {', '.join(counts)}")
    lines = [f"loaded into {path} ({mode}): {'; '.join(parts)}"]
    if mode == "replace":
        dropped = [f"{c.dropped:,} {table} rows" for table, c in changes.items()]
        lines.append(
            f"replace dropped {' and '.join(dropped)} the files did not have"
            if any(c.dropped for c in changes.values())
            else "replace dropped nothing: every row was in the files"
        )
    return lines


__all__ = ["DEFAULT_MODE", "LOAD_MODES", "LoadFiles", "describe", "load_files", "read_files"]
