"""Validation of a user's own products and sales files for `pricing load` (pure polars; the files
are read by pipeline/inputfiles.py).

Every problem raises `InputError` with one line naming the file, the row and the check that failed,
e.g. ``sales.csv row 17: check 'price_positive' failed: price -2.0 must be > 0``. Row numbers count
data rows from 1 in the order of the file; the header line is not counted (so row 1 is the file's
second line in a CSV). Values are read as text first so that a bad value is reported where it is,
instead of making a whole column fail to parse.
"""

from __future__ import annotations

from collections.abc import Callable
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
from pipeline.inputfiles import InputError, read_table_file, refuse

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_INT32_MAX = 2**31 - 1


# --- checks --------------------------------------------------------------------------------------


def _fail(source: str, row: int, check: str, detail: str) -> NoReturn:
    refuse(source, check, detail, row=row)


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
            refuse(
                source,
                "required_columns",
                f"missing required column '{column}' (required: {', '.join(required)})",
            )
    unknown = [column for column in frame.columns if column not in known]
    if unknown:
        # A misspelt optional column would otherwise silently fall back to its default.
        refuse(
            source,
            "known_columns",
            f"unknown column '{unknown[0]}' (known: {', '.join(known)}): rename or drop it",
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
    # Stored as a 32-bit integer: a larger whole number would not fit.
    bad = (values.round(0) != values) | (values.abs() > _INT32_MAX)
    _check(
        source,
        bad,
        f"{column}_integer",
        lambda i: f"{column} {values[i]} is not a whole number of at most {_INT32_MAX:,}",
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


def _boolean(frame: pl.DataFrame, column: str, source: str, default: bool | None) -> pl.Series:
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


def validate_sales(frame: pl.DataFrame, source: str, keep_order: bool = False) -> pl.DataFrame:
    """Check and normalise a sales table read by `read_table_file`.

    Args:
        frame: columns product_id, ds, units, price and optionally promo, stockout (default
            false; true/false, 1/0 or yes/no).
        source: the file name used in messages (e.g. "sales.csv").
        keep_order: keep the file's row order (row i of the result is data row i + 1 of the
            file, for later checks that name rows) instead of sorting.

    Returns:
        product_id (Utf8), ds (Date), units, price (Float64), promo, stockout (Boolean), sorted by
        product_id, ds unless keep_order.

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
    return sales if keep_order else sales.sort("product_id", "ds")


def sales_history(sales: pl.DataFrame) -> pl.DataFrame:
    """Per product: its first and last day with sales and the price paid on the last day.

    What a product's defaults are filled from (launched_on, current_price); columns product_id,
    first_day, last_day, last_price.
    """
    return sales.group_by("product_id").agg(
        pl.col("ds").min().alias("first_day"),
        pl.col("ds").max().alias("last_day"),
        pl.col("price").sort_by("ds").last().alias("last_price"),
    )


def check_sales_known(sales: pl.DataFrame, source: str, known: pl.Series, where: str) -> None:
    """Every sales row's product is known; the first that is not fails, naming its row.

    Args:
        sales: validated sales in the file's order (`validate_sales(..., keep_order=True)`).
        source: the sales file's name.
        known: the product ids the sales may refer to.
        where: where those ids come from, for the message ("products.csv or the warehouse").
    """
    unknown = ~sales["product_id"].is_in(known.implode())
    _check(
        source,
        unknown,
        "sales_product_known",
        lambda i: (
            f"product {sales['product_id'][i]!r} is not in {where}: add the product "
            "(--products) or remove its sales"
        ),
    )


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


def parse_products(
    frame: pl.DataFrame, source: str, required: tuple[str, ...] = PRODUCTS_REQUIRED
) -> pl.DataFrame:
    """Parse a products table as given: PRODUCT_COLUMNS in file order, null where not given.

    No defaults are filled in (see `complete_products`): an empty cell or an absent column is
    null, so that an update can tell "not given" from a value.

    Args:
        frame: a table read by `read_table_file`.
        source: the file name used in messages.
        required: the columns the file must have (an update of known products needs only
            product_id).

    Raises:
        InputError: naming the row and the check (unique_product_id, unit_cost_numeric,
            unit_cost_non_negative, <price>_numeric, <price>_positive, size_rank_integer,
            is_active_boolean, is_kvi_boolean, launched_on_date).
    """
    _require_columns(frame, source, required, PRODUCT_COLUMNS)
    product_id = _product_ids(frame, source)
    numbers = {}
    for column, strict in (
        ("unit_cost", False),
        ("current_price", True),
        ("min_price", True),
        ("max_price", True),
    ):
        # A required column must also be filled in on every row.
        numbers[column] = _number(frame, column, source, required=column in required)
        _at_least(source, numbers[column], 0.0, strict)
    products = pl.DataFrame(
        [
            product_id,
            _text(frame, "name"),
            _text(frame, "category"),
            _text(frame, "family_id"),
            _integer(frame, "size_rank", source),
            *numbers.values(),
            _boolean(frame, "is_active", source, default=None),
            _boolean(frame, "is_kvi", source, default=None),
            _date(frame, "launched_on", source, required=False),
        ]
    )
    _unique(source, products, ["product_id"], "unique_product_id")
    return products


def _merged(products: pl.DataFrame, existing: pl.DataFrame | None) -> pl.DataFrame:
    """Values not given for a product already in the warehouse keep the warehouse's."""
    if existing is None or existing.is_empty():
        return products
    kept = existing.select(PRODUCT_COLUMNS).rename(lambda c: f"_old_{c}")
    joined = products.join(
        kept, left_on="product_id", right_on="_old_product_id", how="left", maintain_order="left"
    )
    return joined.select(
        pl.col("product_id"),
        *(pl.coalesce(c, f"_old_{c}").alias(c) for c in PRODUCT_COLUMNS if c != "product_id"),
    )


def _with_defaults(
    products: pl.DataFrame, history: pl.DataFrame, pricing: PricingConfig
) -> pl.DataFrame:
    """Fill what is still missing: names, category, flags, and prices and launch from sales."""
    filled = products.join(
        history.select("product_id", "first_day", "last_price"),
        on="product_id",
        how="left",
        maintain_order="left",
    ).with_columns(
        pl.col("name").fill_null(pl.col("product_id")),
        pl.col("category").fill_null(DEFAULT_CATEGORY),
        pl.col("is_active").fill_null(True),
        pl.col("is_kvi").fill_null(False),
        pl.col("current_price").fill_null(pl.col("last_price")),
        pl.col("launched_on").fill_null(pl.col("first_day")),
    )
    return filled.with_columns(
        pl.col("min_price").fill_null(
            (pl.col("current_price") * pricing.default_min_price_factor).round(2)
        ),
        pl.col("max_price").fill_null(
            (pl.col("current_price") * pricing.default_max_price_factor).round(2)
        ),
    ).select(PRODUCT_COLUMNS)


def complete_products(
    products: pl.DataFrame,
    source: str,
    history: pl.DataFrame,
    pricing: PricingConfig,
    existing: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Fill a parsed products table's gaps and check each row as a whole.

    Args:
        products: the output of `parse_products`, in file order.
        source: the file name used in messages.
        history: `sales_history` of the sales these products will have (defaults for
            current_price and launched_on).
        pricing: gives the default min/max price factors.
        existing: warehouse rows of products being updated; what the file leaves empty keeps
            their values. Products not in it are new and get the defaults.

    Returns:
        Exactly PRODUCT_COLUMNS, in file order.

    Raises:
        InputError: naming the row and the check (unit_cost_numeric for a new product without
            cost, current_price_known, price_bounds, unit_cost_below_max_price).
    """
    filled = _with_defaults(_merged(products, existing), history, pricing)

    def column(name: str) -> pl.Series:
        return filled[name]

    _check(
        source,
        column("unit_cost").is_null(),
        "unit_cost_numeric",
        lambda i: "unit_cost is empty (a new product needs its unit_cost)",
    )
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
    return filled


def validate_products(
    frame: pl.DataFrame, source: str, sales: pl.DataFrame, pricing: PricingConfig
) -> pl.DataFrame:
    """Check a whole product table against itself and the validated sales; fill the defaults.

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
        InputError: naming the row and the check (those of `parse_products`,
            sales_product_known, and those of `complete_products`).
    """
    products = parse_products(frame, source)
    _check_sales_known(source, products["product_id"], sales)
    return complete_products(products, source, sales_history(sales), pricing).sort("product_id")


__all__ = [
    "InputError",
    "check_sales_known",
    "complete_products",
    "parse_products",
    "read_table_file",
    "sales_history",
    "validate_products",
    "validate_sales",
]
