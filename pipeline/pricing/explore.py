"""Price tests: move the price of a product whose elasticity is not identified, on purpose.

A product that is held because its elasticity cannot be known (its price never moved, its
forecast lost to seasonal-naive, its price followed demand, or it is new) teaches the engine
nothing while it is held. A price test moves it inside every guardrail until its elasticity is
identified, then it is priced as usual (`PricingConfig.explore`):

- "test": alternate a step of `explore_step` from the price the test started at (towards the
  optimum of the product's current estimate, where the rules leave room; the other way only
  where the step can be undone) and that price, each held `explore_min_days`, for
  `explore_phases` phases (4 weeks at most); a step phase holds the price it stepped to;
- "thompson": price on an elasticity drawn from the product's posterior (its category's prior
  updated by its own estimate), a new draw each `explore_min_days`, seeded;
- "off": no tests.

A test's step is at least one step of the price ladder and lies inside every guardrail
(`explore_room`): a product with no such price does not test, and its reason says so. A test
ends when the product's own elasticity interval is narrower than `explore_width` (identified) or
after its last phase (stopped; also when a data issue holds the product). A budget caps the
products testing at once (`explore_max_products`) and the expected profit put at risk per night
(`explore_max_risk`); running tests go first. A product whose test ended unidentified (or whose
finding a later model lost) tests again, as its next attempt (`test_attempt`), once
`explore_retry_days` have passed since the test's last night. On its first night a test predicts
how narrow it can make the interval (`reach.reach_width`, from the product's units a day, their
dispersion, the step and what was known before); the width is stored (`test_reach_width`) and
its reason says whether `explore_width` is within the test's reach.

Inelastic estimates (`inelastic_walk`, with `hold_inelastic`): a trained product whose estimate
is -1 or above stays within the prices it has sold at, since profit would rise without bound on
that estimate and an estimate from the history alone may be demand moving the price. It is
tested like an unidentified product (its step up may enter the widened trust region: the step is
the test), for `walk_test_phases` phases at least (2: the step up and the way back), narrow
interval or not. Once its test identified it, and while its
estimate stays identified, inelastic and not confounded, it walks: `recommend` gets the flag
`inelastic_walk` and prices it within the widened trust region like any other product, one step
past the prices sold at, then a week of sales there before the next (`features.PRICE_SEEN_DAYS`),
up to a max_price the catalogue sets (without one it does not walk: the default cap moves).

`hold_statuses` and tests (DESIGN section 5: a test runs "until the interval is narrow enough to
price on"): a product being tested is released from its hold for the test, and a product whose
test identified its elasticity is priced on its own estimate, as usual, from then on, for as
long as a model keeps that interval narrower than `explore_width`, whatever its status (a
gate_failed forecast keeps its own elasticity: the gate judges the demand level, not the price
response the test measured). `hold_statuses` keeps its meaning for products that are not being
tested and never were identified by a test: one never tested, one whose status is held but whose
own interval is already narrow (a test would teach nothing), and one whose test stopped
unidentified (held until its retry).

The test steers the engine, it does not bypass it: a tested product enters `recommend` released
from its hold with an elasticity whose profit optimum is the test's target price, so the allowed
range (rules, KVI limits, the maximum change per run, the trust region, the margin floor), price
endings, family order and the change budget all still decide the price. Its expected figures are
then recomputed on its own estimate and its reason says what the test does. Everything is pure:
the test's state comes from the recommendation history (`NightInputs.price_tests`).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipeline.arrays import Z90
from pipeline.config import PricingConfig
from pipeline.contract import (
    RULE_PRICE_TEST,
    STATUS_COLD_START,
    STATUS_CONFOUNDED,
    STATUS_GATE_FAILED,
    STATUS_NOT_IDENTIFIED,
    STATUS_TRAINED,
)
from pipeline.pricing.engine import recommend as engine_recommend
from pipeline.pricing.explore_room import no_room_reason, step_room
from pipeline.pricing.holds import held_whatever_status, inelastic_expr
from pipeline.pricing.ladder import HALF_CENT
from pipeline.pricing.reach import reach_width
from pipeline.pricing.thompson import thompson

TESTING, IDENTIFIED, STOPPED = "testing", "identified", "stopped"
RULE_ALTERNATE = "alternate"
TESTED_STATUSES = (STATUS_NOT_IDENTIFIED, STATUS_GATE_FAILED, STATUS_CONFOUNDED)
TEST_SCHEMA: dict[str, type[pl.DataType] | pl.DataType] = {
    "test_status": pl.String,
    "test_phase": pl.Int64,
    "test_phases": pl.Int64,
    "test_started": pl.Date,
    "test_base_price": pl.Float64,
    "test_direction": pl.Int64,
    "test_arm": pl.String,
    "test_rule": pl.String,
    "test_probability": pl.Float64,
    "test_target_price": pl.Float64,
    "test_attempt": pl.Int64,
    "test_reach_width": pl.Float64,
}
TEST_COLUMNS = tuple(TEST_SCHEMA)
# The state a night needs from the history: the latest test row of each product (and its night).
STATE_SCHEMA: dict[str, type[pl.DataType]] = {
    "product_id": pl.String,
    "test_status": pl.String,
    "test_started": pl.Date,
    "test_base_price": pl.Float64,
    "test_direction": pl.Int64,
    "test_attempt": pl.Int64,
    "test_reach_width": pl.Float64,
    "effective_date": pl.Date,
}
STATE_COLUMNS = tuple(STATE_SCHEMA)
_DEFAULT_SD = 0.75  # prior spread of an elasticity where its category has no trained product


def no_tests() -> pl.DataFrame:
    """An empty test history (no product has ever tested)."""
    return pl.DataFrame(schema=STATE_SCHEMA)


def _state(tests: pl.DataFrame, cfg: PricingConfig) -> pl.DataFrame:
    """The history in `STATE_SCHEMA`; a row without attempt or night: attempt 1, full length."""
    length = cfg.explore_phases * cfg.explore_min_days
    absent = [pl.lit(None, t).alias(c) for c, t in STATE_SCHEMA.items() if c not in tests.columns]
    return (
        tests.with_columns(absent)
        .select(pl.col(c).cast(t) for c, t in STATE_SCHEMA.items())
        .with_columns(
            pl.col("test_attempt").fill_null(1),
            pl.col("effective_date").fill_null(
                pl.col("test_started") + pl.duration(days=length - 1)
            ),
        )
    )


def recommend(
    products: pl.DataFrame,
    demand: pl.DataFrame,
    cfg: PricingConfig,
    tests: pl.DataFrame | None = None,
    as_of: dt.date | None = None,
    horizon_days: int | None = None,
) -> pl.DataFrame:
    """`pricing.recommend` with price tests, and the test columns (`TEST_COLUMNS`) added.

    Args:
        products: as for `pricing.recommend`.
        demand: the forecaster's product table, as for `pricing.recommend` (`status`,
            `n_train_days` and the price_seen columns are read where present).
        cfg: pricing rules with the `explore*` settings.
        tests: the latest test row per product (`STATE_COLUMNS`); None: no history.
        as_of: the night's first priced day (needed unless `cfg.explore` is "off").
        horizon_days: the days `demand`'s base_units cover (the forecast horizon), which a
            test's predicted reach needs (units a day); None: no prediction (null
            `test_reach_width`, and the reason says nothing of it).

    Returns:
        `pricing.recommend`'s rows with the test columns (null where no test).
    """
    if cfg.explore == "off" or as_of is None:
        return _with_columns(engine_recommend(products, demand, cfg), None)
    state = tests if tests is not None else no_tests()
    room = _room(products, demand, cfg)
    plan = plan_tests(products, demand, cfg, state, as_of, room, horizon_days)
    steered = _steered(demand, plan)
    recs = engine_recommend(products, steered, cfg)
    return _annotate(recs, demand, products, plan, cfg)


def _room(products: pl.DataFrame, demand: pl.DataFrame, cfg: PricingConfig) -> pl.DataFrame:
    """`step_room`, where a test of an inelastic estimate may step into the widened trust region.

    An inelastic estimate stays within the prices sold at (`holds.inelastic`), which would
    leave its test no step up, the way its estimate points; the step past them is the test.
    """
    if cfg.inelastic_walk and cfg.hold_inelastic:
        status = pl.col("status") if "status" in demand.columns else pl.lit(STATUS_TRAINED)
        demand = demand.with_columns(status.alias("status")).with_columns(
            _unproven(cfg).alias("inelastic_walk")
        )
    return step_room(products, demand, cfg)


def _with_columns(recs: pl.DataFrame, plan: pl.DataFrame | None) -> pl.DataFrame:
    if plan is None or plan.is_empty():
        return recs.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in TEST_SCHEMA.items())
    plan = plan.filter(pl.col("test_status").is_not_null())
    plan = plan.with_columns(pl.lit(None, pl.Int64).alias("test_phases"))
    typed = [pl.col(c).cast(t) for c, t in TEST_SCHEMA.items()]
    return recs.join(plan.select("product_id", *typed), on="product_id", how="left")


def _estimates(demand: pl.DataFrame, products: pl.DataFrame) -> pl.DataFrame:
    """Each product's catalogue and estimate: mean, sd, own interval width, history days."""
    status = pl.col("status") if "status" in demand.columns else pl.lit(STATUS_TRAINED)
    days = pl.col("n_train_days") if "n_train_days" in demand.columns else pl.lit(0)
    frame = demand.select(
        "product_id", "base_units", "ref_price", "elasticity", "elasticity_lo", "elasticity_hi",
        status.alias("status"), days.cast(pl.Int64).fill_null(0).alias("n_days"),
        (pl.col("dispersion") if "dispersion" in demand.columns else pl.lit(None, pl.Float64))
        .alias("dispersion"),
        (pl.col("hold_reason") if "hold_reason" in demand.columns else pl.lit(None, pl.String))
        .alias("hold_reason"),
        (pl.col("stockout_share") if "stockout_share" in demand.columns
         else pl.lit(None, pl.Float64)).alias("stockout_share"),
    )  # fmt: skip
    top = pl.col("max_price") if "max_price" in products.columns else pl.lit(None, pl.Float64)
    catalogue = products.select(
        "product_id", "current_price", "unit_cost", top.alias("max_price"),
        (pl.col("is_kvi") if "is_kvi" in products.columns else pl.lit(False)).alias("is_kvi"),
        (pl.col("category") if "category" in products.columns else pl.lit("")).alias("category"),
    )  # fmt: skip
    frame = catalogue.join(frame, on="product_id", how="inner")
    width = pl.col("elasticity_hi") - pl.col("elasticity_lo")
    own = (pl.col("status") == STATUS_TRAINED) | (pl.col("status") == STATUS_GATE_FAILED)
    frame = frame.with_columns(
        pl.when(own).then(width).alias("own_width"),
        pl.when(own).then(width / (2 * Z90)).alias("own_sd"),
    )
    prior = (
        frame.filter(pl.col("status") == STATUS_TRAINED)
        .group_by("category")
        .agg(
            pl.col("elasticity").mean().alias("prior_mean"),
            pl.col("elasticity").std().alias("prior_sd"),
        )
    )
    frame = frame.join(prior, on="category", how="left").with_columns(
        pl.col("prior_mean").fill_null(pl.col("elasticity")).fill_null(-1.5),
        pl.col("prior_sd").fill_null(_DEFAULT_SD).clip(0.2, None),
    )
    # The posterior: the category's prior updated by the product's own estimate, where it has one.
    w_prior, w_own = 1 / pl.col("prior_sd") ** 2, 1 / pl.col("own_sd").clip(0.05, None) ** 2
    mean = (w_prior * pl.col("prior_mean") + w_own * pl.col("elasticity")) / (w_prior + w_own)
    return frame.with_columns(
        pl.when(pl.col("own_sd").is_not_null()).then(mean).otherwise(pl.col("prior_mean"))
        .alias("post_mean"),
        pl.when(pl.col("own_sd").is_not_null()).then((1 / (w_prior + w_own)).sqrt())
        .otherwise(pl.col("prior_sd")).alias("post_sd"),
    )  # fmt: skip


