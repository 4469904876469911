-- 001: the data contract (DESIGN section 3). Inputs are written by `pricing demo` / `pricing load`,
-- outputs only by the pipeline, every output row carrying the run_id that produced it.
-- Money is in the shop's currency per unit; units are items sold per day.

create table if not exists products (
    product_id    varchar primary key,
    name          varchar,
    category      varchar not null default 'uncategorised',
    family_id     varchar,            -- products of one family differ only by size
    size_rank     integer,            -- 1 = smallest size within the family
    unit_cost     double not null,    -- currency per unit
    current_price double not null,    -- currency per unit, the price on the shelf now
    min_price     double not null,    -- currency per unit, never recommend below
    max_price     double not null,    -- currency per unit, never recommend above
    is_active     boolean not null default true,
    is_kvi        boolean not null default false,  -- key-value item: tighter change limits
    launched_on   date                -- first day with sales
);

create table if not exists sales (
    product_id varchar not null,
    ds         date not null,          -- calendar day (shop local time)
    units      double not null,        -- units sold that day; censored when stockout
    price      double not null,        -- shelf price paid, currency per unit
    promo      boolean not null default false,
    stockout   boolean not null default false,
    primary key (product_id, ds)
);

create table if not exists runs (
    run_id            varchar primary key,
    flow              varchar not null,  -- 'nightly' | 'retrain'
    started_at        timestamp not null,  -- UTC
    finished_at       timestamp,           -- UTC; null while running
    status            varchar not null,  -- 'running' | 'completed' | 'failed'
    as_of             date,              -- first day of the priced horizon
    parameters        varchar,           -- JSON of the flow parameters
    n_products        integer,
    n_trained         integer,
    n_recommendations integer,
    n_changes         integer,
    n_holds           integer,
    n_data_issues     integer,
    expected_profit_uplift double,       -- currency over the horizon, summed over products
    message           varchar            -- failure message, or a one-line summary
);

create table if not exists model_versions (
    model_version  varchar not null,
    product_id     varchar not null,
    run_id         varchar,
    trained_at     timestamp not null,   -- UTC
    n_train_days   integer,              -- observed days the model was fitted on
    backtest_wape  double,               -- weighted absolute % error of the model, 0.25 = 25%
    baseline_wape  double,               -- same for the seasonal-naive (weekly) baseline
    elasticity     double,               -- d log units / d log price, <= 0
    elasticity_lo  double,               -- lower end of its ~90% interval
    elasticity_hi  double,               -- upper end of its ~90% interval
    gate_passed    boolean not null,     -- model beats the baseline and elasticity is identified
    status         varchar not null,     -- 'trained' | 'cold_start' | 'not_identified' | 'gate_failed'
    artefact       varchar,              -- folder of the saved Keras weights
    primary key (model_version, product_id)
);

create table if not exists forecasts (
    run_id     varchar not null,
    product_id varchar not null,
    ds         date not null,           -- forecast day
    price      double not null,         -- price the forecast assumes (the recommended one)
    units_mean double not null,         -- expected units that day
    units_p10  double,
    units_p90  double,
    primary key (run_id, product_id, ds)
);

create table if not exists recommendations (
    run_id                 varchar not null,
    product_id             varchar not null,
    effective_date         date not null,    -- first day the price applies (= the run's as_of)
    current_price          double not null,
    recommended_price      double not null,
    action                 varchar not null, -- 'increase' | 'decrease' | 'keep' | 'hold'
    allowed_min            double,           -- lowest price the rules allowed
    allowed_max            double,           -- highest price the rules allowed
    expected_units         double,           -- over the horizon, at the recommended price
    expected_revenue       double,           -- currency over the horizon
    expected_profit        double,           -- currency over the horizon
    current_expected_units double,           -- the same three at the current price
    current_expected_revenue double,
    current_expected_profit double,
    profit_uplift          double,           -- expected_profit - current_expected_profit
    elasticity             double,
    elasticity_lo          double,
    elasticity_hi          double,
    binding_rule           varchar,          -- the rule that limited the price, or 'none'
    reason                 varchar not null, -- one sentence an analyst can read
    model_version          varchar,
    primary key (run_id, product_id)
);

create table if not exists data_issues (
    run_id     varchar not null,
    product_id varchar,
    ds         date,
    "check"    varchar not null,  -- name of the failed check
    detail     varchar
);
