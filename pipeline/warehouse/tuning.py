"""`pricing tune`'s trials: one row per trial of a study (`tuning_trials`, migration 006)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from pipeline.warehouse.connection import insert_frame, publishing, read_frame, transaction

_SCHEMA = {
    "study_name": pl.String,
    "trial_number": pl.Int32,
    "category": pl.String,
    "state": pl.String,
    "score": pl.Float64,
    "naive_score": pl.Float64,
    "params": pl.String,
    "is_default": pl.Boolean,
    "fold_scores": pl.String,
    "seconds": pl.Float64,
    "started_at": pl.Datetime("us"),
    "n_products": pl.Int32,
    "note": pl.String,
}


def write_tuning_trials(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Insert (or replace, by study and trial number) trials' rows, in one transaction."""
    frame = pl.DataFrame(rows, schema=_SCHEMA)
    with publishing(path) as con, transaction(con):
        insert_frame(con, "tuning_trials", frame, replace=True)


def read_tuning_trials(path: str | Path, study_name: str | None = None) -> pl.DataFrame:
    """Every trial (or one study's), by study and trial number."""
    where, params = ("where study_name = ?", [study_name]) if study_name else ("", None)
    return read_frame(
        path, f"select * from tuning_trials {where} order by study_name, trial_number", params
    )
