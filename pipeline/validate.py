"""Checks of the warehouse's inputs on every run: quarantine bad rows, hold affected products.

`pricing load` refuses bad files before anything is written (pipeline/ingest.py), and the tables'
keys and NOT NULL constraints stop some rows, but a user's own ETL can still write a negative
price, NaN units, sales of a product the catalogue lacks or a minimum above the maximum straight
into the tables. A run must neither crash on such rows nor use them silently, so every run checks
what it read (pure polars, no I/O):

- Each failing row becomes one issue `(product_id, ds, check, detail)` (`ds` is null for product
  checks); the flow adds its run_id and writes them to `data_issues`.
- A sales row that fails a check is dropped before modelling: its day becomes unobserved, like any
  day without a sales row.
- A priced product with any issue except `gap` is held at its current price with a reason that
  names the checks (`hold` puts it first in the product table's `hold_reason`); the rest of the run
  goes on.

Checks (their names are the `check` column of `data_issues`):

| check | rows | holds |
|---|---|---|
| `units_missing`, `price_missing` | sales: null or NaN | yes |
| `units_non_negative`, `price_positive` | sales: units < 0, price <= 0 | yes |
| `non_finite` | sales units/price or a product's prices or cost: +-inf (products: also NaN) | yes |
| `unique_product_day` | every sales row of a (product_id, ds) that appears more than once | yes |
| `future_date` | sales dated after `latest_plausible_day` (today, UTC, plus one day) | yes |
| `sales_product_known` | sales of a product missing from the products table | nothing to hold |
| `gap` | one per run of missing days between a product's first and last sales day | no |
| `current_price_positive`, `unit_cost_non_negative` | products | yes |
| `price_bounds` (min > max), `unit_cost_below_max_price` (cost > max) | products | yes |

Dates: a sale cannot be dated after the day the run happens. Rows dated after today (UTC) plus one
day of slack, for shops east of UTC, are `future_date` issues and never move the default `as_of`.
Rows on or after a run's `as_of` but not in the future belong to a replayed night's horizon: they
are simply not history, and not an issue. Check names shared with `pricing load` mean the same.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from pipeline.contract import (
    CHECK_FUTURE_DATE,
    CHECK_GAP,
    CHECK_UNKNOWN_PRODUCT,
    DATA_ISSUE,
    NOT_HOLDING_CHECKS,
    PRODUCT_PRICES,
)
from pipeline.frames import format_text

ISSUE_SCHEMA: dict[str, pl.DataType] = {
    "product_id": pl.String(),
    "ds": pl.Date(),
    "check": pl.String(),
    "detail": pl.String(),
}
# Shops east of UTC may already be selling "tomorrow" in UTC terms.
FUTURE_SLACK = dt.timedelta(days=1)


@dataclass(frozen=True)
class Checked:
    """The outcome of the checks.

    Attributes:
        sales: the usable history: the input sales less every row that failed a check.
        issues: one row per failed check: product_id, ds, check, detail (no run_id yet).
        holds: product_id, hold_reason for every priced product with a holding issue.
    """

    sales: pl.DataFrame
    issues: pl.DataFrame
    holds: pl.DataFrame


@dataclass(frozen=True)
class _Rule:
    """One row check: rows where `bad` is true fail `name`; `detail` says why, in words."""

    name: str
    bad: pl.Expr
    detail: pl.Expr


def latest_plausible_day(today: dt.date | None = None) -> dt.date:
    """The last day a sale can be dated: today (UTC unless given) plus one day of slack."""
    return (today or dt.datetime.now(dt.UTC).date()) + FUTURE_SLACK


def _finite_and(column: str, bad: pl.Expr) -> pl.Expr:
    # Each bad value fails exactly one check: sign checks only look at finite values.
    return pl.col(column).is_finite().fill_null(False) & bad


def _missing(column: str) -> pl.Expr:
    return pl.col(column).is_null() | pl.col(column).is_nan().fill_null(False)


def _text(template: str, *columns: str) -> pl.Expr:
    """A detail text; null values are written as 'null' instead of making the text null."""
    return format_text(template, *(pl.col(c).cast(pl.String).fill_null("null") for c in columns))


def _sales_rules(limit: dt.date) -> list[_Rule]:
    units, price = pl.col("units"), pl.col("price")
    infinite = units.is_infinite().fill_null(False) | price.is_infinite().fill_null(False)
    return [
        _Rule("units_missing", _missing("units"), pl.lit("units is missing (null or NaN)")),
        _Rule("price_missing", _missing("price"), pl.lit("price is missing (null or NaN)")),
        _Rule(
            "units_non_negative",
            _finite_and("units", units < 0),
            _text("units {} must be >= 0", "units"),
        ),
        _Rule(
            "price_positive",
            _finite_and("price", price <= 0),
            _text("price {} must be > 0", "price"),
        ),
        _Rule(
            "non_finite", infinite, _text("units {} and price {} must be finite", "units", "price")
        ),
        _Rule(
            "unique_product_day",
            pl.col("_repeat"),
            format_text(
                "{} rows for this product and day: all dropped",
                pl.len().over("product_id", "ds").cast(pl.String),
            ),
        ),
        _Rule(
            CHECK_FUTURE_DATE,
            pl.col("ds") > limit,
            pl.lit(f"dated after {limit} (today + 1 day): a sale cannot be in the future"),
        ),
    ]


def _product_rules() -> list[_Rule]:
    cost, current = pl.col("unit_cost"), pl.col("current_price")
    low, high = pl.col("min_price"), pl.col("max_price")
    finite = pl.all_horizontal(pl.col(c).is_finite().fill_null(False) for c in PRODUCT_PRICES)
    return [
        _Rule(
            "non_finite",
            ~finite,
            _text(
                "unit_cost {}, current_price {}, min_price {}, max_price {} must all be finite",
                *PRODUCT_PRICES,
            ),
        ),
        _Rule(
            "current_price_positive",
            finite & (current <= 0),
            _text("current_price {} must be > 0", "current_price"),
        ),
        _Rule(
            "unit_cost_non_negative",
            finite & (cost < 0),
            _text("unit_cost {} must be >= 0", "unit_cost"),
        ),
        _Rule(
            "price_bounds",
            finite & (low > high),
            _text("min_price {} is above max_price {}", "min_price", "max_price"),
        ),
        _Rule(
            "unit_cost_below_max_price",
            finite & (cost > high),
            _text("unit_cost {} is above max_price {}: no allowed price covers it", "unit_cost",
                  "max_price"),
        ),
    ]  # fmt: skip


def _apply(frame: pl.DataFrame, rules: list[_Rule], ds: pl.Expr) -> tuple[pl.DataFrame, pl.Series]:
    """The issues of `rules` on `frame`, and a mask of the rows that failed any of them."""
    flags = frame.select(*(rule.bad.fill_null(False).alias(rule.name) for rule in rules))
    parts = [
        frame.filter(flags[rule.name]).select(
            pl.col("product_id").cast(pl.String),
            ds.cast(pl.Date).alias("ds"),
            pl.lit(rule.name).alias("check"),
            rule.detail.alias("detail"),
        )
        for rule in rules
    ]
    return _issues(parts), flags.select(pl.any_horizontal(pl.all())).to_series()


def _issues(parts: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [part.select(list(ISSUE_SCHEMA)).cast(ISSUE_SCHEMA) for part in parts]
    return pl.concat([pl.DataFrame(schema=ISSUE_SCHEMA), *frames])


def _keyed(sales: pl.DataFrame) -> pl.DataFrame:
    """The sales in (product_id, ds) order, with what the duplicate and gap checks need.

    Adds `_row` (the row's position in the input), `_repeat` (another row has the same product and
    day) and `_gap_from` (the day after the product's previous row). One sort serves both checks:
    hashing (product_id, ds) pairs costs several times more on a million rows.
    """
    pid, ds = pl.col("product_id"), pl.col("ds")
    same_before = pid == pid.shift(1)
    repeat = (same_before & (ds == ds.shift(1))) | ((pid == pid.shift(-1)) & (ds == ds.shift(-1)))
    return (
        sales.with_row_index("_row")
        .sort("product_id", "ds")
        .with_columns(
            _repeat=repeat.fill_null(False),
            _gap_from=pl.when(same_before).then(ds.shift(1) + pl.duration(days=1)),
        )
    )


def _gaps(keyed: pl.DataFrame, limit: dt.date) -> pl.DataFrame:
    """One `gap` issue per run of missing days between a product's sales days up to `limit`."""
    # A future-dated row is reported as such, not as the end of a long gap.
    found = keyed.filter(pl.col("ds") > pl.col("_gap_from"), pl.col("ds") <= limit)
    last = pl.col("ds") - pl.duration(days=1)
    return _issues(
        [
            found.select(
                "product_id",
                pl.col("_gap_from").alias("ds"),
                pl.lit(CHECK_GAP).alias("check"),
                format_text(
                    "{} days without a sales row ({} to {}): treated as unobserved",
                    (pl.col("ds") - pl.col("_gap_from")).dt.total_days().cast(pl.String),
                    pl.col("_gap_from").cast(pl.String),
                    last.cast(pl.String),
                ).alias("detail"),
            )
        ]
    )


def _unknown(orphans: pl.DataFrame) -> pl.DataFrame:
    return _issues(
        [
            orphans.select(
                pl.col("product_id").cast(pl.String),
                "ds",
                pl.lit(CHECK_UNKNOWN_PRODUCT).alias("check"),
                _text("product {} is not in the products table: its sales are not used",
                      "product_id").alias("detail"),
            )
        ]
    )  # fmt: skip


def hold_reasons(issues: pl.DataFrame, product_ids: pl.Series) -> pl.DataFrame:
    """One hold reason per priced product with a holding issue, naming its checks and counts."""
    holding = issues.filter(
        ~pl.col("check").is_in(list(NOT_HOLDING_CHECKS)),
        pl.col("product_id").is_in(product_ids.implode()),
    )
    counts = holding.group_by("product_id", "check").len().sort("product_id", "check")
    plural = pl.when(pl.col("len") == 1).then(pl.lit("row")).otherwise(pl.lit("rows"))
    rows = format_text("{} ({} {})", pl.col("check"), pl.col("len").cast(pl.String), plural)
    reasons = counts.group_by("product_id", maintain_order=True).agg(
        rows.str.join(", ").alias("checks")
    )
    return reasons.select(
        "product_id",
        format_text(f"{DATA_ISSUE}: {{}}; see data_issues", pl.col("checks")).alias("hold_reason"),
    )


def check_history(
    products: pl.DataFrame,
    sales: pl.DataFrame,
    later: pl.DataFrame | None = None,
    orphans: pl.DataFrame | None = None,
    limit: dt.date | None = None,
) -> Checked:
    """Check the products to price and their sales history; quarantine what fails.

    Args:
        products: the products to price (product_id and PRODUCT_PRICES).
        sales: their history: product_id, ds, units, price (and promo, stockout).
        later: sales rows the run does not use as history but that are dated after `limit`
            (checked for `future_date` only); disjoint from `sales`.
        orphans: sales rows of products missing from the products table.
        limit: the latest plausible sales day (default: `latest_plausible_day()`).

    Returns:
        The usable history, the issues and the holds.
    """
    limit = limit or latest_plausible_day()
    rules = _sales_rules(limit)
    keyed = _keyed(sales)
    row_issues, failed = _apply(keyed, rules, pl.col("ds"))
    parts = [row_issues, _gaps(keyed, limit), _apply(products, _product_rules(), pl.lit(None))[0]]
    if later is not None and later.height:
        future = [rule for rule in rules if rule.name == CHECK_FUTURE_DATE]
        parts.append(_apply(later, future, pl.col("ds"))[0])
    if orphans is not None and orphans.height:
        parts.append(_unknown(orphans))
    issues = _issues(parts).sort("product_id", "ds", "check", nulls_last=True)
    kept = keyed.filter(~failed).sort("_row")
    return Checked(
        sales=kept.select(sales.columns),
        issues=issues,
        holds=hold_reasons(issues, products["product_id"]),
    )


def hold(table: pl.DataFrame, holds: pl.DataFrame) -> pl.DataFrame:
    """The product table with each held product's data-issue reason first in `hold_reason`.

    Args:
        table: forecast.product_table() output (product_id, hold_reason, ...).
        holds: `Checked.holds`.

    Returns:
        The same rows in the same order; pricing.recommend holds every row with a hold_reason.
    """
    data = holds.select("product_id", pl.col("hold_reason").alias("_data_hold"))
    joined = table.join(data, on="product_id", how="left", maintain_order="left")
    reason = pl.concat_str(["_data_hold", "hold_reason"], separator="; ", ignore_nulls=True)
    return joined.with_columns(
        hold_reason=pl.when(pl.col("_data_hold").is_not_null())
        .then(reason)
        .otherwise(pl.col("hold_reason"))
    ).drop("_data_hold")
