"""`pricing tune` (pipeline/tune/): the search space, the backtest score, the study and the command.

The command runs in this process (typer's CliRunner) on a small seeded world in its own
warehouse: 20 products, 200 days, trials of at most 2 epochs. No assertion depends on timing: the
time budget is tested with a deadline already past.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest
from typer.testing import CliRunner, Result

from pipeline import cli, synth
from pipeline import warehouse as wh
from pipeline.config import ModelConfig, load_settings
from pipeline.tune import objective as obj
from pipeline.tune import space as sp
from pipeline.tune import study as st
from pipeline.tune.clock import Budget, OutOfTime, TrialClock
from pipeline.tune.confirm import (
    BASE_IS_BEST,
    CONFIRMED,
    NO_OTHERS,
    OUT_OF_TIME,
    REJECTED,
    confirm,
)
from pipeline.tune.sampling import draw_sample, read_history, trainable_counts

N_PRODUCTS, N_DAYS, SEED = 20, 200, 3
FAST = ("--epochs", "2", "--minutes", "30")


@pytest.fixture(scope="module")
def world() -> synth.World:
    return synth.generate_world(n_products=N_PRODUCTS, n_days=N_DAYS, seed=SEED)


@pytest.fixture
def path(tmp_path: Path, world: synth.World) -> Path:
    """A warehouse holding the world's history (no night has run)."""
    file = tmp_path / "pricing.duckdb"
    wh.write_inputs(file, world.products, world.sales, world.truth)
    return file


def invoke(path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli.app, ["tune", "--warehouse", str(path), *args])


def trials(path: Path) -> pl.DataFrame:
    return wh.read_tuning_trials(path)


# --------------------------------------------------------------------------- the search space


def test_the_space_searches_every_option_model_config_has_and_holds_the_base():
    base = ModelConfig(hidden_units=256, segment_days=96, learning_rate=0.3)
    space = sp.search_space(base, max_epochs=60)
    names = [dim.name for dim in space]
    fields = sp.model_options()
    wanted = ["cell", "layers", "dropout", "decoder", "local_level_days", "hidden_units",
              "learning_rate"]  # fmt: skip
    assert [n for n in wanted if n in fields] == [n for n in names if n in wanted]
    assert {"hidden_units", "learning_rate", "segment_days", "epochs"} <= set(names) <= fields
    dims = {dim.name: dim for dim in space}
    assert dims["hidden_units"].high == 256 and 96 in dims["segment_days"].choices
    assert dims["learning_rate"].high == 0.3
    assert (dims["epochs"].low, dims["epochs"].high) == (15, 60)
    # Trial 0 of a study tries the base exactly; later trials get valid configurations.
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.enqueue_trial(sp.base_params(base, space))
    assert sp.trial_config(base, sp.suggest(study.ask(), space)) == base
    for _ in range(5):
        params = sp.suggest(study.ask(), space)
        cfg = sp.trial_config(base, params)
        assert {k: getattr(cfg, k) for k in params} == params
        assert cfg.min_epochs <= cfg.epochs


def test_floats_are_kept_as_printed():
    assert sp.rounded(0.0123456, None) == 0.0123
    assert sp.rounded(0.30000000000000004, 0.05) == 0.3
    dim = sp.Dimension("dropout", "float", low=0.0, high=0.5, step=0.05)
    assert dim.widened(0.12).step is None  # off the grid: searched continuously


# --------------------------------------------------------------------------- the score


def test_folds_end_a_validation_window_apart_and_refuse_short_histories():
    cfg = ModelConfig()
    assert obj.fold_ends(400, cfg) == [372, 400]
    with pytest.raises(obj.TuneError, match="at least 112"):
        obj.fold_ends(111, cfg)
    with pytest.raises(obj.TuneError, match="validation_days is 0"):
        obj.fold_ends(400, dataclasses.replace(cfg, validation_days=0))


def test_the_score_is_the_median_product_wape_over_the_folds(path: Path):
    night = read_history(path)
    sample = draw_sample(night, ModelConfig(), 6, None, seed=1)
    cfg = ModelConfig(epochs=2, min_epochs=0)
    reported: list[tuple[int, float]] = []
    score = obj.evaluate(sample, cfg, lambda fold, value: reported.append((fold, value)))
    assert [fold for fold, _ in reported] == [0, 1]
    assert score.folds == tuple(value for _, value in reported) and score.wape == score.folds[-1]
    # The same as pooling each fold's errors by hand.
    errors = [obj.backtest_fold(sample, cfg, end) for end in obj.fold_ends(N_DAYS, cfg)]
    model_err = sum(e[0] for e in errors)
    actual = sum(e[2] for e in errors)
    assert score.wape == pytest.approx(np.nanmedian(model_err / actual), rel=1e-6)
    assert 0 < score.wape < 2 and 0 < score.naive_wape < 2


