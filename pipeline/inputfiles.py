"""Reading a user's CSV and Parquet files as tables of text, or refusing them in one line.

Real extracts arrive with byte-order marks, in UTF-16, with `;` or tab separators, quoted fields,
CRLF line ends, a duplicated header, blank lines at the end or cut short by a failed transfer.
What can be read without guessing is read exactly; the rest is refused with one line naming the
file, the row where there is one (data rows counted from 1, the header not counted) and the check:

| check | what fails |
|---|---|
| `file_type`, `file_exists` | not a .csv/.parquet/.pq file; no such file |
| `not_empty`, `has_rows` | a file of zero bytes; a header without rows |
| `file_readable` | a damaged Parquet file, or a CSV the parser cannot read |
| `encoding` | bytes that are not UTF-8 (a UTF-8 or UTF-16 byte-order mark is honoured) |
| `unique_columns` | a column name twice in the header |
| `field_count` | a row with more fields than the header |
| `blank_row` | an empty line between rows (empty lines at the end are ignored) |
| `complete_last_line` | the last line has no line break: the file may have been cut short |
| `column_type` | a Parquet column of a type that is not text, a number, a date or a flag |

The separator is the one of `,`, `;` and tab that splits the header into the most fields. Numbers
keep their text (`1,234` is refused later as not a number, never read as 1234 or 1.234).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import polars as pl

from pipeline.errors import UserError, first_line

_SEPARATORS = (",", ";", "\t")
_HEAD_BYTES = 1 << 16
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class InputError(UserError, ValueError):
    """A problem in the user's input files; the message is one line naming file, row and check.

    Row numbers are 1-based data rows: the header is not counted.
    """


def refuse(name: str, check: str, detail: str, row: int | None = None) -> NoReturn:
    """Raise the one-line InputError: `<file>[ row N]: check '<check>' failed: <detail>`."""
    where = f"{name} row {row}" if row is not None else name
    raise InputError(f"{where}: check '{check}' failed: {detail}")


def _encoding_row(raw: bytes, name: str) -> None:
    """Refuse the first byte that is not UTF-8, naming its row (the header is row 0)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start)
        bad = raw[exc.start : exc.start + 1].hex()
        detail = f"byte 0x{bad} is not UTF-8 text: save the file as UTF-8"
        if line == 0:
            refuse(name, "encoding", f"the header's {detail}")
        refuse(name, "encoding", detail, row=line)


def _text_source(path: Path, head: bytes) -> bytes | Path:
    """What the CSV parser reads: the file itself, or its UTF-16 text re-encoded as UTF-8."""
    if not head.startswith(_UTF16_BOMS):
        _encoding_row(head[: head.rfind(b"\n") + 1] or head, path.name)
        return path
    try:
        return path.read_bytes().decode("utf-16").encode("utf-8")
    except UnicodeDecodeError as exc:
        refuse(path.name, "encoding", f"not UTF-16 text after its byte-order mark ({exc.reason})")


def _header(name: str, source: bytes | Path, head: bytes) -> tuple[str, list[str]]:
    """The separator and the header's column names, from the file's first line."""
    first = source[:_HEAD_BYTES] if isinstance(source, bytes) else head
    lines = first.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()
    if not lines or not lines[0].strip():
        refuse(name, "not_empty", "the first line, the header, is empty: export the file again")
    line = lines[0]
    separator = max(_SEPARATORS, key=lambda sep: len(line.split(sep)))  # ties: the comma
    return separator, next(csv.reader([line], delimiter=separator))


def _unique_names(name: str, columns: list[str]) -> None:
    seen: set[str] = set()
    for column in columns:
        if column.strip() in seen:
            refuse(name, "unique_columns", f"column '{column.strip()}' appears twice in the header")
        seen.add(column.strip())