def _identified(cfg: PricingConfig) -> pl.Expr:
    """The product's own interval (trained or gate_failed) is narrower than explore_width."""
    return (pl.col("own_width") < cfg.explore_width).fill_null(False)


def _candidate(cfg: PricingConfig) -> pl.Expr:
    """Products whose elasticity is not identified (or is inelastic, under `inelastic_walk`)
    and whose data allow a test."""
    status = pl.col("status")
    cold = (status == STATUS_COLD_START) & (pl.col("n_days") >= cfg.explore_cold_days)
    return (status.is_in(list(TESTED_STATUSES)) | cold | _unproven(cfg)) & ~held_whatever_status(
        cfg
    )


def _unproven(cfg: PricingConfig) -> pl.Expr:
    """A trained product's inelastic estimate, under `inelastic_walk`: a test would prove it.

    An estimate from the history alone may be demand moving the price (the hotel case), so
    the price walks only on a test's own, deliberate price moves.
    """
    if not cfg.inelastic_walk:
        return pl.lit(False)
    return inelastic_expr(cfg) & (pl.col("status") == STATUS_TRAINED)


def _walks(cfg: PricingConfig) -> pl.Expr:
    """The product's latest test identified it, and its estimate stays identified, inelastic
    and not confounded: it walks past the prices sold at, one trust-region step at a time.

    Only towards a max_price the catalogue sets: without one, the default cap is a factor of
    tonight's price (`default_max_price_factor`) and moves up with each step.
    """
    if not cfg.inelastic_walk:
        return pl.lit(False)
    capped = pl.col("max_price").is_not_null()
    return _found() & inelastic_expr(cfg) & (pl.col("status") != STATUS_CONFOUNDED) & capped


