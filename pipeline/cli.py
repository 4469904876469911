"""The `pricing` command: thin wrappers over the flows and pipeline functions.

Every command takes `--warehouse PATH` (or $PRICING_WAREHOUSE; default warehouse/pricing.duckdb).
A user-caused error prints one line on stderr and exits 1; `--debug` shows the traceback.

Run as a program (the `pricing` script, `python -m pipeline.cli`), a command also ties every
process it starts to its own life (pipeline/procguard.py: Prefect's temporary server never
outlives a killed command) and prints only its own lines unless `pricing --verbose ...`
(pipeline/console.py). In-process callers (tests' CliRunner) get neither.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline import console, procguard
from pipeline.bench.commands import bench_app
from pipeline.cli_base import (
    AsOfOpt,
    CommandError,
    ConfigOpt,
    DaskOpt,
    DebugOpt,
    EpochsOpt,
    WarehouseOpt,
    date_of,
    run_command,
    settings_of,
)
from pipeline.tune.commands import tune

# A cold ephemeral Prefect server can take well over Prefect's default 20 s to start on a small
# machine; give it time so first-time users never see that timeout.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
# The pipeline runs offline: no telemetry from the temporary Prefect server (it would only log
# connection errors).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


class _Program(typer.Typer):
    """The app, which knows when it runs as the program rather than inside another one.

    Calling the app object is what the console script and `python -m pipeline.cli` do; typer's
    CliRunner invokes its click command instead, and gets neither the process guard nor the quiet
    output (both change process-wide state: the environment, logging, file descriptor 2).
    """

    as_program = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        _Program.as_program = True
        procguard.guard_children()
        return super().__call__(*args, **kwargs)


app = _Program(
    help="Nightly demand forecasting and price optimisation over a DuckDB warehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            envvar="PRICING_VERBOSE",
            help="Also show TensorFlow's and Prefect's own output (start-up lines, logs).",
        ),
    ] = False,
) -> None:
    """Nightly demand forecasting and price optimisation over a DuckDB warehouse."""
    if _Program.as_program:
        console.configure(verbose)


@app.command()
def init(warehouse: WarehouseOpt = None, config: ConfigOpt = None, debug: DebugOpt = False) -> None:
    """Create the warehouse (if needed) and apply schema migrations and views."""
    from pipeline import warehouse as wh

    def action() -> None:
        path = settings_of(warehouse, config).warehouse
        applied = wh.migrate(path)
        what = ", ".join(applied) if applied else "already up to date"
        typer.echo(f"warehouse {path}: schema version {wh.schema_version(path)} ({what})")

    run_command(debug, action)


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
        settings = settings_of(warehouse, config)
        typer.echo(f"generating {products} products x {days} days (seed {seed}) ...")
        world = synth.generate_world(products, days, seed)
        wh.write_inputs(settings.warehouse, world.products, world.sales, world.truth)
        typer.echo(f"wrote {world.sales.height:,} sales rows to {settings.warehouse}")
        if run:
            console.load_tensorflow()
            summary = _nightly(settings.warehouse, config, None, False, epochs)
            _print_summary(summary)
            from pipeline.evaluate.commands import print_evaluation

            print_evaluation(settings.warehouse, config)

    run_command(debug, action)


@app.command()
def load(
    sales: Annotated[Path | None, typer.Option("--sales", help="Sales CSV/Parquet file.")] = None,
    products: Annotated[
        Path | None, typer.Option("--products", help="Products CSV or Parquet file.")
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="append: new rows only; upsert: add new rows, replace rows of the same key; "
            "replace: empty the given tables first.",
        ),
    ] = "append",
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Validate your own sales and/or products files and load them (all or nothing)."""
    from pipeline import loading

    def action() -> None:
        settings = settings_of(warehouse, config)
        changes = loading.load_files(settings.warehouse, settings.pricing, sales, products, mode)
        for line in loading.describe(changes, mode, settings.warehouse):
            typer.echo(line)

    run_command(debug, action)


def _nightly(
    warehouse: Path,
    config: Path | None,
    as_of: dt.date | None,
    retrain: bool,
    epochs: int | None,
    dask_address: str | None = None,
) -> dict:
    from flows.nightly import nightly as nightly_flow

    return nightly_flow(
        warehouse_path=str(warehouse),
        as_of=as_of,
        config_file=str(config) if config else None,
        retrain=retrain,
        epochs=epochs,
        dask_address=dask_address,
    )


