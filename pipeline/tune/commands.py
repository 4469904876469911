"""`pricing tune`: search the `[model]` options on rolling-origin backtests of sampled products.

Prints a progress line per trial on stderr and, at the end, the best configuration as a TOML
`[model]` section on stdout (one per category with `--per-category`), ready for `--config`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline import console
from pipeline.cli_base import (
    CommandError,
    ConfigOpt,
    DebugOpt,
    WarehouseOpt,
    run_command,
    settings_of,
)
from pipeline.tune.clock import deadline_of

if TYPE_CHECKING:
    import optuna

    from pipeline.config import ModelConfig
    from pipeline.night import PreparedNight
    from pipeline.tune.study import StudyPlan

TrialsOpt = Annotated[
    int, typer.Option("--trials", min=1, help="Trials to add to the study (to each, per category).")
]
MinutesOpt = Annotated[
    float, typer.Option("--minutes", min=0.05, help="Hard time budget of the whole command.")
]
ProductsOpt = Annotated[
    int,
    typer.Option("--products", min=1, help="Products sampled (per category with --per-category)."),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write every trial and the best as JSON.")
]
CategoryOpt = Annotated[
    str | None, typer.Option("--category", help="Sample this category's products only.")
]
PerCategoryOpt = Annotated[
    bool, typer.Option("--per-category", help="One study per category, the budget shared.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the sample and of the sampler.")]
MaxEpochsOpt = Annotated[
    int | None,
    typer.Option(
        "--epochs", min=1, help="Most epochs a trial trains (default: 1.5x model.epochs)."
    ),
]


def tune(
    trials: TrialsOpt = 20,
    minutes: MinutesOpt = 10.0,
    products: ProductsOpt = 50,
    out: OutOpt = None,
    category: CategoryOpt = None,
    per_category: PerCategoryOpt = False,
    seed: SeedOpt = 0,
    epochs: MaxEpochsOpt = None,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Tune the forecaster's model options on backtests of a sample of products (Optuna TPE).

    Trial 0 is the configuration of --config (or the defaults); rerunning the same command
    continues its study. Every trial goes to the `tuning_trials` table.
    """

    def action() -> None:
        if category is not None and per_category:
            raise CommandError("--category and --per-category exclude each other: give one")
        deadline = deadline_of(minutes, time.monotonic())
        console.load_tensorflow()
        settings = settings_of(warehouse, config)
        from pipeline.tune.sampling import read_history

        studies = tune_night(
            read_history(settings.warehouse), settings.model, settings.warehouse, trials,
            products, category, per_category, seed, epochs, deadline,
        )  # fmt: skip
        if out is not None:
            text = json.dumps({"minutes": minutes, "studies": studies}, indent=2, default=str)
            out.write_text(text + "\n")
            typer.echo(f"wrote {out}", err=True)
        sections = (s["recommended"]["toml"] for s in studies if s["recommended"])
        typer.echo("\n".join(sections), nl=False)

    run_command(debug, action)


