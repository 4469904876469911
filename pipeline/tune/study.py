"""The Optuna study of `pricing tune`: seeded TPE, median pruning, a hard time budget, resumable.

Storage is an Optuna journal file next to the warehouse (`pricing.duckdb` ->
`pricing.tuning.journal`), one study per sample: its name says the scope and size and ends in a
hash of the sampled products, the configuration tuned from and the search space, so rerunning
the same command continues the same study (its trial numbers go on) and a changed one starts
its own. Trial 0 of every study is the configuration tuned from (`enqueue_trial`), which is what
the best is compared with.

The sampler is TPE (multivariate, so options that act together, such as learning rate and
epochs, are modelled together), seeded with the seed plus the trials the study already has, so
a resumed study draws new points rather than repeating its first ones. The pruner is a
`MedianPruner` over each fold's running score: a trial whose first fold already scores worse
than the median of earlier trials at that fold is stopped. The time budget is hard:
`study.optimize` starts no trial after it, and a trial whose next epoch would end past it stops
between epochs (recorded as pruned, with a note; see `clock`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState

from pipeline.config import ConfigError, ModelConfig
from pipeline.tune.clock import Budget, OutOfTime, TrialClock
from pipeline.tune.objective import FOLDS, Sample, evaluate
from pipeline.tune.space import Dimension, base_params, fingerprint, suggest, trial_config

# Trials sampled at random before TPE models the results (few: budgets are minutes).
STARTUP_TRIALS = 4
# Trials that finish before the pruner may stop one.
PRUNER_STARTUP_TRIALS = 2


@dataclass(frozen=True)
class StudyPlan:
    """One study: what it scores, what it tunes from and over, and how many trials it adds.

    Attributes:
        sample: the products scored.
        base: the configuration tuned from (trial 0).
        space: the options searched.
        trials: trials this run adds to the study.
        seed: the sampler's seed.
    """

    sample: Sample
    base: ModelConfig
    space: tuple[Dimension, ...]
    trials: int
    seed: int

    @property
    def name(self) -> str:
        """The study's name: scope, sample size and a hash of what makes trials comparable."""
        scope = re.sub(r"[^a-z0-9]+", "-", (self.sample.category or "all").lower()).strip("-")
        products = list(self.sample.panel.product_ids)
        text = json.dumps({"products": products, **fingerprint(self.base, self.space)}, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        return f"{scope or 'category'}-{len(products)}p-{digest}"


def storage_path(warehouse: Path) -> Path:
    """The studies' journal file next to the warehouse file."""
    return warehouse.with_name(f"{warehouse.stem}.tuning.journal")


def open_study(path: Path, plan: StudyPlan) -> optuna.Study:
    """Create the plan's study in the journal at `path`, or load it to continue."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the command prints its own lines
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(
        storage=storage,
        study_name=plan.name,
        direction="minimize",
        load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS),
    )
    seed = plan.seed + len(study.trials)
    study.sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=STARTUP_TRIALS, multivariate=True
    )
    study.enqueue_trial(
        base_params(plan.base, plan.space), user_attrs={"default": True}, skip_if_exists=True
    )
    return study


def run_study(
    study: optuna.Study,
    plan: StudyPlan,
    budget: Budget,
    on_trial: Callable[[optuna.Study, FrozenTrial], None],
) -> None:
    """Add up to `plan.trials` trials to `study`, none running past `budget.deadline`.

    A configuration `ModelConfig` refuses (a bad mix of options) is recorded as a failed trial
    and the study goes on. `on_trial` is called after every trial, whatever its state.
    """
    if not budget.can_start() or plan.trials <= 0:
        return

    def after(study: optuna.Study, trial: FrozenTrial) -> None:
        on_trial(study, trial)
        if not budget.can_start():
            study.stop()

    study.optimize(
        lambda trial: objective(trial, plan, budget),
        n_trials=plan.trials,
        timeout=budget.left(),
        catch=(ConfigError,),
        callbacks=[after],
        gc_after_trial=True,
    )


def objective(trial: Trial, plan: StudyPlan, budget: Budget) -> float:
    """One trial: its configuration's rolling-origin backtest WAPE (lower is better).

    Raises:
        optuna.TrialPruned: the pruner stopped it after a fold, or its next epoch would end
            past the budget's deadline.
    """
    params = suggest(trial, plan.space)
    trial.set_user_attr("config", params)
    cfg = trial_config(plan.base, params)

    clock = TrialClock(budget, FOLDS)

    def on_fold(fold: int, score: float) -> None:
        clock.fold_done()
        trial.report(score, fold)
        if trial.should_prune():
            trial.set_user_attr("note", f"pruned after fold {fold + 1} (WAPE {score:.3f})")
            raise optuna.TrialPruned()

    try:
        score = evaluate(plan.sample, cfg, on_fold, clock.epoch)
    except OutOfTime as exc:
        trial.set_user_attr("note", str(exc))
        raise optuna.TrialPruned() from None
    trial.set_user_attr("naive_wape", score.naive_wape)
    return score.wape


def is_default(trial: FrozenTrial) -> bool:
    """Whether `trial` tried the configuration the study tunes from."""
    return bool(trial.user_attrs.get("default", False))


def completed(study: optuna.Study) -> list[FrozenTrial]:
    """The study's finished trials (with a score)."""
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def default_score(study: optuna.Study) -> float | None:
    """The score of the configuration tuned from, once its trial finished."""
    return next((t.value for t in completed(study) if is_default(t)), None)


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The lowest-scoring finished trial (the earliest among equals), if any."""
    done = completed(study)
    return min(done, key=lambda t: (t.value, t.number)) if done else None


def trial_record(trial: FrozenTrial, plan: StudyPlan) -> dict[str, Any]:
    """A trial as a `tuning_trials` row (and an entry of `--out`'s JSON)."""
    started = trial.datetime_start
    if started is not None:  # Optuna keeps local wall time; the warehouse keeps naive UTC
        started = started.astimezone(UTC).replace(tzinfo=None)
    seconds = trial.duration.total_seconds() if trial.duration is not None else None
    folds = [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
    return {
        "study_name": plan.name,
        "trial_number": trial.number,
        "category": plan.sample.category,
        "state": trial.state.name.lower(),
        "score": trial.value if trial.state == TrialState.COMPLETE else None,
        "naive_score": trial.user_attrs.get("naive_wape"),
        "params": json.dumps(trial.user_attrs.get("config", trial.params), sort_keys=True),
        "is_default": is_default(trial),
        "fold_scores": json.dumps(folds),
        "seconds": seconds,
        "started_at": started,
        "n_products": len(plan.sample.panel.product_ids),
        "note": trial.user_attrs.get("note"),
    }


def best_config(plan: StudyPlan, trial: FrozenTrial) -> ModelConfig:
    """The configuration a trial scored."""
    return trial_config(plan.base, params_of(trial))


def params_of(trial: FrozenTrial) -> dict[str, Any]:
    """The values a trial tried (as the configuration took them)."""
    return dict(trial.user_attrs.get("config", trial.params))