@app.command()
def nightly(
    as_of: AsOfOpt = None,
    retrain: Annotated[bool, typer.Option("--retrain", help="Retrain every model.")] = False,
    epochs: EpochsOpt = None,
    dask_address: DaskOpt = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run the nightly flow once: forecast, optimise prices, write recommendations."""

    def action() -> None:
        settings = settings_of(warehouse, config)
        console.load_tensorflow()
        summary = _nightly(
            settings.warehouse, config, date_of(as_of), retrain, epochs, dask_address
        )
        _print_summary(summary)

    run_command(debug, action)


@app.command()
def retrain(
    category: Annotated[str | None, typer.Option("--category", help="Only this category.")] = None,
    products: Annotated[
        str | None, typer.Option("--products", help="Comma-separated product ids.")
    ] = None,
    all_products: Annotated[bool, typer.Option("--all", help="Every active product.")] = False,
    as_of: AsOfOpt = None,
    epochs: EpochsOpt = None,
    dask_address: DaskOpt = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Retrain models by hand: --all, --category X or --products a,b,c."""
    from flows.nightly import retrain as retrain_flow
    from pipeline import warehouse as wh
    from pipeline.night import select_products

    def action() -> None:
        if sum([all_products, category is not None, products is not None]) != 1:
            raise CommandError("choose exactly one of --all, --category X or --products a,b,c")
        settings = settings_of(warehouse, config)
        ids = [p.strip() for p in products.split(",") if p.strip()] if products else None
        # Check the selection before starting Prefect, so a typo is one line, not a failed run.
        active = wh.read_products(wh.reading_path(settings.warehouse), active_only=True)
        select_products(active, category, ids)
        console.load_tensorflow()
        summary = retrain_flow(
            warehouse_path=str(settings.warehouse),
            category=category,
            product_ids=ids,
            as_of=date_of(as_of),
            config_file=str(config) if config else None,
            epochs=epochs,
            dask_address=dask_address,
        )
        typer.echo(
            f"retrained {summary['n_trained']} of {summary['n_products']} products "
            f"(model version {summary['model_version']}); the next nightly run uses them"
        )

    run_command(debug, action)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query.")],
    rows: Annotated[int, typer.Option("--rows", help="Most rows to print.")] = 50,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run a read-only query against the analysts' snapshot and print the result as a table."""
    import polars as pl

    from pipeline import warehouse as wh

    def action() -> None:
        # The analysts' snapshot never locks the nightly writer out (falls back to the file).
        path = wh.reading_path(settings_of(warehouse, config).warehouse)
        frame = wh.query_readonly(path, query)
        with pl.Config(tbl_rows=rows, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60):
            typer.echo(frame)

    run_command(debug, action)


@app.command()
def evaluate(
    suite: Annotated[
        bool, typer.Option("--suite", help="Run the scenario suite instead (no warehouse).")
    ] = False,
    scenarios: Annotated[
        str | None, typer.Option("--scenarios", help="Suite: comma-separated scenario names.")
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Suite: worlds per scenario.")] = 3,
    products: Annotated[
        int, typer.Option("--products", min=1, help="Suite: products per world.")
    ] = 200,
    days: Annotated[int, typer.Option("--days", min=30, help="Suite: days of history.")] = 730,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Suite: training epochs.")] = 6,
    no_forecast: Annotated[
        bool,
        typer.Option(
            "--no-forecast",
            help="Suite: regression elasticities only, no LSTM (no WAPE, model capture, holds).",
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Suite: also write the JSON to this file.")
    ] = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Compare learned elasticities and recommended prices with the ground truth.

    Without --suite: the demo world in the warehouse. With --suite: every named scenario
    (`--scenarios a,b`) x seed, each world run through the night in this process.
    """

    def action() -> None:
        from pipeline.evaluate import commands

        if not suite:
            commands.print_evaluation(settings_of(warehouse, config).warehouse, config)
            return
        names = [s.strip() for s in scenarios.split(",") if s.strip()] if scenarios else None
        commands.print_suite(names, seeds, products, days, epochs, not no_forecast, out, config)

    run_command(debug, action)


@app.command()
def simulate(
    nights: Annotated[int, typer.Option("--nights", min=1, help="Nights simulated.")] = 56,
    products: Annotated[int, typer.Option("--products", min=1, help="Products.")] = 200,
    days: Annotated[int, typer.Option("--days", min=60, help="Days before night 1.")] = 730,
    scenario: Annotated[str, typer.Option("--scenario", help="World scenario.")] = "demo",
    seed: Annotated[int, typer.Option("--seed", help="World and market seed.")] = 0,
    epochs: EpochsOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the JSON here.")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="PNG of cumulative profit against the oracle.")
    ] = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Closed loop on a synthetic world: price, sell at the true demand, learn, night after night.

    Beside this engine (with its configured price tests) run the same engine with price tests
    off, the log-log baseline, an oracle on the true demand under the same rules, a cautious oracle
    that also keeps the engine's evidence rules (trust region, inelastic walk), and today's prices
    kept. Prints a line per night and the summary; JSON with every night's figures.
    """

    def action() -> None:
        import json
        import time
        from dataclasses import replace

        from pipeline import synth

        if scenario not in synth.SCENARIOS:
            known = ", ".join(sorted(synth.SCENARIOS))
            raise CommandError(f"unknown scenario '{scenario}': choose one of {known}")
        # Before pipeline.simulate, which imports the model package: TensorFlow's start-up lines
        # are silenced only when it loads here.
        console.load_tensorflow()
        from pipeline.simulate import SimConfig, night_line, summarise, table_header
        from pipeline.simulate import simulate as simulate_loop
        from pipeline.simulate import summary as sim_summary

        settings = settings_of(None, config)
        if epochs is not None:
            model = replace(
                settings.model, epochs=epochs, min_epochs=min(epochs, settings.model.min_epochs)
            )
            settings = replace(settings, model=model)
        cfg = SimConfig(nights=nights, products=products, days=days, scenario=scenario, seed=seed)
        typer.echo(table_header(list(cfg.arms)), err=True)
        start = time.perf_counter()

        def show(night: dict) -> None:
            line = night_line(night, list(cfg.arms), cfg.nights, time.perf_counter() - start)
            typer.echo(line, err=True)

        result = simulate_loop(cfg, settings, show)
        result["summary"] = summarise(result)
        if plot is not None:
            sim_summary.plot(result, plot)
            typer.echo(f"wrote {plot}", err=True)
        text = json.dumps(result["summary"], indent=2, default=str)
        if out is not None:
            out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        typer.echo(text)

    run_command(debug, action)


app.add_typer(bench_app, name="bench")
app.command()(tune)


@app.command()
def serve(
    cron: Annotated[
        str | None, typer.Option("--cron", help="Nightly schedule (default run.nightly_cron).")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="Its IANA time zone (default run.timezone).")
    ] = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Serve the nightly (scheduled) and retrain (on demand) deployments until stopped."""
    from dataclasses import replace

    def action() -> None:
        from flows.deploy import serve_deployments

        settings = settings_of(warehouse, config)
        overrides = {k: v for k, v in {"nightly_cron": cron, "timezone": timezone}.items() if v}
        # replace() re-runs RunConfig's validation on the overrides.
        settings = replace(settings, run=replace(settings.run, **overrides))
        serve_deployments(settings, config)

    run_command(debug, action)


@app.command()
def report(
    product: Annotated[
        str | None, typer.Option("--product", help="Product whose curves are drawn.")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir",
            help="Folder (default: reports/ by the warehouse; with --simulation, the JSON's).",
        ),
    ] = None,
    simulation: Annotated[
        Path | None,
        typer.Option(
            "--simulation",
            help="Report this `pricing simulate --out` JSON instead: cumulative profit of each "
            "policy against the oracle, capture, and the nights.",
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write an HTML report with plots of the latest nightly run (or of a simulation)."""
    from pipeline import report as rp

    def action() -> None:
        if simulation is not None:
            from pipeline.simulate.report import write_simulation_report

            typer.echo(f"wrote {write_simulation_report(simulation, out_dir)}")
            return
        path = rp.write_report(settings_of(warehouse, config).warehouse, out_dir, product)
        typer.echo(f"wrote {path}")

    run_command(debug, action)


@app.command()
def plot(
    product_id: Annotated[str, typer.Argument(help="The product to plot.")],
    out: Annotated[Path | None, typer.Option("--out", help="PNG file to write.")] = None,
    days: Annotated[int, typer.Option("--days", min=7, help="Days of sales shown.")] = 120,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Plot one product: recent sales, its forecast, and its demand and profit curves (PNG)."""
    from pipeline import report as rp

    def action() -> None:
        path = settings_of(warehouse, config).warehouse
        typer.echo(f"wrote {rp.write_product_plot(path, product_id, out, days)}")

    run_command(debug, action)


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


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
