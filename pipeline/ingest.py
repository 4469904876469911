"""Validation of a user's own products and sales files for `pricing load` (pure polars, no I/O
beyond reading the file).

Every problem raises `InputError` with one line naming the file, the row and the check that failed,
e.g. ``sales.csv row 17: check 'price_positive' failed: price -2.0 must be > 0``. Row numbers count
data rows from 1 in the order of the file; the header line is not counted (so row 1 is the file's
second line in a CSV). Values are read as text first so that a bad value is reported where it is,
instead of making a whole column fail to parse.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import polars as pl

from pipeline.config import PricingConfig
from pipeline.contract import (
    DEFAULT_CATEGORY,
    PRODUCT_COLUMNS,
    PRODUCTS_REQUIRED,
    SALES_COLUMNS,
    SALES_KEY,
    SALES_REQUIRED,
)
from pipeline.errors import UserError, first_line

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_READERS: dict[str, Callable[[Path], pl.DataFrame]] = {
    ".csv": lambda path: pl.read_csv(path, infer_schema=False),
    ".parquet": pl.read_parquet,
    ".pq": pl.read_parquet,
}


class InputError(UserError, ValueError):
    """A problem in the user's input files; the message is one line naming file, row and check.

    Row numbers are 1-based data rows: the header is not counted.
    """


def read_table_file(path: Path) -> pl.DataFrame:
    """Read a CSV (.csv, every column as text) or Parquet (.parquet, .pq) file.

    Raises:
        InputError: the file is missing, has another suffix, or cannot be read.
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(
            f"{path.name}: unsupported file type '{path.suffix}': give a .csv or .parquet file"
        )
    if not path.is_file():
        raise InputError(f"{path.name}: file not found at {path}: check the path")
    try:
        return reader(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        kind = path.suffix.lstrip(".").upper()
        raise InputError(
            f"{path.name}: cannot be read as {kind} ({first_line(exc)}): "
            "check the file is not damaged and has a header row"
        ) from None


# --- checks --------------------------------------------------------------------------------------


def _fail(source: str, row: int, check: str, detail: str) -> NoReturn:
    raise InputError(f"{source} row {row}: check '{check}' failed: {detail}")


def _check(source: str, bad: pl.Series, check: str, describe: Callable[[int], str]) -> None:
    """Fail on the first row where `bad` is true; `describe` gets that row's 0-based index."""
    hits = bad.fill_null(False).arg_true()
    if hits.len() > 0:
        index = int(hits[0])
        _fail(source, index + 1, check, describe(index))


def _require_columns(
    frame: pl.DataFrame, source: str, required: tuple[str, ...], known: tuple[str, ...]
) -> None:
    for column in required:
        if column not in frame.columns:
            raise InputError(
                f"{source}: missing required column '{column}' (required: {', '.join(required)})"
            )
    unknown = [column for column in frame.columns if column not in known]
    if unknown:
        # A misspelt optional column would otherwise silently fall back to its default.
        raise InputError(
            f"{source}: unknown column '{unknown[0]}' (known: {', '.join(known)}): "
            "rename or drop it"
        )


def _text(frame: pl.DataFrame, column: str) -> pl.Series:
    """The column as stripped text, empty cells as null (all nulls when the column is absent)."""
    if column not in frame.columns:
        return pl.repeat(None, frame.height, dtype=pl.String, eager=True).alias(column)
    text = frame[column].cast(pl.String).str.strip_chars()
    return text.set(text == "", None)


def _number(frame: pl.DataFrame, column: str, source: str, required: bool) -> pl.Series:
    """Parse a column as finite floats; an empty cell is null, or a failure when required."""
    dtype = frame.schema.get(column)
    # Typed (Parquet) numbers skip the round trip through text, which costs seconds at 7M rows.
    raw = frame[column] if dtype is not None and dtype.is_numeric() else _text(frame, column)
    values = raw.cast(pl.Float64, strict=False)
    bad = (raw.is_not_null() & (values.is_null() | ~values.is_finite())) | (
        raw.is_null() & required
    )

    def describe(index: int) -> str:
        shown = raw[index]
        if shown is None:
            return f"{column} is empty"
        return f"{column} {shown!r} is not a finite number"

    _check(source, bad, f"{column}_numeric", describe)
    return values.alias(column)


def _at_least(source: str, values: pl.Series, minimum: float, strict: bool) -> None:
    """Check a lower bound; the check is named `<column>_positive` or `<column>_non_negative`."""
    bad = values <= minimum if strict else values < minimum
    check = f"{values.name}_{'positive' if strict else 'non_negative'}"
    sign = ">" if strict else ">="
    _check(source, bad, check, lambda i: f"{values.name} {values[i]} must be {sign} {minimum:g}")


def _integer(frame: pl.DataFrame, column: str, source: str) -> pl.Series:
    values = _number(frame, column, source, required=False)
    bad = values.round(0) != values
    _check(
        source, bad, f"{column}_integer", lambda i: f"{column} {values[i]} is not a whole number"
    )
    return values.cast(pl.Int32)


def _date(frame: pl.DataFrame, column: str, source: str, required: bool) -> pl.Series:
    """Parse ISO dates (YYYY-MM-DD); Parquet date or datetime columns are taken as they are."""
    dtype = frame.schema.get(column)
    if dtype == pl.Date:
        values = frame[column]
    elif isinstance(dtype, pl.Datetime):
        values = frame[column].dt.date()
    else:
        text = _text(frame, column)
        values = text.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        _check(
            source,
            text.is_not_null() & values.is_null(),
            f"{column}_date",
            lambda i: f"{column} {text[i]!r} is not a date like 2024-01-31",
        )
    _check(source, values.is_null() & required, f"{column}_date", lambda i: f"{column} is empty")
    return values.alias(column)


def _boolean(frame: pl.DataFrame, column: str, source: str, default: bool) -> pl.Series:
    """Parse true/false, 1/0 or yes/no (any case); an absent column or empty cell is `default`."""
    text = _text(frame, column).str.to_lowercase()
    bad = text.is_not_null() & ~text.is_in([*_TRUE, *_FALSE])
    _check(
        source,
        bad,
        f"{column}_boolean",
        lambda i: f"{column} {text[i]!r} is not one of {', '.join(_TRUE + _FALSE)}",
    )
    return text.is_in(_TRUE).set(text.is_null(), default).alias(column)


def _product_ids(frame: pl.DataFrame, source: str) -> pl.Series:
    ids = _text(frame, "product_id")
    _check(source, ids.is_null(), "product_id_non_empty", lambda i: "product_id is empty")
    return ids


def _unique(source: str, frame: pl.DataFrame, keys: list[str], check: str) -> None:
    """Fail on the first row (in file order) whose key an earlier row already had."""
    # A stable sort puts equal keys next to each other in file order: much faster than hashing
    # a struct of the keys, and it finds both occurrences at once.
    ordered = frame.select(keys).with_row_index("_row").sort(keys, maintain_order=True)
    same_as_previous = pl.all_horizontal(pl.col(k) == pl.col(k).shift(1) for k in keys)
    repeats = ordered.filter(same_as_previous)
    if repeats.height == 0:
        return
    second = repeats.sort("_row").row(0, named=True)
    match = pl.all_horizontal(pl.col(k) == second[k] for k in keys)
    first = int(ordered.filter(match)["_row"].min())  # type: ignore[arg-type]
    shown = ", ".join(f"{k} {second[k]}" for k in keys)
    _fail(source, second["_row"] + 1, check, f"{shown} already appears in row {first + 1}")


# --- sales ---------------------------------------------------------------------------------------


def validate_sales(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Check and normalise a sales table read by `read_table_file`.

    Args:
        frame: columns product_id, ds, units, price and optionally promo, stockout (default
            false; true/false, 1/0 or yes/no).
        source: the file name used in messages (e.g. "sales.csv").

    Returns:
        product_id (Utf8), ds (Date), units, price (Float64), promo, stockout (Boolean), sorted by
        product_id, ds.

    Raises:
        InputError: naming the row and the check (product_id_non_empty, ds_date, units_numeric,
            units_non_negative, price_numeric, price_positive, promo_boolean, stockout_boolean,
            unique_product_day).
    """
    _require_columns(frame, source, SALES_REQUIRED, SALES_COLUMNS)
    product_id = _product_ids(frame, source)
    ds = _date(frame, "ds", source, required=True)
    units = _number(frame, "units", source, required=True)
    _at_least(source, units, 0.0, strict=False)
    price = _number(frame, "price", source, required=True)
    _at_least(source, price, 0.0, strict=True)
    promo = _boolean(frame, "promo", source, default=False)
    stockout = _boolean(frame, "stockout", source, default=False)
    sales = pl.DataFrame([product_id, ds, units, price, promo, stockout])
    _unique(source, sales, list(SALES_KEY), "unique_product_day")
    return sales.sort("product_id", "ds")


# --- products ------------------------------------------------------------------------------------


def _check_sales_known(source: str, product_ids: pl.Series, sales: pl.DataFrame) -> None:
    """Sales of a product the catalogue lacks would be trained on but never priced."""
    unknown = sales.filter(~pl.col("product_id").is_in(product_ids.implode()))
    if unknown.height:
        row = unknown.row(0, named=True)
        raise InputError(
            f"{source}: check 'sales_product_known' failed: the sales row of product "
            f"{row['product_id']!r} on {row['ds']} has no product in {source}: "
            "add the product or remove its sales"
        )


def _parse_products(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Parse every given column; absent optional columns come back as nulls or defaults."""
    product_id = _product_ids(frame, source)
    numbers = {}
    for column, required, strict in (
        ("unit_cost", True, False),
        ("current_price", False, True),
        ("min_price", False, True),
        ("max_price", False, True),
    ):
        numbers[column] = _number(frame, column, source, required)
        _at_least(source, numbers[column], 0.0, strict)
    name = _text(frame, "name")
    return pl.DataFrame(
        [
            product_id,
            name.fill_null(product_id),
            _text(frame, "category").fill_null(DEFAULT_CATEGORY),
            _text(frame, "family_id"),
            _integer(frame, "size_rank", source),
            *numbers.values(),
            _boolean(frame, "is_active", source, default=True),
            _boolean(frame, "is_kvi", source, default=False),
            _date(frame, "launched_on", source, required=False),
        ]
    )


def _fill_from_sales(
    products: pl.DataFrame, sales: pl.DataFrame, pricing: PricingConfig
) -> pl.DataFrame:
    """Default current_price (last price paid), min/max price (factors, cents) and launched_on."""
    history = sales.group_by("product_id").agg(
        pl.col("price").sort_by("ds").last().alias("_last_price"),
        pl.col("ds").min().alias("_first_day"),
    )
    filled = (
        products.with_row_index("_row")
        .join(history, on="product_id", how="left")
        .sort("_row")
        .with_columns(
            pl.col("current_price").fill_null(pl.col("_last_price")),
            pl.col("launched_on").fill_null(pl.col("_first_day")),
        )
    )
    return filled.with_columns(
        pl.col("min_price").fill_null(
            (pl.col("current_price") * pricing.default_min_price_factor).round(2)
        ),
        pl.col("max_price").fill_null(
            (pl.col("current_price") * pricing.default_max_price_factor).round(2)
        ),
    )


def validate_products(
    frame: pl.DataFrame, source: str, sales: pl.DataFrame, pricing: PricingConfig
) -> pl.DataFrame:
    """Check a product table against itself and the validated sales, and fill the defaults.

    Args:
        frame: product_id and unit_cost, optionally name (default product_id), category
            ('uncategorised'), family_id, size_rank, current_price (the last price paid in sales),
            min_price / max_price (pricing's default factors x current_price, in cents),
            is_active (true), is_kvi (false), launched_on (the first day with sales).
        source: the file name used in messages (e.g. "products.csv").
        sales: the output of `validate_sales`.
        pricing: gives the default min/max price factors.

    Returns:
        Exactly PRODUCT_COLUMNS, in order, sorted by product_id.

    Raises:
        InputError: naming the row and the check (unique_product_id, unit_cost_numeric,
            unit_cost_non_negative, <price>_numeric, <price>_positive, size_rank_integer,
            sales_product_known, current_price_known, price_bounds, unit_cost_below_max_price).
    """
    _require_columns(frame, source, PRODUCTS_REQUIRED, PRODUCT_COLUMNS)
    products = _parse_products(frame, source)
    _unique(source, products, ["product_id"], "unique_product_id")
    _check_sales_known(source, products["product_id"], sales)
    filled = _fill_from_sales(products, sales, pricing)

    def column(name: str) -> pl.Series:
        return filled[name]

    _check(
        source,
        column("current_price").is_null(),
        "current_price_known",
        lambda i: (
            f"product {column('product_id')[i]!r} has no sales and no current_price: "
            "give its current_price"
        ),
    )
    _check(
        source,
        column("min_price") > column("max_price"),
        "price_bounds",
        lambda i: f"min_price {column('min_price')[i]} is above max_price {column('max_price')[i]}",
    )
    _check(
        source,
        column("unit_cost") > column("max_price"),
        "unit_cost_below_max_price",
        lambda i: (
            f"unit_cost {column('unit_cost')[i]} is above max_price "
            f"{column('max_price')[i]}: no allowed price covers the cost"
        ),
    )
    return filled.select(PRODUCT_COLUMNS).sort("product_id")


__all__ = [
    "InputError",
    "read_table_file",
    "validate_products",
    "validate_sales",
]
