"""Polars expressions the modules share."""

from __future__ import annotations

import polars as pl


def format_text(template: str, *values: pl.Expr | str | float) -> pl.Expr:
    """`pl.format` built on `concat_str`: polars' own pl.format can panic on filtered frames.

    Args:
        template: text with one `{}` per value.
        values: expressions, column names or literal numbers, cast to text in place of each
            `{}`; a null value makes the whole text null, as with `pl.format`.
    """
    pieces = template.split("{}")
    if len(pieces) != len(values) + 1:
        raise ValueError(f"template {template!r} needs {len(pieces) - 1} values")
    parts = [pl.lit(pieces[0])]
    for value, piece in zip(values, pieces[1:], strict=True):
        expr = (
            value
            if isinstance(value, pl.Expr)
            else pl.col(value)
            if isinstance(value, str)
            else pl.lit(value)
        )
        parts += [expr.cast(pl.String), pl.lit(piece)]
    return pl.concat_str(parts)
