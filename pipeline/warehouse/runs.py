"""Runs and their outputs: a run's record, its model versions, forecasts and recommendations.

A run writes its outputs in one transaction: a crash at any point leaves the previous night's
recommendations intact and readable; re-running the same date replaces, never duplicates.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline import faults
from pipeline.contract import RUN_COMPLETED, RUN_END_STATUSES
from pipeline.errors import first_line
from pipeline.warehouse.connection import (
    WarehouseError,
    connect,
    insert_frame,
    now_utc,
    publishing,
    read_frame,
    transaction,
)
from pipeline.warehouse.schema import migrate_connection

_COUNT_COLUMNS = (
    "n_products",
    "n_trained",
    "n_recommendations",
    "n_changes",
    "n_holds",
    "n_data_issues",
    "expected_profit_uplift",
    "stage_seconds",  # JSON text: {"read": s, "train": s, ...}
)
_ABANDONED = (
    "abandoned: the process running it stopped before it finished (killed or crashed); "
    "found by run {}"
)


def record_run_start(
    path: str | Path,
    run_id: str,
    flow: str,
    as_of: date | None,
    parameters: dict[str, Any],
    abandon_others: bool = False,
) -> int:
    """Record a run as 'running' (started now, UTC), with its parameters as JSON text.

    Args:
        path: the DuckDB file.
        run_id: a new run id.
        flow: 'nightly' or 'retrain'.
        as_of: the run's effective date.
        parameters: the flow's parameters.
        abandon_others: also mark every other run still 'running' as failed, with a message
            saying it was abandoned. Only for a caller holding the warehouse's run lock
            (pipeline/runlock.py): then no other run can be alive, and a 'running' row is left by
            a process that was killed or crashed.

    Returns:
        How many abandoned runs were marked failed.

    Raises:
        WarehouseError: the run_id is already recorded.
    """
    text = json.dumps(parameters, default=str, sort_keys=True)
    with connect(path) as con:
        migrate_connection(con)
        try:
            with transaction(con):
                abandoned = _abandon_running(con, run_id) if abandon_others else 0
                con.execute(
                    "insert into runs (run_id, flow, started_at, status, as_of, parameters) "
                    "values (?, ?, ?, 'running', ?, ?)",
                    [run_id, flow, now_utc(), as_of, text],
                )
        except duckdb.ConstraintException:
            raise WarehouseError(f"run {run_id} is already recorded: use a new run id") from None
    return abandoned


def _abandon_running(con: duckdb.DuckDBPyConnection, by_run: str) -> int:
    """Mark runs left 'running' by a dead process as failed; returns how many."""
    row = con.execute(
        "update runs set status = 'failed', finished_at = ?, message = ? "
        "where status = 'running' and run_id <> ?",
        [now_utc(), _ABANDONED.format(by_run), by_run],
    ).fetchone()
    return int(row[0]) if row else 0


def _finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    status: str,
    counts: dict[str, Any] | None,
    message: str | None,
) -> None:
    """Set a run's end status, finished_at (now, UTC), counts and message."""
    if status not in RUN_END_STATUSES:
        raise ValueError(f"run status must be one of {RUN_END_STATUSES}, got {status!r}")
    counts = dict(counts or {})
    unknown = sorted(set(counts) - set(_COUNT_COLUMNS))
    if unknown:
        raise ValueError(f"unknown run counts {unknown}; known: {', '.join(_COUNT_COLUMNS)}")
    # Column names come from the whitelist above; the values travel as parameters.
    assignments = ["status = ?", "finished_at = ?", "message = coalesce(?, message)"]
    assignments += [f"{column} = ?" for column in counts]
    params = [status, now_utc(), message, *counts.values(), run_id]
    updated = con.execute(
        f"update runs set {', '.join(assignments)} where run_id = ?", params
    ).fetchone()
    if not updated or updated[0] == 0:
        raise WarehouseError(f"run {run_id} was never started: call record_run_start first")


def record_run_end(
    path: str | Path,
    run_id: str,
    status: str,
    counts: dict[str, Any] | None = None,
    message: str | None = None,
) -> None:
    """Mark a run 'completed' or 'failed', with any counts (n_products, ...) and a message."""
    with publishing(path) as con:
        _finish_run(con, run_id, status, counts, message)


