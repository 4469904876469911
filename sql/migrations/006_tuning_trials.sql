-- 006: `pricing tune`'s trials (pipeline/tune/): one row per trial of a study of the forecaster's
-- [model] options, written as each trial ends, so a stopped study keeps what it learnt. A study
-- continues where it stopped when the same command runs again (its trial numbers go on).
-- Scores are median backtest WAPE over the sampled products (0.25 = 25%; lower is better).

create table if not exists tuning_trials (
    study_name   varchar not null,    -- the study: scope (category or 'all'), sample size, a hash
    trial_number integer not null,    -- Optuna's number within the study; 0 = the config tuned from
    category     varchar,             -- the category tuned on; null = all categories
    state        varchar not null,    -- 'complete' | 'pruned' | 'fail' | 'running'
    score        double,              -- median backtest WAPE of a complete trial, else null
    naive_score  double,              -- seasonal-naive's median WAPE on the same backtests
    params       varchar not null,    -- JSON: the [model] values the trial tried
    is_default   boolean not null default false,  -- the configuration the study tunes from
    fold_scores  varchar,             -- JSON list: the running score after each backtest fold
    seconds      double,              -- wall-clock seconds the trial ran
    started_at   timestamp,           -- UTC
    n_products   integer,             -- products in the sample
    note         varchar,             -- why a trial stopped early (pruned, out of time)
    primary key (study_name, trial_number)
);
