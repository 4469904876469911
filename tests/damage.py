"""Input files made from the data contract, then damaged the ways real extracts arrive.

Used by tests/test_fuzz_inputs.py (which draws the clean rows with hypothesis) and counted by
tests/test_reliability.py. A damage takes the clean rows of one table and returns the file's bytes
and what `pricing load` must do with it: load the clean rows exactly, or refuse the file naming a
check (and the row, where the damage has one).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipeline.contract import PRODUCT_COLUMNS, SALES_COLUMNS

# Product ids of the fuzz warehouse: separators, quotes and non-ASCII text that a CSV must carry.
LATIN1_IDS = ("A1", "id,comma", 'q"uote', "semi;colon", "tab\tin", "Café", "Ünïcödé 9")
OTHER_IDS = ("漢字-3", "☕ brew", "emoji 🍎")
KNOWN_IDS = LATIN1_IDS + OTHER_IDS
FIRST_NEW_DAY = dt.date(2025, 2, 1)  # the warehouse's sales end before it


@dataclass(frozen=True)
class DamagedFile:
    """A file to load and what loading it must do."""

    content: bytes
    suffix: str  # ".csv" or ".parquet"
    check: str | None  # None: must load exactly; else the check that must refuse it
    row: int | None = None  # the row the refusal must name (None: no row, or any row)
    rows: pl.DataFrame | None = None  # what loading must store, when not the clean rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as exactly this float
    return str(value)


def rows_text(frame: pl.DataFrame) -> list[list[str]]:
    """The frame as text cells, header first."""
    return [frame.columns, *([_cell(v) for v in row] for row in frame.iter_rows())]


def csv_text(
    rows: list[list[str]], delimiter: str = ",", quoting: int = csv.QUOTE_MINIMAL, eol: str = "\n"
) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator=eol)
    writer.writerows(rows)
    return out.getvalue()


def _csv(frame: pl.DataFrame, **kwargs: Any) -> DamagedFile:
    return DamagedFile(csv_text(rows_text(frame), **kwargs).encode("utf-8"), ".csv", None)


def _refused(text: str, check: str, row: int | None = None, encoding: str = "utf-8") -> DamagedFile:
    return DamagedFile(text.encode(encoding), ".csv", check, row)


def _parquet(frame: pl.DataFrame, check: str | None = None, row: int | None = None) -> DamagedFile:
    out = io.BytesIO()
    frame.write_parquet(out)
    return DamagedFile(out.getvalue(), ".parquet", check, row)


def _numeric(frame: pl.DataFrame) -> str:
    return "units" if "units" in frame.columns else "unit_cost"


def _with_cell(frame: pl.DataFrame, row: int, column: str, text: str) -> list[list[str]]:
    rows = rows_text(frame)
    rows[row][frame.columns.index(column)] = text
    return rows


# --- the damages: (clean rows, a row index 1..height to damage) -> file -------------------------


def latin1(frame: pl.DataFrame, row: int) -> DamagedFile:
    """Saved as Latin-1: refused at the first row with a non-ASCII character, else the same."""
    rows = rows_text(frame)
    bad = next((n for n, r in enumerate(rows) if not "".join(r).isascii()), None)
    return DamagedFile(csv_text(rows).encode("latin-1"), ".csv", "encoding" if bad else None, bad)


def thousands(frame: pl.DataFrame, row: int) -> DamagedFile:
    column = _numeric(frame)
    rows = _with_cell(frame, row, column, "1,234")
    return _refused(csv_text(rows), f"{column}_numeric", row)


def mixed_dates(frame: pl.DataFrame, row: int) -> DamagedFile:
    column = "ds" if "ds" in frame.columns else "launched_on"
    day = frame[column][row - 1] or dt.date(2025, 3, 4)
    shown = day.strftime(("%d/%m/%Y", "%m/%d/%Y", "%Y%m%d", "%Y-%m-%dT00:00:00")[row % 4])
    return _refused(csv_text(_with_cell(frame, row, column, shown)), f"{column}_date", row)


def nan_inf(frame: pl.DataFrame, row: int) -> DamagedFile:
    column = _numeric(frame)
    text = ("NaN", "nan", "inf", "-inf", "Infinity")[row % 5]
    return _refused(csv_text(_with_cell(frame, row, column, text)), f"{column}_numeric", row)


def overflow(frame: pl.DataFrame, row: int) -> DamagedFile:
    """A number past the float range (sales) or a size rank past 32 bits (products)."""
    column, text = ("units", "1e400") if "units" in frame.columns else ("size_rank", "99999999999")
    suffix = "numeric" if column == "units" else "integer"
    return _refused(csv_text(_with_cell(frame, row, column, text)), f"{column}_{suffix}", row)


def enormous(frame: pl.DataFrame, row: int) -> DamagedFile:
    """Huge but finite numbers load exactly (prices scaled together keep products consistent)."""
    money = ("units", "price", "unit_cost", "current_price", "min_price", "max_price")
    big = frame.with_columns(pl.col(c) * 1e300 for c in money if c in frame.columns)
    return DamagedFile(_csv(big).content, ".csv", None, rows=big)


def truncated(frame: pl.DataFrame, row: int) -> DamagedFile:
    text = csv_text(rows_text(frame)).rstrip("\n")
    last = text.rfind("\n") + 1
    cut = last + max(1, (len(text) - last) * row // (frame.height + 1))
    return _refused(text[:cut], "complete_last_line", frame.height)


def duplicated_header(frame: pl.DataFrame, row: int) -> DamagedFile:
    column = frame.columns[row % frame.width]
    rows = [[*r, r[frame.columns.index(column)]] for r in rows_text(frame)]
    return _refused(csv_text(rows), "unique_columns")


def extra_field(frame: pl.DataFrame, row: int) -> DamagedFile:
    rows = rows_text(frame)
    rows[row] = [*rows[row], "surplus"]
    return _refused(csv_text(rows), "field_count", row)


def dropped_column(frame: pl.DataFrame, row: int) -> DamagedFile:
    column = "price" if "price" in frame.columns else "unit_cost"
    return _refused(csv_text(rows_text(frame.drop(column))), "required_columns")


def padded(frame: pl.DataFrame, row: int) -> DamagedFile:
    """Spaces around every value (fixed-width exports) are not part of it."""
    rows = rows_text(frame)
    return _csv_rows([rows[0], *([f"  {c} " if c else c for c in r] for r in rows[1:])])


def _csv_rows(rows: list[list[str]]) -> DamagedFile:
    return DamagedFile(csv_text(rows).encode("utf-8"), ".csv", None)


def truncated_parquet(frame: pl.DataFrame, row: int) -> DamagedFile:
    whole = _parquet(frame).content
    return DamagedFile(whole[: len(whole) * row // (frame.height + 2)], ".parquet", "file_readable")


def parquet_nan_inf(frame: pl.DataFrame, row: int) -> DamagedFile:
    column = _numeric(frame)
    value = (float("nan"), float("inf"), float("-inf"))[row % 3]
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row - 1)
        .then(value)
        .otherwise(pl.col(column))
        .alias(column)
    )
    return _parquet(bad, f"{column}_numeric", row)


def parquet_text(frame: pl.DataFrame, row: int) -> DamagedFile:
    """Every column stored as text (an ETL that writes strings) reads as the typed file does."""
    texts = rows_text(frame)
    as_text = pl.DataFrame(
        {name: [r[i] or None for r in texts[1:]] for i, name in enumerate(texts[0])},
        schema=dict.fromkeys(texts[0], pl.String),
    )
    return _parquet(as_text)


def parquet_nested(frame: pl.DataFrame, row: int) -> DamagedFile:
    column = frame.columns[row % frame.width]
    nested = frame.with_columns(pl.concat_list(pl.col(column).cast(pl.String)).alias(column))
    return _parquet(nested, "column_type")


Damage = Callable[[pl.DataFrame, int], DamagedFile]

# Every kind the fuzz tests generate, by name.
DAMAGES: dict[str, Damage] = {
    "clean csv": lambda f, r: _csv(f),
    "utf-8 byte-order mark": lambda f, r: DamagedFile(
        b"\xef\xbb\xbf" + _csv(f).content, ".csv", None
    ),
    "utf-16": lambda f, r: DamagedFile(csv_text(rows_text(f)).encode("utf-16"), ".csv", None),
    "latin-1": latin1,
    "semicolon separator": lambda f, r: _csv(f, delimiter=";"),
    "tab separator": lambda f, r: _csv(f, delimiter="\t"),
    "every field quoted": lambda f, r: _csv(f, quoting=csv.QUOTE_ALL),
    "crlf line ends": lambda f, r: _csv(f, eol="\r\n"),
    "blank lines at the end": lambda f, r: DamagedFile(_csv(f).content + b"\n\n", ".csv", None),
    "padded values": padded,
    "thousands separator": thousands,
    "empty file": lambda f, r: DamagedFile(b"", ".csv", "not_empty"),
    "header only": lambda f, r: _refused(csv_text(rows_text(f)[:1]), "has_rows"),
    "duplicated header": duplicated_header,
    "mixed date formats": mixed_dates,
    "enormous values": enormous,
    "numbers past their range": overflow,
    "truncated last line": truncated,
    "nan/inf text": nan_inf,
    "extra field": extra_field,
    "missing column": dropped_column,
    "clean parquet": lambda f, r: _parquet(f),
    "truncated parquet": truncated_parquet,
    "parquet nan/inf": parquet_nan_inf,
    "parquet all text": parquet_text,
    "parquet nested column": parquet_nested,
    "parquet without rows": lambda f, r: _parquet(f.head(0), "has_rows"),
}
# Kinds whose cells must survive Latin-1 (the others carry any Unicode).
LATIN1_KINDS = ("latin-1",)


def typed_sales(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "product_id": pl.String,
            "ds": pl.Date,
            "units": pl.Float64,
            "price": pl.Float64,
            "promo": pl.Boolean,
            "stockout": pl.Boolean,
        },
    ).select(SALES_COLUMNS)


def typed_products(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = {
        "product_id": pl.String,
        "name": pl.String,
        "category": pl.String,
        "family_id": pl.String,
        "size_rank": pl.Int32,
        "unit_cost": pl.Float64,
        "current_price": pl.Float64,
        "min_price": pl.Float64,
        "max_price": pl.Float64,
        "is_active": pl.Boolean,
        "is_kvi": pl.Boolean,
        "launched_on": pl.Date,
    }
    return pl.DataFrame(rows, schema=schema).select(PRODUCT_COLUMNS)