def test_a_trial_that_would_run_past_the_deadline_stops_between_epochs(path: Path):
    night = read_history(path)
    base = ModelConfig(epochs=3, min_epochs=0)
    space = sp.search_space(base, 3)
    plan = st.StudyPlan(draw_sample(night, base, 4, None, 0), base, space, 1, 0)
    study = optuna.create_study()
    study.enqueue_trial(sp.base_params(base, space))  # 3 epochs: the first is not the last
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        st.objective(trial, plan, Budget(deadline=0.0))  # long past
    assert trial.user_attrs["note"] == "out of time"


def test_the_clock_stops_a_trial_between_epochs_only_when_the_deadline_is_near():
    relaxed = TrialClock(Budget(deadline=float("inf")), folds=2)
    for epoch in range(1, 6):
        relaxed.epoch(epoch, 5, 0.0, 1)
    assert relaxed.budget.first_epoch is not None and relaxed.budget.can_start()
    late = TrialClock(Budget(deadline=0.0), folds=2)
    late.epoch(5, 5, 0.0, 1)  # the fold's last epoch: nothing left to stop
    with pytest.raises(OutOfTime, match="out of time"):
        late.epoch(1, 5, 0.0, 1)
    assert not late.budget.can_start()


# --------------------------------------------------------------------------- the confirmation


def test_the_best_is_confirmed_on_other_products_or_the_base_stands(path: Path):
    night = read_history(path)
    base = ModelConfig(epochs=2, min_epochs=2)
    sample = draw_sample(night, base, 6, None, 0)
    forever = float("inf")
    assert confirm(night, sample, base, base, 0, forever).status == BASE_IS_BEST
    # A network that barely learns loses on the other products, and the base stands.
    poor = dataclasses.replace(base, hidden_units=1, learning_rate=1e-4, epochs=1, min_epochs=1)
    check = confirm(night, sample, base, poor, 0, forever)
    assert check.status == REJECTED and not check.recommends_best
    assert check.products == 6 and check.best_score >= check.base_score
    # The second sample is drawn outside the first, in the same scope.
    second = draw_sample(night, base, 6, None, 1, exclude=sample.panel.product_ids)
    assert not set(second.panel.product_ids) & set(sample.panel.product_ids)
    assert check.base_score == pytest.approx(obj.evaluate(second, base).wape, rel=1e-3)
    # The other way round, the better network is confirmed.
    assert confirm(night, sample, poor, base, 0, forever).status == CONFIRMED
    # Out of time: the base stands; too few other products: the best, said unconfirmed.
    late = confirm(night, sample, base, poor, 0, 0.0)
    assert late.status == OUT_OF_TIME and not late.recommends_best
    everyone = draw_sample(night, base, sum(trainable_counts(night, base).values()) - 2, None, 0)
    alone = confirm(night, everyone, base, poor, 0, forever)
    assert alone.status == NO_OTHERS and alone.recommends_best and alone.products == 2
    assert "not confirmed: only 2 products" in alone.line()


def test_samples_are_seeded_and_refuse_what_cannot_be_drawn(path: Path):
    night = read_history(path)
    cfg = ModelConfig()
    first = draw_sample(night, cfg, 5, None, seed=4)
    assert first.panel.product_ids == draw_sample(night, cfg, 5, None, seed=4).panel.product_ids
    assert first.panel.product_ids != draw_sample(night, cfg, 5, None, seed=5).panel.product_ids
    counts = trainable_counts(night, cfg)
    name, count = max(counts.items(), key=lambda item: item[1])
    chosen = draw_sample(night, cfg, count, name, seed=0)
    assert set(chosen.groups) == {name} and len(chosen.panel.product_ids) == count
    with pytest.raises(obj.TuneError, match=f"more than the {sum(counts.values())} products"):
        draw_sample(night, cfg, sum(counts.values()) + 1, None, seed=0)


# --------------------------------------------------------------------------- the command