def tune_night(
    night: PreparedNight,
    base: ModelConfig,
    warehouse: Path,
    trials: int,
    size: int,
    category: str | None,
    per_category: bool,
    seed: int,
    max_epochs: int | None,
    deadline: float,
) -> list[dict[str, Any]]:
    """Tune `base` on a checked history: the studies' JSON (each with its best, if any, and
    what it recommends: the best where a second sample of products confirms it, else `base`).

    `warehouse` keeps the trials (`tuning_trials`, migrated here) and, next to it, the studies'
    journal. `pricing bench tune` calls this on worlds it holds in memory.
    """
    from pipeline import warehouse as wh
    from pipeline.tune import sampling
    from pipeline.tune.confirm import CONFIRM_SHARE
    from pipeline.tune.objective import TuneError
    from pipeline.tune.space import search_space
    from pipeline.tune.study import StudyPlan

    if max_epochs is not None:
        capped = min(base.epochs, max_epochs)
        base = dataclasses.replace(base, epochs=capped, min_epochs=min(base.min_epochs, capped))
    space = search_space(base, max_epochs or max(1, base.epochs * 3 // 2))
    if per_category:
        counts = sampling.trainable_counts(night, base)
        samples = [
            sampling.draw_sample(night, base, min(size, n), c, seed) for c, n in counts.items()
        ]
    else:
        samples = [sampling.draw_sample(night, base, size, category, seed)]
    plans = [StudyPlan(sample, base, space, trials, seed) for sample in samples]
    wh.migrate(warehouse)
    results = []
    for k, plan in enumerate(plans):
        now = time.monotonic()
        share = (deadline - now) / (len(plans) - k)
        # The study stops early enough to confirm its best on other products (`confirm`).
        result = _run_plan(plan, warehouse, now + share * (1 - CONFIRM_SHARE))
        results.append(_recommend(night, plan, result, now + share))
    if not any(result["best"] for result in results):
        raise TuneError(
            "no trial finished within the time budget: allow more --minutes, fewer --epochs "
            "or sample fewer --products"
        )
    return results


def _recommend(
    night: PreparedNight, plan: StudyPlan, result: dict[str, Any], deadline: float
) -> dict[str, Any]:
    """Confirm a study's best on other products; add "confirmation" and "recommended" (the
    configuration to use: its params and its `[model]` section) to its JSON."""
    from pipeline.tune import output
    from pipeline.tune.confirm import confirm
    from pipeline.tune.space import base_params, trial_config

    best = result["best"]
    if best is None:
        result["recommended"] = None
        return result
    best_cfg = trial_config(plan.base, best["params"])
    check = confirm(night, plan.sample, plan.base, best_cfg, plan.seed, deadline)
    typer.echo(f"study {plan.name}: {check.line()}", err=True)
    result["confirmation"] = check.as_json()
    finished = sum(t["state"] == "complete" for t in result["trials"])
    heading = [f"pricing tune: study {plan.name}, best of {finished} finished trials"]
    if plan.sample.category:
        heading.insert(0, f"category: {plan.sample.category}")
    default = result["default_score"]
    if check.recommends_best:
        toml = output.toml_section(best_cfg, best["score"], default, [*heading, check.line()])
        result["recommended"] = {"source": "best", "params": best["params"], "toml": toml}
        return result
    tried = f"best trial: {best['trial']} (WAPE {best['score']:.4f} on the sample)"
    score = default if default is not None else check.base_score
    toml = output.toml_section(plan.base, score, None, [*heading, tried, check.line()])
    params = base_params(plan.base, plan.space)
    result["recommended"] = {"source": "tuned_from", "params": params, "toml": toml}
    return result


def _run_plan(plan: StudyPlan, warehouse: Path, deadline: float) -> dict[str, Any]:
    """Run one study to its trials or its deadline; its JSON, with the best as TOML."""
    from pipeline import warehouse as wh
    from pipeline.tune import output
    from pipeline.tune import study as st
    from pipeline.tune.clock import Budget
    from pipeline.tune.objective import FOLDS

    study = st.open_study(st.storage_path(warehouse), plan)
    earlier = sum(t.state.is_finished() for t in study.trials)
    scope = f"category '{plan.sample.category}'" if plan.sample.category else "all categories"
    typer.echo(
        f"study {plan.name}: {len(plan.sample.panel.product_ids)} products of {scope}, "
        f"{FOLDS} backtest folds, {earlier} earlier trials, {plan.trials} to run",
        err=True,
    )
    done = 0

    def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal done
        record = st.trial_record(trial, plan)
        wh.write_tuning_trials(warehouse, [record])
        done += 1
        best = st.best_trial(study)
        line = output.progress_line(
            done, plan.trials, record, best and best.value, budget.left(), span
        )
        typer.echo(line, err=True)

    budget = Budget(deadline)
    span = budget.left()  # this study's time, for the progress bar
    st.run_study(study, plan, budget, on_trial)
    return _summary(plan, study)


def _summary(plan: StudyPlan, study: optuna.Study) -> dict[str, Any]:
    """A finished run of a study as JSON, its best configuration as TOML, and its line."""
    from pipeline.tune import output
    from pipeline.tune import study as st

    records = [st.trial_record(t, plan) for t in study.get_trials(deepcopy=False)]
    best, default = st.best_trial(study), st.default_score(study)
    result = output.study_json(
        plan.name, plan.sample.category, plan.sample.panel.product_ids, records, None
    )
    if best is None:
        typer.echo(f"study {plan.name}: no trial finished yet", err=True)
        return result
    finished = len(st.completed(study))
    heading = [f"pricing tune: study {plan.name}, best of {finished} finished trials"]
    if plan.sample.category:
        heading.insert(0, f"category: {plan.sample.category}")
    toml = output.toml_section(st.best_config(plan, best), best.value, default, heading)
    naive = best.user_attrs.get("naive_wape")
    typer.echo(
        f"study {plan.name}: best WAPE {output.score_text(best.value)} (trial {best.number}), "
        f"tuned from {output.score_text(default)}, seasonal-naive {output.score_text(naive)}",
        err=True,
    )
    result["best"] = {
        "trial": best.number,
        "score": best.value,
        "params": st.params_of(best),
        "toml": toml,
    }
    return result
