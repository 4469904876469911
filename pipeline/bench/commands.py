"""`pricing bench`: the benchmarks' commands (JSON with medians and ratios measured in one run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline import console
from pipeline.cli_base import CommandError, ConfigOpt, DebugOpt, run_command

bench_app = typer.Typer(help="Benchmarks: JSON with medians and ratios measured in one run.")
OutOpt = Annotated[Path | None, typer.Option("--out", help="Also write the JSON to this file.")]


def _integers(text: str, option: str) -> list[int]:
    """A comma-separated option's integers (blank items skipped); a user's error otherwise."""
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise CommandError(f"{option} takes comma-separated integers, not {text!r}") from None


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
    options: Annotated[
        bool,
        typer.Option(
            "--options/--no-options",
            help="Also time each architecture option (cell, layers, dropout, decoder) on the "
            "smallest size.",
        ),
    ] = True,
    out: OutOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Batched per-product training against the naive per-product Keras loop, and the cost of
    each architecture option beside the default's."""
    from pipeline.bench import train as bench

    def action() -> None:
        counts = _integers(sizes, "--sizes")
        console.load_tensorflow()
        _emit_json(bench.run(counts, days, epochs, naive_products, repeats, options), out)

    run_command(debug, action)


@bench_app.command("optimize")
def bench_optimize(
    products: Annotated[int, typer.Option("--products", min=2, help="Catalogue size.")] = 10_000,
    candidates: Annotated[
        int, typer.Option("--candidates", min=3, help="Candidate prices per product.")
    ] = 25,
    max_changes: Annotated[
        int, typer.Option("--max-changes", min=1, help="Change budget at 10,000 products.")
    ] = 1_000,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed runs per measure.")] = 5,
    milp_sizes: Annotated[
        str, typer.Option("--milp-sizes", help="Sizes at which scipy's milp is timed too.")
    ] = "200,1000",
    milp_time_limit: Annotated[
        float, typer.Option("--milp-time-limit", help="Seconds milp may run per size.")
    ] = 60.0,
    out: OutOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The coupled price choice (families, change budget) on a large catalogue, end to end."""
    from pipeline.bench import optimize as bench

    def action() -> None:
        sizes = tuple(_integers(milp_sizes, "--milp-sizes"))
        result = bench.run(products, candidates, max_changes, repeats, sizes, milp_time_limit)
        _emit_json(result, out)

    run_command(debug, action)


@bench_app.command("nightly")
def bench_nightly(
    sizes: Annotated[
        str, typer.Option("--sizes", help="Comma-separated product counts.")
    ] = "100,300,1000",
    days: Annotated[int, typer.Option("--days", help="Days of history.")] = 730,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Max epochs (default: configured).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic worlds.")] = 0,
    out: OutOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Time the whole nightly flow, retraining and with current models, at several sizes."""
    from pipeline.bench import nightly as bench

    def action() -> None:
        counts = _integers(sizes, "--sizes")
        console.load_tensorflow()
        result = bench.run(counts, days, epochs, seed)
        typer.echo(bench.table(result), err=True)
        _emit_json(result, out)

    run_command(debug, action)


@bench_app.command("tune")
def bench_tune(
    scenarios: Annotated[
        str | None,
        typer.Option("--scenarios", help="Comma-separated scenario names (default: all)."),
    ] = None,
    products: Annotated[int, typer.Option("--products", min=1, help="Products per world.")] = 200,
    days: Annotated[int, typer.Option("--days", min=30, help="Days of history.")] = 730,
    sample: Annotated[
        int, typer.Option("--sample", min=1, help="Products `pricing tune` samples.")
    ] = 50,
    minutes: Annotated[
        float, typer.Option("--minutes", min=0.05, help="Tuning budget per scenario.")
    ] = 10.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the world tuned on.")] = 0,
    holdout: Annotated[
        int, typer.Option("--holdout", min=1, help="Held-out worlds scored per scenario.")
    ] = 2,
    eval_products: Annotated[
        int, typer.Option("--eval-products", min=1, help="Products scored per held-out world.")
    ] = 100,
    out: OutOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """`pricing tune` on one world per scenario, then the configuration tuned from (the model
    section of --config, or the defaults) against the tuned one on held-out worlds of the same
    scenario (median backtest WAPE)."""
    from pipeline.bench import tune as bench

    def action() -> None:
        from pipeline import synth
        from pipeline.config import load_settings

        names = [s.strip() for s in (scenarios or ",".join(synth.SCENARIOS)).split(",")]
        console.load_tensorflow()
        say = lambda line: typer.echo(line, err=True)  # noqa: E731
        result = bench.run(
            [n for n in names if n], products, days, sample, minutes, seed, holdout,
            eval_products, say, load_settings(config).model,
        )  # fmt: skip
        typer.echo(bench.table(result), err=True)
        _emit_json(result, out)

    run_command(debug, action)


@bench_app.command("test-power")
def bench_test_power(
    scenario: Annotated[str, typer.Option("--scenario", help="The worlds' scenario.")] = "demo",
    products: Annotated[int, typer.Option("--products", min=2, help="Products per world.")] = 200,
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated world seeds.")] = "0,1,2",
    out: OutOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """What one price test (--config's pricing.explore_* settings) can teach: on worlds that
    know the truth, the elasticity's own interval after the test, for products whose price never
    moved, beside a doubled step and a symmetric test."""
    from pipeline.bench import test_power as bench

    def action() -> None:
        from pipeline.config import load_settings

        numbers = _integers(seeds, "--seeds")
        if not numbers:
            raise CommandError("--seeds: give at least one seed")
        result = bench.run(scenario, products, numbers, load_settings(config).pricing)
        typer.echo(bench.table(result), err=True)
        _emit_json(result, out)

    run_command(debug, action)