def test_tune_writes_its_trials_prints_a_loadable_section_and_resumes(
    path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tune.json"
    first = invoke(path, "--trials", "2", "--products", "6", *FAST, "--out", str(out))
    assert first.exit_code == 0, first.output
    rows = trials(path)
    assert rows["trial_number"].to_list() == [0, 1]
    assert rows["is_default"].to_list() == [True, False]
    assert rows["n_products"].to_list() == [6, 6] and rows["category"].null_count() == 2
    assert set(rows["state"]) <= {"complete", "pruned", "fail"}
    assert rows["state"][0] == "complete" and rows["score"][0] > 0
    names = {dim.name for dim in sp.search_space(ModelConfig(epochs=2, min_epochs=2), 2)}
    assert set(json.loads(rows["params"][0])) == names
    assert (path.parent / "pricing.tuning.journal").is_file()
    progress = [line for line in first.stderr.splitlines() if "trials |" in line]
    assert [line.split("]")[1].split("trials")[0].strip() for line in progress] == ["1/2", "2/2"]

    # The section on stdout is a config file whose model is the best trial's configuration.
    report = json.loads(out.read_text())
    (study,) = report["studies"]
    assert len(study["trials"]) == 2 and study["default_score"] == rows["score"][0]
    best = study["best"]
    assert best["score"] == rows.filter(pl.col("state") == "complete")["score"].min()
    # What is printed is what a second sample of products confirmed: the best, or the base.
    recommended, check = study["recommended"], study["confirmation"]
    assert check["status"] in ("confirmed", "rejected", "base_is_best", "out_of_time")
    source = "best" if check["status"] in ("confirmed", "base_is_best") else "tuned_from"
    assert recommended["source"] == source
    assert first.stdout == recommended["toml"] and first.stdout.startswith("# pricing tune: study ")
    config = tmp_path / "tuned.toml"
    config.write_text(first.stdout)
    tuned = load_settings(config).model
    assert {key: getattr(tuned, key) for key in recommended["params"]} == recommended["params"]
    if source == "best":
        assert recommended["params"] == best["params"]

    second = invoke(path, "--trials", "1", "--products", "6", *FAST)
    assert second.exit_code == 0, second.output
    again = trials(path)
    assert again["trial_number"].to_list() == [0, 1, 2]
    assert again["study_name"].n_unique() == 1 and not again["is_default"][2]
    assert "2 earlier trials" in second.stderr


def test_tune_per_category_writes_each_category_s_study(tmp_path: Path, world: synth.World):
    # Two categories stay active: the largest, and the smallest (fewer products than sampled).
    sizes = world.products["category"].value_counts(sort=True)["category"].to_list()
    kept = [sizes[0], sizes[-1]]
    products = world.products.with_columns(is_active=pl.col("category").is_in(kept))
    path = tmp_path / "pricing.duckdb"
    wh.write_inputs(path, products, world.sales, world.truth)

    result = invoke(path, "--per-category", "--trials", "1", "--products", "3", "--epochs", "1")
    assert result.exit_code == 0, result.output
    rows = trials(path)
    counts = trainable_counts(read_history(path), ModelConfig())
    assert sorted(rows["category"]) == sorted(counts) == sorted(kept)
    assert rows["study_name"].n_unique() == 2 and rows["is_default"].all()
    # A category with fewer products than asked tunes on all it has.
    assert rows["n_products"].to_list() == [min(3, counts[c]) for c in rows["category"]]
    sections = [s for s in result.stdout.split("\n\n") if s.strip()]
    assert [s.splitlines()[0] for s in sections] == [f"# category: {c}" for c in sorted(kept)]
    assert all("[model]" in s for s in sections)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--category", "nope"), "error: unknown category 'nope': choose one of "),
        (("--products", "500"), "error: --products 500 is more than the "),
        (("--category", "snacks", "--per-category"), "error: --category and --per-category"),
    ],
)
def test_mistakes_are_one_line_errors(path: Path, args: tuple[str, ...], message: str):
    result = invoke(path, *args, *FAST)
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message)
    assert not (path.parent / "pricing.tuning.journal").exists()


def test_a_warehouse_without_history_is_a_one_line_error(tmp_path: Path):
    path = tmp_path / "pricing.duckdb"
    wh.migrate(path)
    result = invoke(path, *FAST)
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1
    assert "has no sales" in result.stderr


def test_a_configuration_model_config_refuses_fails_its_trial_and_the_study_goes_on(path: Path):
    base = ModelConfig()
    space = (sp.Dimension("segment_days", "choice", choices=(8,)),)  # below ModelConfig's minimum
    plan = st.StudyPlan(draw_sample(read_history(path), base, 4, None, 0), base, space, 2, 0)
    study = optuna.create_study()
    states: list[str] = []
    st.run_study(
        study,
        plan,
        Budget(float("inf")),
        lambda _, t: states.append(st.trial_record(t, plan)["state"]),
    )
    assert states == ["fail", "fail"]


def test_the_progress_bar_fills_with_trials_or_with_time_whichever_is_further():
    from pipeline.tune.output import progress_line

    record = {"note": None, "state": "complete", "score": 0.41, "seconds": 30.0, "trial_number": 2}

    def filled(line: str) -> int:
        return line[: line.index("]")].count("#")

    # 3 of 20 trials: by trials alone the bar is 3/20 full, whatever the clock says.
    assert filled(progress_line(3, 20, record, 0.4, seconds_left=60.0)) == 3
    # The same 3 trials with 90% of a 600 s budget gone: the clock ends the study first.
    line = progress_line(3, 20, record, 0.4, seconds_left=60.0, seconds_total=600.0)
    assert filled(line) == 18
    assert "3/20 trials" in line and "1:00 left" in line
    # Trials ahead of the clock: the trials' share.
    assert filled(progress_line(15, 20, record, 0.4, 540.0, seconds_total=600.0)) == 15
    # Past the deadline: full, never beyond.
    assert filled(progress_line(1, 20, record, None, -5.0, seconds_total=600.0)) == 20