def _found() -> pl.Expr:
    """The latest test identified the elasticity, and the estimate still has it identified."""
    return (pl.col("test_status") == IDENTIFIED) & pl.col("identified") & ~pl.col("_issue")


def plan_tests(
    products: pl.DataFrame,
    demand: pl.DataFrame,
    cfg: PricingConfig,
    tests: pl.DataFrame,
    as_of: dt.date,
    room: pl.DataFrame | None = None,
    horizon_days: int | None = None,
) -> pl.DataFrame:
    """Tonight's tests: which products test, in which phase, at which target price, and why.

    Running tests go on until identified or past their last phase; new ones (first tests, and
    retries after `explore_retry_days`) start, the largest expected profit first, while the
    budget (`explore_max_products`, `explore_max_risk`) allows.

    Args:
        products: as for `recommend`.
        demand: as for `recommend`.
        cfg: pricing rules with the `explore*` settings.
        tests: the latest test row per product (`STATE_COLUMNS`; older rows may lack the
            attempt and the night).
        as_of: the night's first priced day.
        room: the ladder steps inside the rules (`explore_room.step_room`); None: computed.
        horizon_days: the days base_units cover, for the predicted reach (None: none).

    Returns:
        One row per product tested or finishing tonight: product_id, the `TEST_COLUMNS`, and
        `risk` (expected profit given up at the target, on the product's own estimate); then,
        with a null test_status and a `test_note`, each product released by an earlier test's
        finding (`test_release`) or unable to test for want of a ladder step.
    """
    room = room if room is not None else step_room(products, demand, cfg)
    frame = (
        _estimates(demand, products)
        .join(_state(tests, cfg), on="product_id", how="left")
        .join(room, on="product_id", how="left")
    )
    step = pl.when(pl.col("is_kvi")).then(cfg.explore_kvi_step).otherwise(cfg.explore_step)
    frame = frame.with_columns(
        step.alias("step"),
        _identified(cfg).alias("identified"),
        held_whatever_status(cfg).alias("_issue"),
    )
    length = cfg.explore_phases * cfg.explore_min_days
    running = frame.filter(pl.col("test_status") == TESTING).with_columns(
        ((pl.lit(as_of) - pl.col("test_started")).dt.total_days() // cfg.explore_min_days + 1)
        .cast(pl.Int64).alias("test_phase")
    )  # fmt: skip
    done = pl.col("test_phase") > cfg.explore_phases
    # A test of an inelastic estimate runs `walk_test_phases` at least: a walk stands on them.
    walk_ready = pl.col("test_phase") > cfg.walk_test_phases
    ends = pl.when(pl.col("_issue")).then(pl.lit(STOPPED))
    ends = ends.when(pl.col("identified") & (~_unproven(cfg) | walk_ready))
    ends = ends.then(pl.lit(IDENTIFIED))
    ends = ends.when(done).then(pl.lit(STOPPED))
    running = running.with_columns(ends.otherwise(pl.lit(TESTING)).alias("test_status"))
    cooled = pl.col("effective_date") + pl.duration(days=cfg.explore_retry_days) <= pl.lit(as_of)
    retry = pl.col("test_status").is_in([STOPPED, IDENTIFIED]) & cooled
    # An inelastic estimate tests although narrow, unless its latest test identified it.
    unproven = _unproven(cfg) & (pl.col("test_status").fill_null("") != IDENTIFIED)
    eligible = (pl.col("test_status").is_null() | retry) & (~pl.col("identified") | unproven)
    fresh = frame.filter(eligible & _candidate(cfg) & (pl.col("step") > 0)).with_columns(
        pl.lit(TESTING).alias("test_status"),
        pl.lit(1, pl.Int64).alias("test_phase"),
        pl.lit(as_of).alias("test_started"),
        pl.col("current_price").alias("test_base_price"),
        _direction().alias("test_direction"),
        (pl.col("test_attempt").fill_null(0) + 1).alias("test_attempt"),
        pl.lit(None, pl.Float64).alias("test_reach_width"),
    )
    blocked = fresh.filter(pl.col("test_direction") == 0).select(
        "product_id", no_room_reason().alias("test_note")
    )
    fresh = fresh.filter(pl.col("test_direction") != 0)
    both = pl.concat([running, fresh], how="diagonal_relaxed")
    reach = pl.coalesce("test_reach_width", _reach(cfg, horizon_days)).alias("test_reach_width")
    both = _targets(both, cfg, as_of).with_columns(_risk().alias("risk"), reach)
    # A test that ends tonight sets no price: no arm, target or probability on its last row,
    # and its phase is its last one (the night after it is not a phase of it).
    ends = pl.col("test_status") != TESTING
    both = both.with_columns(
        *[pl.when(~ends).then(c).alias(c)
          for c in ("test_arm", "test_target_price", "test_probability")],
        pl.col("test_phase").clip(None, cfg.explore_phases),
    )  # fmt: skip
    assert length <= 28  # config guarantees a test never runs past 4 weeks
    plan = _within_budget(both.with_columns(pl.lit(as_of).alias("_as_of")), frame, cfg)
    # A walking product whose status would hold it is released as well (`_released`).
    walking = frame.filter(_walks(cfg)).select(
        "product_id",
        _walk_note().alias("test_note"),
        (pl.col("status") != STATUS_TRAINED).alias("test_release"),
        pl.lit(True).alias("test_walk"),
    )
    released = _released(frame).join(walking, on="product_id", how="anti")
    return pl.concat([plan, blocked, released, walking], how="diagonal_relaxed")


def _walk_note() -> pl.Expr:
    return pl.format(
        "demand found inelastic by its price test from {} (attempt {}): the price may rise one "
        "step past the prices it has sold at, then waits for a week of sales there",
        pl.col("test_started"),
        pl.col("test_attempt"),
    )


def _released(frame: pl.DataFrame) -> pl.DataFrame:
    """Products an earlier test identified, still identified, that their status would hold."""
    note = pl.format(
        "elasticity identified by its price test from {} (attempt {}): priced on its own "
        "estimate, hold_statuses applies to products no test identified",
        pl.col("test_started"),
        pl.col("test_attempt"),
    )
    return frame.filter(_found() & (pl.col("status") != STATUS_TRAINED)).select(
        "product_id", note.alias("test_note"), pl.lit(True).alias("test_release")
    )


def _optimum(e: pl.Expr) -> pl.Expr:
    """The constant-elasticity profit optimum cost * e / (1 + e) (null where e >= -1)."""
    return pl.when(e < -1).then(pl.col("unit_cost") * e / (1 + e))


def _direction() -> pl.Expr:
    """+1 (raise) or -1 (cut): towards the estimate's optimum where a ladder step is allowed,
    else the other way where that step can be undone (`explore_room.step_room`)."""
    best = _optimum(pl.col("post_mean"))
    want = pl.when(best.is_null() | (best > pl.col("current_price"))).then(1).otherwise(-1)
    room_up, room_down = pl.col("room_up").is_not_null(), pl.col("room_down").is_not_null()
    back_up, back_down = pl.col("back_up").fill_null(False), pl.col("back_down").fill_null(False)
    return (
        pl.when((want == 1) & room_up).then(1)
        .when((want == -1) & room_down).then(-1)
        .when(room_up & back_up).then(1)
        .when(room_down & back_down).then(-1)
        .otherwise(0)
        .cast(pl.Int64)
    )  # fmt: skip


def _targets(frame: pl.DataFrame, cfg: PricingConfig, as_of: dt.date) -> pl.DataFrame:
    """The target price, the arm, the rule and the probability of each test's choice."""
    if cfg.explore == "thompson":
        # The draw's way is the test's; its target, like a step's, lies inside the rules.
        inside = pl.min_horizontal(pl.max_horizontal("test_target_price", "room_min"), "room_max")
        return thompson(frame, cfg).with_columns(
            pl.when(pl.col("test_arm") == "up").then(1).otherwise(-1).cast(pl.Int64)
            .alias("test_direction"),
            inside.alias("test_target_price"),
        )  # fmt: skip
    base, step, up = pl.col("test_base_price"), pl.col("step"), pl.col("test_direction") == 1
    on_step = pl.col("test_phase") % 2 == 1
    raw = base * (1 + pl.col("test_direction") * step)
    # At least one ladder step from today's price, inside the rules (null room: the raw step),
    # and no further than the rules allow, so the reach and the risk price the step it takes.
    room_up, room_down = pl.col("room_up"), pl.col("room_down")
    stepped = pl.when(up).then(pl.min_horizontal(pl.max_horizontal(raw, room_up), "room_max"))
    stepped = stepped.otherwise(pl.max_horizontal(pl.min_horizontal(raw, room_down), "room_min"))
    # A step phase under way stays where its first night stepped to: the room is measured from
    # today's price, so aiming from the step would walk one more ladder step every night.
    cur = pl.col("current_price")
    stepped = (
        pl.when(pl.col("test_direction") * (cur - base) > HALF_CENT).then(cur).otherwise(stepped)
    )
    return frame.with_columns(
        pl.when(on_step).then(stepped).otherwise(base).alias("test_target_price"),
        pl.when(on_step).then(pl.lit("step")).otherwise(pl.lit("base")).alias("test_arm"),
        pl.lit(RULE_ALTERNATE).alias("test_rule"),
        pl.lit(1.0).alias("test_probability"),
    )  # fmt: skip


def _reach(cfg: PricingConfig, horizon_days: int | None) -> pl.Expr:
    """The interval's predicted width at the test's end (`reach.reach_width`), from its first
    night, whose target is its step, the product's units a day (base_units over the horizon's
    days), and its own interval or else its category's spread (`_estimates`); null for Thompson
    draws (no fixed step) and without the horizon."""
    if cfg.explore != "test" or horizon_days is None:
        return pl.lit(None, pl.Float64)
    step = pl.col("test_target_price") / pl.col("test_base_price") - 1.0
    first = pl.col("test_phase") == 1
    before = pl.coalesce("own_sd", "prior_sd")
    a_day = pl.col("base_units") / horizon_days
    width = reach_width(a_day, pl.col("dispersion"), step, pl.col("n_days"), before, cfg)
    return pl.when(first).then(width)


def _risk() -> pl.Expr:
    """Expected profit given up at the target price on the product's own (posterior) estimate."""
    e, ref, base = pl.col("post_mean"), pl.col("ref_price"), pl.col("base_units")

    def profit(price: pl.Expr) -> pl.Expr:
        return (price - pl.col("unit_cost")) * base * (price / ref) ** e

    lost = profit(pl.col("current_price")) - profit(pl.col("test_target_price"))
    return pl.when(pl.col("test_status") == TESTING).then(lost.clip(0, None)).otherwise(0.0)


def _within_budget(plan: pl.DataFrame, frame: pl.DataFrame, cfg: PricingConfig) -> pl.DataFrame:
    """Running tests first, then new ones by expected profit, while the budget allows."""
    e, ref, base = pl.col("elasticity"), pl.col("ref_price"), pl.col("base_units")
    cur = pl.col("current_price")
    total = frame.select(((cur - pl.col("unit_cost")) * base * (cur / ref) ** e).fill_nan(0).sum())
    budget = cfg.explore_max_risk * max(float(total.item() or 0.0), 0.0)
    value = (cur - pl.col("unit_cost")) * base
    ordered = plan.with_columns(
        (pl.col("test_started") < pl.col("_as_of")).alias("_running"),
        value.fill_null(0).alias("_value"),
    ).sort(["_running", "_value"], descending=True)
    testing = ordered["test_status"] == TESTING
    running = ordered["_running"]
    risk = ordered["risk"].fill_null(0.0).fill_nan(0.0)
    # Running tests count and spend first; then each new test starts if it still fits, so one
    # test too costly for what is left does not stop a cheaper one after it.
    count = int((testing & running).sum())
    spent = float((risk * (testing & running).cast(pl.Float64)).sum())
    keep = (~testing | running).to_list()
    new = (testing & ~running).to_list()
    for k, (is_new, cost) in enumerate(zip(new, risk.to_list(), strict=True)):
        if is_new and count < cfg.explore_max_products and spent + cost <= budget:
            keep[k], count, spent = True, count + 1, spent + cost
    return ordered.filter(pl.Series(keep, dtype=pl.Boolean)).drop("_running", "_value", "_as_of")


def _steered(demand: pl.DataFrame, plan: pl.DataFrame) -> pl.DataFrame:
    """The demand table with tested products released and aimed at their target prices.

    A test that identified the elasticity releases its product from its hold too, tonight and
    on later nights while the finding holds (`test_release`): the hold was for the evidence the
    test has now found.
    """
    testing = plan.filter(pl.col("test_status") == TESTING)
    release = pl.col("test_release") if "test_release" in plan.columns else pl.lit(False)
    found = plan.filter((pl.col("test_status") == IDENTIFIED) | release.fill_null(False))
    found = found["product_id"]
    target = dict(zip(testing["product_id"], testing["test_target_price"], strict=True))
    cost = dict(zip(testing["product_id"], testing["unit_cost"], strict=True))
    # The elasticity whose profit optimum cost * e / (1 + e) is the target: e = -T / (T - cost).
    aim = {
        pid: -t / (t - cost[pid]) if t > cost[pid] * 1.001 else -1000.0 for pid, t in target.items()
    }
    ids = pl.col("product_id")
    tested, released = ids.is_in(list(aim)), ids.is_in(found.to_list()) | ids.is_in(list(aim))
    out = demand.with_columns(
        pl.when(tested)
        .then(ids.replace_strict(aim, default=None, return_dtype=pl.Float64))
        .otherwise(pl.col("elasticity"))
        .alias("elasticity"),
        *[pl.when(tested).then(None).otherwise(pl.col(c)).alias(c)
          for c in ("elasticity_lo", "elasticity_hi")],
        pl.when(released).then(None).otherwise(pl.col("hold_reason")).alias("hold_reason"),
    )  # fmt: skip
    if "status" in out.columns:
        out = out.with_columns(
            pl.when(released).then(pl.lit(STATUS_TRAINED)).otherwise(pl.col("status"))
            .alias("status")
        )  # fmt: skip
    walk = pl.col("test_walk") if "test_walk" in plan.columns else pl.lit(False)
    walking = plan.filter(walk.fill_null(False))["product_id"].to_list()
    return out.with_columns(ids.is_in(walking).alias("inelastic_walk"))


def _annotate(
    recs: pl.DataFrame,
    demand: pl.DataFrame,
    products: pl.DataFrame,
    plan: pl.DataFrame,
    cfg: PricingConfig,
) -> pl.DataFrame:
    """Tested rows: expected figures on the product's own estimate, the test's reason and rule."""
    out = _with_columns(recs, plan)
    est = _estimates(demand, products).select(
        "product_id", "base_units", "ref_price", pl.col("post_mean").alias("_e"),
        pl.col("post_sd").alias("_sd"), "unit_cost",
        pl.col("elasticity").alias("_elasticity"), pl.col("elasticity_lo").alias("_lo"),
        pl.col("elasticity_hi").alias("_hi"),
    )  # fmt: skip
    out = out.join(est, on="product_id", how="left")
    if "test_note" in plan.columns:
        notes = plan.filter(pl.col("test_note").is_not_null()).select("product_id", "test_note")
        out = (
            out.join(notes, on="product_id", how="left")
            .with_columns(
                pl.when(pl.col("test_note").is_not_null())
                .then(pl.format("{}; {}", pl.col("reason"), pl.col("test_note")))
                .otherwise(pl.col("reason"))
                .alias("reason")
            )
            .drop("test_note")
        )
    tested = pl.col("test_status") == TESTING

    def units(price: str) -> pl.Expr:
        return pl.col("base_units") * (pl.col(price) / pl.col("ref_price")) ** pl.col("_e")

    margin_new = pl.col("recommended_price") - pl.col("unit_cost")
    margin_now = pl.col("current_price") - pl.col("unit_cost")
    new_profit = (margin_new * units("recommended_price")).round(2)
    now_profit = (margin_now * units("current_price")).round(2)
    changed = pl.col("recommended_price") != pl.col("current_price")
    replaced = {
        "expected_units": units("recommended_price"),
        "expected_revenue": (pl.col("recommended_price") * units("recommended_price")).round(2),
        "expected_profit": new_profit,
        "current_expected_units": units("current_price"),
        "current_expected_revenue": (pl.col("current_price") * units("current_price")).round(2),
        "current_expected_profit": now_profit,
        "profit_uplift": pl.when(changed).then(new_profit - now_profit).otherwise(0.0),
        "elasticity": pl.col("_elasticity"),
        "elasticity_lo": pl.col("_lo"),
        "elasticity_hi": pl.col("_hi"),
        "binding_rule": pl.lit(RULE_PRICE_TEST),
        "reason": _reason(cfg),
    }
    out = out.with_columns(
        pl.when(tested).then(expr).otherwise(pl.col(name)).alias(name)
        for name, expr in replaced.items()
    )
    return out.with_columns(
        pl.when(pl.col("test_status").is_not_null())
        .then(pl.lit(cfg.explore_phases, pl.Int64))
        .alias("test_phases")
    ).drop("base_units", "ref_price", "_e", "_sd", "unit_cost", "_elasticity", "_lo", "_hi")


def _reason(cfg: PricingConfig) -> pl.Expr:
    """'price test 2 of 4: learning the elasticity, interval -3.1 to -0.4; its interval about
    2.2 wide by the test's end, to be identified under 1.0 (out of this test's reach); step ...'
    (the width predicted on the test's first night, `reach.reach_width`)."""
    lo = pl.coalesce(pl.col("_lo"), pl.col("_e") - Z90 * pl.col("_sd"))
    hi = pl.coalesce(pl.col("_hi"), pl.col("_e") + Z90 * pl.col("_sd"))
    move = pl.format(
        "{} {} -> {} (target {}, rule {}, probability {})",
        pl.col("test_arm"),
        pl.col("current_price").round(2),
        pl.col("recommended_price").round(2),
        pl.col("test_target_price").round(2),
        pl.col("test_rule"),
        pl.col("test_probability").round(2),
    )
    attempt = pl.when(pl.col("test_attempt") > 1).then(pl.format(" (attempt {})", "test_attempt"))
    reach = pl.col("test_reach_width")
    verdict = pl.when(reach < cfg.explore_width).then(pl.lit(""))
    verdict = verdict.otherwise(pl.lit(" (out of this test's reach)"))
    outlook = pl.format(
        "; its interval about {} wide by the test's end, to be identified under {}{}",
        reach.round(1),
        pl.lit(cfg.explore_width),
        verdict,
    )
    return pl.format(
        "price test {} of {}{}: learning the elasticity, interval {} to {}{}; {}",
        pl.col("test_phase"),
        pl.lit(cfg.explore_phases),
        attempt.otherwise(pl.lit("")),
        lo.round(1),
        hi.round(1),
        pl.when(reach.is_not_null()).then(outlook).otherwise(pl.lit("")),
        move,
    )
