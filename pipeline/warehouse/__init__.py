"""The only package that talks to DuckDB: connect, migrate, read frames, write in transactions.

One concern per module:

- `connection`: open the file (waiting while another process holds its lock), transactions,
  frames in and out, and publishing the analysts' snapshot after every finished write;
- `schema`: the versioned migrations in `sql/migrations/` and the views in `sql/views/`;
- `inputs`: products, sales and the demo's ground truth, written (whole, or incrementally by
  `pricing load --mode`) and read;
- `runs`: a run's record and its outputs (model versions, forecasts, recommendations, data
  issues), written in one transaction;
- `tuning`: `pricing tune`'s trials;
- `queries`: read-only queries, an analyst's (`pricing sql`) and the named ones in `sql/queries/`;
- `sqlfiles`: where those SQL files live (package data of the `sql` package).

Values that come from users (product ids, dates, file names) always travel as query parameters or
registered frames, never inside the SQL text. Table and column names inside SQL text are constants
of this package. Callers use the names re-exported here: `from pipeline import warehouse` and
`warehouse.read_sales(...)`.
"""

from __future__ import annotations

from pipeline.warehouse.connection import (
    WarehouseError,
    analyst_path,
    connect,
    reading_path,
)
from pipeline.warehouse.inputs import (
    LOAD_MODES,
    InputsView,
    LoadFrames,
    TableChange,
    latest_sales_date,
    load_inputs,
    read_orphan_sales,
    read_products,
    read_sales,
    read_truth,
    write_inputs,
)
from pipeline.warehouse.queries import named_query, query_names, query_readonly, run_named_query
from pipeline.warehouse.runs import (
    read_model_versions,
    read_recommendations,
    record_run_end,
    record_run_start,
    record_stage_seconds,
    write_run_outputs,
)
from pipeline.warehouse.schema import SCHEMA_VERSION, migrate, migration_files, schema_version
from pipeline.warehouse.sqlfiles import MIGRATIONS_DIR, QUERIES_DIR, SQL_DIR, VIEWS_DIR
from pipeline.warehouse.tuning import read_tuning_trials, write_tuning_trials

__all__ = [
    "LOAD_MODES",
    "MIGRATIONS_DIR",
    "QUERIES_DIR",
    "SCHEMA_VERSION",
    "SQL_DIR",
    "VIEWS_DIR",
    "InputsView",
    "LoadFrames",
    "TableChange",
    "WarehouseError",
    "analyst_path",
    "connect",
    "latest_sales_date",
    "load_inputs",
    "migrate",
    "migration_files",
    "named_query",
    "query_names",
    "query_readonly",
    "read_model_versions",
    "read_orphan_sales",
    "read_products",
    "read_recommendations",
    "read_sales",
    "read_truth",
    "read_tuning_trials",
    "reading_path",
    "record_run_end",
    "record_run_start",
    "record_stage_seconds",
    "run_named_query",
    "schema_version",
    "write_inputs",
    "write_run_outputs",
    "write_tuning_trials",
]
