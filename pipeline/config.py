"""Frozen, validated settings for the whole pipeline.

Settings come from defaults, optionally overridden by a TOML file (`--config FILE`) with the
sections `[model]`, `[pricing]` and `[run]`. Every value is validated once, here; a bad key or
value raises `ConfigError` with a one-line message naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.contract import RELEASABLE_STATUSES
from pipeline.errors import UserError
from pipeline.rules import RulesError, RuleSet, load_rules, read_toml, rule_problem

DEFAULT_WAREHOUSE = Path("warehouse") / "pricing.duckdb"
WAREHOUSE_ENV = "PRICING_WAREHOUSE"


class ConfigError(UserError, ValueError):
    """A user-caused configuration problem; its message is one line that says what to fix."""


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"config key '{key}': {message}")


@dataclass(frozen=True)
class ModelConfig:
    """The batched per-product LSTM forecaster.

    Attributes:
        horizon: days forecast from each origin (the pricing horizon), >= 1.
        hidden_units: LSTM units per product.
        segment_days: length of the training segments the history is cut into (state warms up
            inside each segment; segments of all products train as one batch).
        warmup_days: first days of each segment (after the first) excluded from the loss while
            the state warms up.
        epochs: maximum passes over the history.
        min_epochs: passes before training may end because every product's baseline stopped
            improving (the elasticities keep learning until then).
        learning_rate: Adam step size.
        segments_per_batch: segments per gradient step (all products are in every step).
        validation_days: most recent days held out for early stopping and the backtest (below
            segment_days).
        patience: epochs without validation improvement before a product stops updating.
        min_history_days: products with fewer observed days are cold-started, not trained.
        gate_z: the quality gate fails a product's model (status gate_failed) when its backtest
            absolute error exceeds seasonal-naive's by more than this many standard errors of
            the difference (`forecast.backtest_gap_se`: a few weeks of days decide it, and a
            loss within their noise is no evidence that the model is worse). 1.645, the
            default, is a one-sided 5% test; 0: by any amount (the rule before the margin).
        drift_ratio: a saved model is stale (retrained by the nightly run) when a product's mean
            units over its last 28 uncensored days moved by more than this factor, up or down,
            since the model was trained.
        promo_lift: learn a per-product promotion lift beyond the price cut (for retailers
            whose promotions carry display or feature effects); off by default because it competes
            with the elasticity for the same variation.
        elasticity: how each product's elasticity is fitted. "regression" (default): a
            per-product Poisson regression over the whole history with trend and calendar controls,
            then held fixed while the LSTM learns the baseline around it; "joint": start there and
            train it with the network; "network": learn it with the network from -1.
        cell: the recurrent cell of every product's encoder (and decoder): "lstm" (default) or
            "gru" (three gates instead of four: about a quarter fewer weights and steps' work).
        layers: stacked recurrent layers (1 to 3), each reading the sequence of states of the one
            below; the head (or decoder) reads the top one.
        dropout: fraction of the encoder's inputs, and of the states passed between stacked
            layers, zeroed at each training step (0 <= dropout < 1; 0 = off, the default). Only
            while training: forecasts always use the whole network. The masks are seeded by `seed`
            and drawn per product, so a product trains as it would alone.
        decoder: "head" (default): a per-product dense head maps the state at each origin to the
            next `horizon` days; "seq2seq": a per-product recurrent decoder runs from the
            encoder's state at each origin over the horizon's known inputs (calendar, holidays,
            and planned promotions where `promo_lift` lets the network learn their lift), its
            state at each step giving that day's forecast. Prices stay outside the network
            either way, so demand never rises with price. Bidirectional layers are not offered:
            on whole-history segments a backward pass reads the future of every origin (README,
            "Why no bidirectional layers").
        local_level_days: 0 (default): off. N > 0: the head also reads, at each origin, the
            mean of the last N in-stock days' scaled log units at the reference price (inside
            the segment the network reads), through a per-product, per-horizon weight learned
            from 0: a direct path for the recent level, which the recurrent state otherwise has
            to carry (products whose demand trends are forecast late). At most segment_days.
        seed: random seed for weight initialisation and dropout.
    """

    horizon: int = 14
    hidden_units: int = 32
    segment_days: int = 128
    warmup_days: int = 14
    epochs: int = 40
    min_epochs: int = 25
    learning_rate: float = 0.05
    segments_per_batch: int = 8
    validation_days: int = 28
    patience: int = 8
    min_history_days: int = 90
    drift_ratio: float = 2.0
    gate_z: float = 1.645
    promo_lift: bool = False
    elasticity: str = "regression"
    cell: str = "lstm"
    layers: int = 1
    dropout: float = 0.0
    decoder: str = "head"
    local_level_days: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        _check(1 <= self.horizon <= 90, "model.horizon", "must be between 1 and 90 days")
        _check(1 <= self.hidden_units <= 512, "model.hidden_units", "must be between 1 and 512")
        _check(self.segment_days >= 16, "model.segment_days", "must be at least 16")
        _check(
            0 <= self.warmup_days < self.segment_days,
            "model.warmup_days",
            "must be >= 0 and below model.segment_days",
        )
        _check(self.epochs >= 1, "model.epochs", "must be at least 1")
        _check(self.min_epochs >= 0, "model.min_epochs", "must be >= 0")
        _check(
            self.elasticity in ("regression", "joint", "network"),
            "model.elasticity",
            "must be 'regression', 'joint' or 'network'",
        )
        _check(self.cell in ("lstm", "gru"), "model.cell", "must be 'lstm' or 'gru'")
        _check(1 <= self.layers <= 3, "model.layers", "must be between 1 and 3")
        _check(0 <= self.dropout < 1, "model.dropout", "must be >= 0 and below 1")
        _check(self.decoder in ("head", "seq2seq"), "model.decoder", "must be 'head' or 'seq2seq'")
        _check(
            0 <= self.local_level_days <= self.segment_days,
            "model.local_level_days",
            "must be >= 0 (0: off) and at most model.segment_days",
        )
        _check(0 < self.learning_rate < 1, "model.learning_rate", "must be in (0, 1)")
        _check(self.segments_per_batch >= 1, "model.segments_per_batch", "must be at least 1")
        _check(
            0 <= self.validation_days < self.segment_days,
            "model.validation_days",
            "must be >= 0 and below model.segment_days (the backtest scores the forecasts of the "
            "last segment, which must reach back before its first origin)",
        )
        _check(self.patience >= 1, "model.patience", "must be at least 1")
        _check(self.min_history_days >= 1, "model.min_history_days", "must be at least 1")
        _check(self.drift_ratio > 1, "model.drift_ratio", "must be above 1")
        _check(self.gate_z >= 0, "model.gate_z", "must be >= 0")


@dataclass(frozen=True)
class PricingConfig:
    """Business rules, the hold policy and the objective of the pricing engine.

    The rule values here are the global ones; category and product rules come from the TOML file
    `rules_file` (see pipeline/rules.py) and combine with these by the most restrictive value.

    Attributes:
        max_change_up: largest price increase per run, as a fraction of the current price.
        max_change_down: largest price decrease per run, as a fraction of the current price.
        kvi_max_change: tighter limit (both ways) for key-value items (`is_kvi`).
        margin_floor: the price must be at least unit_cost * (1 + margin_floor).
        price_endings: allowed cent endings (e.g. 0.99); empty means any cent.
        n_candidates: most candidate prices per product (the current price is always added).
        min_change: relative changes smaller than this are not worth a relabel: keep the price.
        default_min_price_factor: min_price = factor * current_price when a load gives none.
        default_max_price_factor: max_price = factor * current_price when a load gives none.
        rules_file: TOML file of category and product rules ("" for none); a relative path is
            read from the working directory. Parsed once, into `rules`.
        rules: the parsed category and product rules (set by `rules_file`, or directly).
        family_order: within a family (`family_id`), a larger `size_rank` never costs less.
        family_unit_price: also never more per unit than a smaller size; needs a `size` column
            (quantity in one unit per family) in the products frame, as the warehouse's products
            table has none.
        max_changes: at most this many price changes per run; -1 means no limit.
        revenue_floor: total expected revenue at the recommended prices must be at least this
            fraction of the total at today's prices (1.0: never below today's); 0 turns it off.
        objective: "profit" (default) or "revenue"; profit with a revenue_floor is "profit
            subject to the revenue floor".
        risk_quantile: 0 prices on expected demand; a value in (0, 0.5) prices on that lower
            quantile of demand (elasticity uncertainty plus negative-binomial noise).
        hold_statuses: forecast statuses whose products keep their price ("gate_failed",
            "not_identified", "confounded"); a cold start is always held.
        trust_widening: the trust region: a product moves only within the prices it has sold
            at (`price_seen_lo`..`price_seen_hi` of the forecaster's table) widened by this
            fraction on each side, since the demand curve is a local fit; a price already
            outside stays where it is. The default, one run's maximum change, lets a product
            step once past the prices seen, then wait for a week of sales there
            (`features.PRICE_SEEN_DAYS`). A large value (e.g. 10) turns it off in effect.
        hold_inelastic: a product whose elasticity estimate is -1 or above (profit, or
            revenue, would rise without bound with price, so only a cap would stop it) moves
            only within the prices it has sold at, never beyond them, and is held where it has
            none; false prices it like any other, up to the widened trust region's edge.
        inelastic_walk: with `hold_inelastic` and price tests on, an inelastic estimate of a
            trained product is tested like an unidentified one (the hold's reason says a price
            test would identify it), for `walk_test_phases` phases at least; once the test has
            identified it (its own interval narrower than `explore_width`) and while it stays
            identified, inelastic and not confounded, the product walks: it moves within the
            widened trust region like any other product, one step past the prices it has sold
            at, then a week of sales there before the next, until the estimate turns elastic
            or a cap stops it. false keeps every inelastic estimate within the prices sold at.
        walk_test_phases: phases a test of an inelastic estimate runs before its finding may let
            the product walk (2: its step up and the way back; at most `explore_phases`).
        max_stockout_share: hold a product whose recent share of stockout days is above this
            (1.0 never holds for stockouts).
        solver: "auto" (a per-product argmax while products are independent; when rules
            couple them, an exact chain dynamic programme for families and a Lagrangian search
            for the change budget and the revenue floor, with scipy's milp closing any gap on
            small catalogues), "milp" (scipy.optimize.milp over every candidate) or "greedy"
            (per-product best, then coupling rules repaired greedily: the baseline).
        milp_time_limit: seconds scipy's milp may run; with solver "milp", no valid answer in
            time holds every product with the reason.
        explore: price tests for products whose elasticity is not identified (see
            pipeline/pricing/explore.py): "off", "test" (alternate today's price and a step)
            or "thompson" (price on an elasticity drawn from the product's posterior).
        explore_step: the test's price step, a fraction of the price the test started at.
        explore_kvi_step: the step of a key-value item (0: KVIs never test).
        explore_min_days: days each price of a test is held before the next.
        explore_phases: phases of a test ("price test 2 of 4"): step, back, step, back.
        explore_width: a test ends when the elasticity's ~90% interval is narrower than this.
        explore_max_products: most products testing at once.
        explore_max_risk: most expected profit put at risk per night by tests, as a fraction
            of the night's total expected profit at today's prices.
        explore_cold_days: a cold start tests once it has this many days of history.
        explore_seed: seed of the Thompson draws (with the night's date and the product).
        explore_retry_days: a test that ended without identifying the elasticity (its last
            phase passed, or it was stopped), or whose finding a later model lost, may start
            again (its next attempt) this many days after its last night.
    """

    max_change_up: float = 0.10
    max_change_down: float = 0.10
    kvi_max_change: float = 0.05
    margin_floor: float = 0.05
    price_endings: tuple[float, ...] = (0.99,)
    n_candidates: int = 25
    min_change: float = 0.005
    default_min_price_factor: float = 0.7
    default_max_price_factor: float = 1.5
    rules_file: str = ""
    rules: RuleSet = field(default_factory=RuleSet)
    family_order: bool = True
    family_unit_price: bool = False
    max_changes: int = -1
    revenue_floor: float = 0.0
    objective: str = "profit"
    risk_quantile: float = 0.0
    hold_statuses: tuple[str, ...] = ("gate_failed", "not_identified", "confounded")
    max_stockout_share: float = 0.2
    trust_widening: float = 0.10
    hold_inelastic: bool = True
    inelastic_walk: bool = True
    walk_test_phases: int = 2
    solver: str = "auto"
    milp_time_limit: float = 60.0
    explore: str = "test"
    explore_step: float = 0.05
    explore_kvi_step: float = 0.03
    explore_min_days: int = 7
    explore_phases: int = 4
    explore_width: float = 1.0
    explore_max_products: int = 50
    explore_max_risk: float = 0.02
    explore_cold_days: int = 28
    explore_seed: int = 0
    explore_retry_days: int = 28

    def __post_init__(self) -> None:
        self._check_rules()
        self._check_explore()
        _check(2 <= self.n_candidates <= 1000, "pricing.n_candidates", "must be in [2, 1000]")
        _check(0 <= self.min_change < 1, "pricing.min_change", "must be in [0, 1)")
        _check(
            0 < self.default_min_price_factor <= 1,
            "pricing.default_min_price_factor",
            "must be in (0, 1]",
        )
        _check(
            self.default_max_price_factor >= 1, "pricing.default_max_price_factor", "must be >= 1"
        )
        _check(self.max_changes >= -1, "pricing.max_changes", "must be >= 0, or -1 for no limit")
        _check(0 <= self.revenue_floor <= 2, "pricing.revenue_floor", "must be in [0, 2]")
        _check(
            self.objective in ("profit", "revenue"),
            "pricing.objective",
            "must be 'profit' or 'revenue'",
        )
        _check(0 <= self.risk_quantile < 0.5, "pricing.risk_quantile", "must be in [0, 0.5)")
        self._check_policy()

    def _check_rules(self) -> None:
        for key in ("max_change_up", "max_change_down", "kvi_max_change", "margin_floor"):
            problem = rule_problem(key, getattr(self, key))
            _check(problem is None, f"pricing.{key}", problem or "")
        problem = rule_problem("price_endings", list(self.price_endings))
        _check(problem is None, "pricing.price_endings", problem or "")
        object.__setattr__(self, "price_endings", tuple(float(e) for e in self.price_endings))
        if self.rules_file:
            try:
                object.__setattr__(self, "rules", load_rules(self.rules_file))
            except RulesError as exc:
                raise ConfigError(f"config key 'pricing.rules_file': {exc}") from None

    def _check_explore(self) -> None:
        _check(
            self.explore in ("off", "test", "thompson"),
            "pricing.explore",
            "must be 'off', 'test' or 'thompson'",
        )
        _check(0 < self.explore_step <= 0.5, "pricing.explore_step", "must be in (0, 0.5]")
        _check(0 <= self.explore_kvi_step <= 0.5, "pricing.explore_kvi_step", "must be in [0, 0.5]")
        _check(self.explore_min_days >= 1, "pricing.explore_min_days", "must be >= 1")
        _check(
            2 <= self.explore_phases * self.explore_min_days <= 28 and self.explore_phases >= 2,
            "pricing.explore_phases",
            "must be >= 2, with explore_phases * explore_min_days at most 28 days (4 weeks)",
        )
        _check(self.explore_width > 0, "pricing.explore_width", "must be > 0")
        _check(
            1 <= self.walk_test_phases <= self.explore_phases,
            "pricing.walk_test_phases",
            "must be between 1 and explore_phases",
        )
        _check(self.explore_max_products >= 0, "pricing.explore_max_products", "must be >= 0")
        _check(0 <= self.explore_max_risk <= 1, "pricing.explore_max_risk", "must be in [0, 1]")
        _check(self.explore_cold_days >= 1, "pricing.explore_cold_days", "must be >= 1")
        _check(self.explore_retry_days >= 0, "pricing.explore_retry_days", "must be >= 0")

    def _check_policy(self) -> None:
        object.__setattr__(self, "hold_statuses", tuple(self.hold_statuses))
        _check(
            set(self.hold_statuses) <= set(RELEASABLE_STATUSES),
            "pricing.hold_statuses",
            f"may list only {', '.join(map(repr, RELEASABLE_STATUSES))} "
            "(cold starts are always held)",
        )
        _check(
            0 <= self.trust_widening <= 10,
            "pricing.trust_widening",
            "must be a fraction in [0, 10] (0.1: 10% beyond the prices seen)",
        )
        _check(0 <= self.max_stockout_share <= 1, "pricing.max_stockout_share", "must be in [0, 1]")
        _check(
            self.solver in ("auto", "milp", "greedy"),
            "pricing.solver",
            "must be 'auto', 'milp' or 'greedy'",
        )
        _check(
            0 < self.milp_time_limit <= 3600,
            "pricing.milp_time_limit",
            "must be in (0, 3600] seconds",
        )


@dataclass(frozen=True)
class RunConfig:
    """Orchestration settings.

    Attributes:
        shard_size: products per Prefect task (training and scoring shards).
        max_model_age_days: models older than this are retrained by the nightly flow.
        nightly_cron: when `pricing serve` schedules the nightly run (cron, in `timezone`).
        timezone: IANA time zone of `nightly_cron`, e.g. "Europe/Berlin".
        lock_wait_s: how long a run waits for another run that holds the warehouse before it
            gives up with a one-line message (seconds).
        dask_address: train product shards on the Dask cluster whose scheduler is at this
            address (e.g. "tcp://scheduler:8786"); empty means no Dask.
        dask_workers: with no dask_address, start a local Dask cluster of this many worker
            processes for the shards; 0 means no Dask (shards train one at a time in-process).
    """

    shard_size: int = 500
    max_model_age_days: int = 7
    nightly_cron: str = "0 2 * * *"
    timezone: str = "UTC"
    lock_wait_s: float = 600.0
    dask_address: str = ""
    dask_workers: int = 0

    def __post_init__(self) -> None:
        _check(self.shard_size >= 1, "run.shard_size", "must be at least 1")
        _check(self.max_model_age_days >= 0, "run.max_model_age_days", "must be >= 0")
        _check(
            len(self.nightly_cron.split()) == 5,
            "run.nightly_cron",
            "must be a five-field cron expression such as '0 2 * * *'",
        )
        _check(_is_time_zone(self.timezone), "run.timezone", "must be an IANA name like 'UTC'")
        _check(self.lock_wait_s >= 0, "run.lock_wait_s", "must be >= 0 seconds")
        _check(
            self.dask_address == "" or "://" in self.dask_address,
            "run.dask_address",
            "must be a scheduler address such as 'tcp://host:8786'",
        )
        _check(self.dask_workers >= 0, "run.dask_workers", "must be >= 0")


def _is_time_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Settings:
    """Everything a run needs: where the warehouse is and how to model and price."""

    warehouse: Path = DEFAULT_WAREHOUSE
    model: ModelConfig = field(default_factory=ModelConfig)
    pricing: PricingConfig = field(default_factory=PricingConfig)
    run: RunConfig = field(default_factory=RunConfig)

    @property
    def model_dir(self) -> Path:
        """Folder holding model artefacts, next to the warehouse file."""
        return self.warehouse.parent / "models"


_SECTIONS = {"model": ModelConfig, "pricing": PricingConfig, "run": RunConfig}


def _section(name: str, cls: type, values: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"config key '{name}': must be a table like [{name}]")
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"config key '{name}.{key}': unknown key; known keys: {', '.join(sorted(known))}"
            )
        default = getattr(cls(), key)
        expected = type(default)
        if expected is tuple and isinstance(value, list):
            continue
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            continue
        if not isinstance(value, expected) or isinstance(value, bool) != isinstance(default, bool):
            raise ConfigError(
                f"config key '{name}.{key}': expected {expected.__name__}, got {value!r}"
            )
    return cls(**values)


def load_settings(
    config_file: Path | None = None,
    warehouse: Path | None = None,
    **overrides: Any,
) -> Settings:
    """Build validated settings from defaults, a TOML file and explicit overrides.

    Args:
        config_file: optional TOML file with [model], [pricing] and [run] tables.
        warehouse: warehouse path; falls back to $PRICING_WAREHOUSE, then warehouse/pricing.duckdb.
        **overrides: section objects (model=ModelConfig(...)) that replace the file's sections.

    Raises:
        ConfigError: the file is missing or malformed, or a key or value is invalid.
    """
    sections: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        raw = read_toml(path, "config file", "check the --config path", ConfigError)
        for name, values in raw.items():
            if name not in _SECTIONS:
                raise ConfigError(
                    f"config key '{name}': unknown section; use [model], [pricing] or [run]"
                )
            sections[name] = _section(name, _SECTIONS[name], values)
    sections.update(overrides)
    if warehouse is None:
        warehouse = Path(os.environ.get(WAREHOUSE_ENV, DEFAULT_WAREHOUSE))
    return Settings(warehouse=Path(warehouse), **sections)
