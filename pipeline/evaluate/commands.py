"""The bodies of `pricing evaluate` (the demo world in a warehouse, or the scenario suite).

Kept out of `pipeline/cli.py`, which only declares the commands and their options.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pipeline import console
from pipeline import evaluate as ev
from pipeline import warehouse as wh
from pipeline.cli_base import CommandError, settings_of
from pipeline.config import load_settings
from pipeline.evaluate import suite, table


def print_evaluation(warehouse: Path, config: Path | None) -> None:
    """`pricing evaluate` on the demo world in the warehouse: the night's report against truth."""
    settings = settings_of(warehouse, config)
    # The analysts' snapshot: evaluating never waits for (or delays) a run writing the warehouse.
    source = wh.reading_path(settings.warehouse)
    truth = wh.read_truth(source)
    if truth is None:
        raise CommandError(
            "no demo_truth in this warehouse: evaluate works on `pricing demo` worlds"
        )
    versions = wh.read_model_versions(source, latest_only=True)
    recs = wh.read_recommendations(source, latest_only=True)
    if versions.is_empty() or recs.is_empty():
        raise CommandError("no models or recommendations yet: run `pricing nightly` first")
    products = wh.read_products(source, active_only=True)
    start = recs["effective_date"].max()
    sales = wh.read_sales(source, before=start)
    report = ev.night_report(
        versions, recs, products, sales, truth, start, settings.model.horizon,
        settings.model.min_history_days, settings.pricing,
    )  # fmt: skip
    typer.echo("\n" + ev.night_text(report))


def print_suite(
    names: list[str] | None,
    seeds: int,
    products: int,
    days: int,
    epochs: int,
    forecast: bool,
    out: Path | None,
    config: Path | None,
) -> None:
    """`pricing evaluate --suite`: run the scenario suite, print its table, write its JSON."""
    options = suite.SuiteOptions(
        **({"scenarios": tuple(names)} if names else {}),
        seeds=seeds, n_products=products, n_days=days, epochs=epochs, forecast=forecast,
    )  # fmt: skip
    if forecast:
        console.load_tensorflow()
    result = suite.run_suite(
        options, load_settings(config), lambda line: typer.echo(line, err=True)
    )
    result["scenarios"] = table.scenario_figures(result["runs"])
    if out is not None:
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    typer.echo(table.suite_table(result["scenarios"]))
    typer.echo(
        f"\n{table.LEGEND}\nsuite: {result['seconds']:.0f} s for {len(result['runs'])} worlds"
    )