def record_stage_seconds(path: str | Path, run_id: str, stage_seconds: str) -> None:
    """Store a run's seconds per stage (JSON text), leaving its status and end time as they are.

    A run is ended by the write of its outputs; the write's own time is known only after it, so
    the stage times are stored once more, alone.
    """
    with publishing(path) as con:
        updated = con.execute(
            "update runs set stage_seconds = ? where run_id = ?", [stage_seconds, run_id]
        ).fetchone()
    if not updated or updated[0] == 0:
        raise WarehouseError(f"run {run_id} was never started: call record_run_start first")


def _replace_earlier_outputs(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    as_of: date | None,
    forecasts: pl.DataFrame | None,
    recommendations: pl.DataFrame | None,
) -> None:
    """Delete what an earlier run (or an earlier try of this one) wrote for the same date.

    Only the kinds of output this run writes are replaced: a run without recommendations leaves the
    date's recommendations alone.
    """
    con.execute("delete from data_issues where run_id = ?", [run_id])
    if recommendations is not None:
        # Also the frame's own dates, so a frame whose effective_date differs from as_of still
        # replaces that date's rows (a missing column fails later, at the insert).
        dates = (
            recommendations["effective_date"].unique().to_list()
            if "effective_date" in recommendations.columns
            else []
        )
        con.execute(
            "delete from recommendations where run_id = ? or effective_date = ? "
            "or effective_date in (select unnest(?::date[]))",
            [run_id, as_of, dates],
        )
    if forecasts is not None:
        con.execute(
            "delete from forecasts where run_id = ? or run_id in "
            "(select run_id from runs where as_of = ? and flow = 'nightly')",
            [run_id, as_of],
        )


def write_run_outputs(
    path: str | Path,
    run_id: str,
    as_of: date | None,
    *,
    model_versions: pl.DataFrame | None = None,
    forecasts: pl.DataFrame | None = None,
    recommendations: pl.DataFrame | None = None,
    data_issues: pl.DataFrame | None = None,
    counts: dict[str, Any] | None = None,
    message: str | None = None,
    status: str = RUN_COMPLETED,
) -> None:
    """Write a run's outputs and mark it completed, all in one transaction.

    Re-running a date replaces that date's recommendations and nightly forecasts instead of
    duplicating them; model_versions rows replace those with the same (model_version,
    product_id). On any failure nothing is written and the previous night stays readable.

    Args:
        path: the DuckDB file.
        run_id: a run recorded by `record_run_start`.
        as_of: the run's effective date (recommendations.effective_date).
        model_versions: rows for the model_versions table (columns in any order).
        forecasts: rows for the forecasts table.
        recommendations: rows for the recommendations table.
        data_issues: rows for the data_issues table.
        counts: run counts (n_products, n_trained, ...), stored on the run.
        message: a one-line summary stored on the run.
        status: the run's end status; "failed" keeps what a run finished before it failed
            (e.g. the models of the shards that trained) while the run itself is not complete.

    Raises:
        WarehouseError: a frame does not fit its table or the run is unknown (nothing written).
    """
    outputs = {
        "forecasts": forecasts,
        "recommendations": recommendations,
        "data_issues": data_issues,
    }
    with publishing(path) as con:
        try:
            with transaction(con):
                _replace_earlier_outputs(con, run_id, as_of, forecasts, recommendations)
                if model_versions is not None:
                    insert_frame(con, "model_versions", model_versions, replace=True)
                for table, frame in outputs.items():
                    if frame is not None:
                        insert_frame(con, table, frame)
                faults.pause_point("write")  # crash tests: killed here, nothing may be written
                _finish_run(con, run_id, status, counts, message)
        except duckdb.Error as exc:
            raise WarehouseError(
                f"writing the outputs of run {run_id} failed, nothing was written: "
                f"{first_line(exc)}"
            ) from None


def read_model_versions(path: str | Path, latest_only: bool = True) -> pl.DataFrame:
    """Model versions sorted by product_id; only the latest per product if latest_only.

    "Latest" is by trained_at (then model_version), as in the `model_quality` view.
    """
    if latest_only:
        # One definition of "latest": the model_quality view's.
        sql = "select * exclude (wape_improvement) from model_quality order by product_id"
    else:
        sql = "select * from model_versions order by product_id, trained_at"
    return read_frame(path, sql)


def read_recommendations(path: str | Path, latest_only: bool = True) -> pl.DataFrame:
    """Recommendations sorted by product_id.

    Args:
        path: the DuckDB file.
        latest_only: the latest completed nightly run's (the `latest_recommendations` view);
            otherwise every completed run's (the `recommendation_history` view, oldest first).
    """
    if latest_only:
        return read_frame(path, "select * from latest_recommendations order by product_id")
    return read_frame(
        path,
        "select * from recommendation_history order by effective_date, finished_at, product_id",
    )
