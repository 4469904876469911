"""The `pricing` command: thin wrappers over the flows and pipeline functions.

Every command takes `--warehouse PATH` (or $PRICING_WAREHOUSE; default warehouse/pricing.duckdb).
A user-caused error prints one line on stderr and exits 1; `--debug` shows the traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

# A cold ephemeral Prefect server can take well over Prefect's default 20 s to start on a small
# machine; give it time so first-time users never see that timeout.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

app = typer.Typer(
    help="Nightly demand forecasting and price optimisation over a DuckDB warehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

WarehouseOpt = Annotated[
    Path | None,
    typer.Option("--warehouse", envvar="PRICING_WAREHOUSE", help="DuckDB warehouse file."),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
AsOfOpt = Annotated[
    dt.datetime | None,
    typer.Option("--as-of", formats=["%Y-%m-%d"], help="First priced day (YYYY-MM-DD)."),
]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", min=1, help="Override max epochs.")]


def _run(debug: bool, action: Callable[[], Any]) -> Any:
    """Run `action`; user-facing failures become one line on stderr and exit code 1."""
    try:
        return action()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        if debug:
            raise
        text = str(exc).strip().splitlines()
        typer.echo(f"error: {text[0] if text else type(exc).__name__}", err=True)
        raise typer.Exit(1) from None


def _settings(warehouse: Path | None, config: Path | None):
    from pipeline.config import load_settings

    return load_settings(config, warehouse)


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


@app.command()
def init(warehouse: WarehouseOpt = None, config: ConfigOpt = None, debug: DebugOpt = False) -> None:
    """Create the warehouse (if needed) and apply schema migrations and views."""
    from pipeline import warehouse as wh

    def action() -> None:
        path = _settings(warehouse, config).warehouse
        applied = wh.migrate(path)
        what = ", ".join(applied) if applied else "already up to date"
        typer.echo(f"warehouse {path}: schema version {wh.schema_version(path)} ({what})")

    _run(debug, action)


@app.command()
def demo(
    products: Annotated[int, typer.Option("--products", min=1, help="Products.")] = 200,
    days: Annotated[int, typer.Option("--days", min=30, help="Days of history.")] = 730,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    run: Annotated[bool, typer.Option("--run/--no-run", help="Run the nightly flow.")] = True,
    epochs: EpochsOpt = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Create a synthetic retail world in the warehouse, then run the nightly flow once."""
    from pipeline import synth
    from pipeline import warehouse as wh

    def action() -> None:
        settings = _settings(warehouse, config)
        typer.echo(f"generating {products} products x {days} days (seed {seed}) ...")
        world = synth.generate_world(products, days, seed)
        wh.write_inputs(settings.warehouse, world.products, world.sales, world.truth)
        typer.echo(f"wrote {world.sales.height:,} sales rows to {settings.warehouse}")
        if run:
            summary = _nightly(settings.warehouse, config, None, False, epochs)
            _print_summary(summary)
            _print_evaluation(settings.warehouse, config)

    _run(debug, action)