def _parse_failure(
    name: str, source: bytes | Path, separator: str, width: int, exc: Exception
) -> NoReturn:
    """Refuse a CSV the parser rejected, naming the row where that can be found."""
    raw = source if isinstance(source, bytes) else source.read_bytes()
    _encoding_row(raw, name)
    rows = csv.reader(io.StringIO(raw.decode("utf-8").lstrip("\ufeff")), delimiter=separator)
    for number, fields in enumerate(rows):
        if number and len(fields) > width:
            refuse(
                name,
                "field_count",
                f"{len(fields)} fields where the header has {width}",
                row=number,
            )
    refuse(
        name,
        "file_readable",
        f"cannot be read as CSV ({first_line(exc)}): check the file is not damaged",
    )


def _without_blank_rows(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """Drop empty lines at the end (an editor's habit); refuse one between rows."""
    blank = pl.all_horizontal(pl.all().is_null())
    flags = frame.select(blank.alias("blank"))["blank"]
    content = (~flags).arg_true()
    last = int(content[-1]) + 1 if content.len() else 0
    inner = flags.head(last).arg_true()
    if inner.len():
        refuse(name, "blank_row", "the row is empty: remove empty lines", row=int(inner[0]) + 1)
    return frame.head(last)


def _ends_with_line_break(source: bytes | Path) -> bool:
    if isinstance(source, bytes):
        return source.endswith((b"\n", b"\r"))
    with open(source, "rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) in (b"\n", b"\r")


def _line_breaks(source: bytes | Path) -> int:
    if isinstance(source, bytes):
        return source.count(b"\n")
    with open(source, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def _complete(name: str, source: bytes | Path) -> None:
    """Refuse a file whose last line has no line break: a transfer may have cut it short.

    Checked before parsing, since a cut inside a quoted value also makes the parser fail.
    """
    if _ends_with_line_break(source):
        return
    rows = _line_breaks(source)  # the header's and every whole row's
    if rows == 0:
        refuse(name, "has_rows", "the file has a header but no rows: nothing to load")
    refuse(
        name,
        "complete_last_line",
        "the last line does not end with a line break, so the file may have been cut short: "
        "export it again (or end it with a line break if it is whole)",
        row=rows,
    )


def _read_csv(path: Path) -> pl.DataFrame:
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if not head:
        refuse(path.name, "not_empty", "the file is empty: export it again")
    source = _text_source(path, head)
    separator, columns = _header(path.name, source, head)
    _unique_names(path.name, columns)
    _complete(path.name, source)
    try:
        frame = pl.read_csv(source, infer_schema=False, separator=separator)
    except pl.exceptions.PolarsError as exc:
        _parse_failure(path.name, source, separator, len(columns), exc)
    return _without_blank_rows(frame, path.name)


def _plain(dtype: pl.DataType) -> bool:
    """Types a column may have: text, numbers, dates and times, flags (not lists or structs)."""
    return (
        dtype.is_numeric()
        or dtype.is_temporal()
        or dtype in (pl.String, pl.Boolean, pl.Categorical, pl.Null)
        or isinstance(dtype, pl.Enum)
    )


def _read_parquet(path: Path) -> pl.DataFrame:
    frame = pl.read_parquet(path)
    for column, dtype in frame.schema.items():
        if not _plain(dtype):
            refuse(path.name, "column_type", f"column '{column}' holds {dtype}, not plain values")
    return frame


_READERS: dict[str, Callable[[Path], pl.DataFrame]] = {
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
}


def read_table_file(path: Path) -> pl.DataFrame:
    """Read a CSV (.csv, every column as text) or Parquet (.parquet, .pq) file.

    Raises:
        InputError: the file is missing, has another suffix, or cannot be read exactly (one line
            naming the file, the row where there is one, and the check; see the module's table).
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        refuse(
            path.name,
            "file_type",
            f"unsupported file type '{path.suffix}': give a .csv or .parquet file",
        )
    if not path.is_file():
        refuse(path.name, "file_exists", f"file not found at {path}: check the path")
    try:
        frame = reader(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        kind = path.suffix.lstrip(".").upper()
        refuse(
            path.name,
            "file_readable",
            f"cannot be read as {kind} ({first_line(exc)}): check the file is not damaged",
        )
    if frame.height == 0:
        refuse(path.name, "has_rows", "the file has a header but no rows: nothing to load")
    return frame
