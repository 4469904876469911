"""The `pricing` commands as a user runs them: `init`, `demo`, and how a command reports failures.

Each test makes its own warehouse under `tmp_path`; the commands run in this process through
typer's CliRunner (the nightly flow under the session's Prefect test harness).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from pipeline import cli
from pipeline import warehouse as wh
from pipeline.config import ConfigError

N_PRODUCTS, N_DAYS = 6, 120


def invoke(*args: str) -> Result:
    """Run `pricing ARGS...` in this process; stdout and stderr are kept apart."""
    return CliRunner().invoke(cli.app, list(args))


def count(path: Path, sql: str) -> int:
    return int(wh.query_readonly(path, sql).row(0)[0])


# --------------------------------------------------------------------------- pricing init


def test_init_creates_the_warehouse_at_the_schema_version_and_is_idempotent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new" / "pricing.duckdb"
    first = invoke("init", "--warehouse", str(path))
    assert first.exit_code == 0, first.output
    assert path.is_file()
    assert wh.schema_version(path) == wh.SCHEMA_VERSION >= 3
    line = first.stdout.strip()
    assert line.startswith(f"warehouse {path}: schema version {wh.SCHEMA_VERSION} (")
    assert "001_core_tables" in line and "already up to date" not in line

    second = invoke("init", "--warehouse", str(path))
    assert second.exit_code == 0, second.output
    assert second.stdout.strip() == (
        f"warehouse {path}: schema version {wh.SCHEMA_VERSION} (already up to date)"
    )
    assert wh.schema_version(path) == wh.SCHEMA_VERSION


# --------------------------------------------------------------------------- pricing demo


def demo(path: Path, *extra: str) -> Result:
    return invoke(
        "demo", "--products", str(N_PRODUCTS), "--days", str(N_DAYS), "--seed", "1",
        "--warehouse", str(path), *extra,
    )  # fmt: skip


def test_demo_no_run_only_writes_the_inputs(tmp_path: Path) -> None:
    path = tmp_path / "pricing.duckdb"
    result = demo(path, "--no-run")
    assert result.exit_code == 0, result.output
    n_sales = count(path, "select count(*) from sales")
    assert result.stdout.splitlines() == [
        f"generating {N_PRODUCTS} products x {N_DAYS} days (seed 1) ...",
        f"wrote {n_sales:,} sales rows to {path}",
    ]
    assert count(path, "select count(*) from products") == N_PRODUCTS
    assert count(path, "select count(*) from demo_truth") > 0
    for table in ("runs", "recommendations", "forecasts"):
        assert count(path, f"select count(*) from {table}") == 0, table


@pytest.mark.slow
def test_demo_writes_runs_the_night_and_prints_summary_and_evaluation(
    tmp_path: Path, prefect_harness: None
) -> None:
    path = tmp_path / "pricing.duckdb"
    result = demo(path, "--epochs", "1")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"generating {N_PRODUCTS} products x {N_DAYS} days (seed 1) ..." in out
    summary = re.search(r"nightly run (\S+) for (\S+):", out)
    assert summary is not None, out
    run_id = summary.group(1)
    priced = re.search(r"products priced\s+(\d+)", out)
    assert priced is not None, out
    assert "expected profit uplift over the horizon" in out
    assert "elasticity vs truth over" in out and "median absolute error" in out
    assert "true expected profit over the horizon" in out and "profit capture" in out

    recs = wh.query_readonly(path, "select * from latest_recommendations")
    assert recs.height == int(priced.group(1)) > 0
    assert set(recs["run_id"]) == {run_id}
    status = wh.query_readonly(path, "select status from runs where run_id = ?", [run_id])
    assert status.rows() == [("completed",)]


# --------------------------------------------------------------------------- failures


def break_settings(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """Make loading the settings (the first thing every command does) raise `error`."""

    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr("pipeline.config.load_settings", fail)
    # Whether cli.py imports the name at module level or inside each command.
    monkeypatch.setattr(cli, "load_settings", fail, raising=False)


def test_a_user_error_is_one_line_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_settings(monkeypatch, ConfigError("config key 'model.epochz': unknown key\nmore detail"))
    result = invoke("init", "--warehouse", str(tmp_path / "pricing.duckdb"))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["error: config key 'model.epochz': unknown key"]
    assert "Traceback" not in result.output and "bug" not in result.stderr.lower()
    assert not (tmp_path / "pricing.duckdb").exists()


def test_a_programming_error_says_it_is_a_bug_not_a_user_mistake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_settings(monkeypatch, RuntimeError("boom: index out of range"))
    result = invoke("init", "--warehouse", str(tmp_path / "pricing.duckdb"))
    assert result.exit_code not in (0, 1)  # 1 is a user's mistake
    stderr = result.stderr
    lines = stderr.strip().splitlines()
    # Not printed the way a user mistake is (one plain `error:` line) ...
    assert not (len(lines) == 1 and lines[0].startswith("error: "))
    # ... but as a bug, naming what went wrong, with a hint to report it and to use --debug.
    assert "bug" in stderr.lower() and "report" in stderr.lower()
    assert "--debug" in stderr
    assert "RuntimeError" in stderr and "boom: index out of range" in stderr


def test_debug_shows_the_programming_error_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_settings(monkeypatch, RuntimeError("boom"))
    result = invoke("init", "--warehouse", str(tmp_path / "pricing.duckdb"), "--debug")
    assert result.exit_code != 0
    assert isinstance(result.exception, RuntimeError) and str(result.exception) == "boom"