@app.command()
def load(
    sales: Annotated[Path, typer.Option("--sales", help="Sales CSV or Parquet file.")],
    products: Annotated[Path, typer.Option("--products", help="Products CSV or Parquet file.")],
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Validate your own sales and products files and load them (all or nothing)."""
    from pipeline import ingest
    from pipeline import warehouse as wh

    def action() -> None:
        settings = _settings(warehouse, config)
        sales_frame = ingest.validate_sales(ingest.read_table_file(sales), sales.name)
        product_frame = ingest.validate_products(
            ingest.read_table_file(products), products.name, sales_frame, settings.pricing
        )
        wh.write_inputs(settings.warehouse, product_frame, sales_frame, None)
        typer.echo(
            f"loaded {product_frame.height:,} products and {sales_frame.height:,} sales rows "
            f"into {settings.warehouse}"
        )

    _run(debug, action)


def _nightly(warehouse: Path, config: Path | None, as_of, retrain: bool, epochs) -> dict:
    from flows.nightly import nightly as nightly_flow

    return nightly_flow(
        warehouse_path=str(warehouse),
        as_of=as_of,
        config_file=str(config) if config else None,
        retrain=retrain,
        epochs=epochs,
    )


@app.command()
def nightly(
    as_of: AsOfOpt = None,
    retrain: Annotated[bool, typer.Option("--retrain", help="Retrain every model.")] = False,
    epochs: EpochsOpt = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run the nightly flow once: forecast, optimise prices, write recommendations."""

    def action() -> None:
        settings = _settings(warehouse, config)
        _print_summary(_nightly(settings.warehouse, config, _date(as_of), retrain, epochs))

    _run(debug, action)


@app.command()
def retrain(
    category: Annotated[str | None, typer.Option("--category", help="Only this category.")] = None,
    products: Annotated[
        str | None, typer.Option("--products", help="Comma-separated product ids.")
    ] = None,
    all_products: Annotated[bool, typer.Option("--all", help="Every active product.")] = False,
    as_of: AsOfOpt = None,
    epochs: EpochsOpt = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Retrain models by hand: --all, --category X or --products a,b,c."""
    from flows.nightly import retrain as retrain_flow

    def action() -> None:
        if sum([all_products, category is not None, products is not None]) != 1:
            raise ValueError("choose exactly one of --all, --category X or --products a,b,c")
        settings = _settings(warehouse, config)
        ids = [p.strip() for p in products.split(",") if p.strip()] if products else None
        summary = retrain_flow(
            warehouse_path=str(settings.warehouse),
            category=category,
            product_ids=ids,
            as_of=_date(as_of),
            config_file=str(config) if config else None,
            epochs=epochs,
        )
        typer.echo(
            f"retrained {summary['n_trained']} of {summary['n_products']} products "
            f"(model version {summary['model_version']}); the next nightly run uses them"
        )

    _run(debug, action)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query.")],
    rows: Annotated[int, typer.Option("--rows", help="Most rows to print.")] = 50,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run a read-only query against the warehouse and print the result as a table."""
    import polars as pl

    from pipeline import warehouse as wh

    def action() -> None:
        frame = wh.query_readonly(_settings(warehouse, config).warehouse, query)
        with pl.Config(tbl_rows=rows, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60):
            typer.echo(frame)

    _run(debug, action)


@app.command()
def evaluate(
    warehouse: WarehouseOpt = None, config: ConfigOpt = None, debug: DebugOpt = False
) -> None:
    """Compare learned elasticities and recommended prices with the demo world's ground truth."""
    _run(debug, lambda: _print_evaluation(_settings(warehouse, config).warehouse, config))


bench_app = typer.Typer(help="Benchmarks: JSON with medians and ratios measured in one run.")
app.add_typer(bench_app, name="bench")
OutOpt = Annotated[Path | None, typer.Option("--out", help="Also write the JSON to this file.")]


def _emit_json(result: dict, out: Path | None) -> None:
    import json

    text = json.dumps(result, indent=2, default=str)
    if out is not None:
        out.write_text(text + "\n")
    typer.echo(text)


@bench_app.command("train")
def bench_train(
    sizes: Annotated[
        str, typer.Option("--sizes", help="Comma-separated product counts.")
    ] = "100,1000",
    days: Annotated[int, typer.Option("--days", help="Days of history.")] = 730,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs for both sides.")] = 10,
    naive_products: Annotated[
        int, typer.Option("--naive-products", help="Products the naive loop is timed on.")
    ] = 20,
    repeats: Annotated[int, typer.Option("--repeats", help="Timed runs per measure.")] = 3,
    out: OutOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Batched per-product training against the naive per-product Keras loop."""
    from pipeline.bench import train as bench

    def action() -> None:
        counts = [int(s) for s in sizes.split(",") if s.strip()]
        _emit_json(bench.run(counts, days, epochs, naive_products, repeats), out)

    _run(debug, action)


def _print_summary(summary: dict) -> None:
    typer.echo(
        f"\nnightly run {summary['run_id']} for {summary['as_of']}:\n"
        f"  products priced      {summary['n_products']}\n"
        f"  price changes        {summary['n_changes']}\n"
        f"  holds (with reason)  {summary['n_holds']}\n"
        f"  models trained       {summary['n_trained']}\n"
        f"  expected profit uplift over the horizon  {summary['expected_profit_uplift']:,.2f}\n"
        f'next: pricing sql "select * from latest_recommendations limit 5"'
    )


def _print_evaluation(warehouse: Path, config: Path | None) -> None:
    from pipeline import evaluate as ev
    from pipeline import warehouse as wh

    settings = _settings(warehouse, config)
    truth = wh.read_truth(settings.warehouse)
    if truth is None:
        raise ValueError("no demo_truth in this warehouse: evaluate works on `pricing demo` worlds")
    versions = wh.read_model_versions(settings.warehouse, latest_only=True)
    recs = wh.read_recommendations(settings.warehouse, latest_only=True)
    if versions.is_empty() or recs.is_empty():
        raise ValueError("no models or recommendations yet: run `pricing nightly` first")
    report = ev.elasticity_report(versions, truth)
    typer.echo(
        f"\nelasticity vs truth over {report['n_products']} products whose price varied:\n"
        f"  median absolute error  {report['median_abs_error']:.3f}\n"
        f"  mean absolute error    {report['mean_abs_error']:.3f}\n"
        f"  learned <= 0           {report['share_nonpositive']:.0%}\n"
        f"  truth inside interval  {report['interval_coverage']:.0%}"
    )
    products = wh.read_products(settings.warehouse, active_only=True)
    start = recs["effective_date"].max()
    overall, per_category = ev.profit_capture(
        recs, products, truth, start, settings.model.horizon, settings.pricing
    )
    capture = overall["capture"]
    typer.echo(
        f"true expected profit over the horizon: current {overall['current_profit']:,.2f}, "
        f"recommended {overall['recommended_profit']:,.2f}, oracle {overall['oracle_profit']:,.2f}"
        f"\nprofit capture {'n/a' if capture is None else f'{capture:.1%}'}"
    )
    for row in per_category.iter_rows(named=True):
        value = row["capture"]
        typer.echo(f"  {row['category']:<16} {'n/a' if value is None else f'{value:.1%}'}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
