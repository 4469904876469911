"""The data contract's names, in one place: table columns, forecast statuses, actions, checks.

Every module that writes or reads one of these names imports it from here, so that a reader finds
the whole vocabulary of the pipeline on one page (DESIGN section 3). The column orders are those
of the warehouse tables (sql/migrations/); tests keep the two equal.
"""

from __future__ import annotations

# --- inputs: products and sales --------------------------------------------------------------

PRODUCT_COLUMNS: tuple[str, ...] = (
    "product_id",
    "name",
    "category",
    "family_id",
    "size_rank",
    "unit_cost",
    "current_price",
    "min_price",
    "max_price",
    "is_active",
    "is_kvi",
    "launched_on",
)
PRODUCTS_REQUIRED: tuple[str, ...] = ("product_id", "unit_cost")
# A product's prices as validated by the run's data checks.
PRODUCT_PRICES: tuple[str, ...] = ("unit_cost", "current_price", "min_price", "max_price")
DEFAULT_CATEGORY = "uncategorised"

SALES_COLUMNS: tuple[str, ...] = ("product_id", "ds", "units", "price", "promo", "stockout")
SALES_REQUIRED: tuple[str, ...] = ("product_id", "ds", "units", "price")
SALES_KEY: tuple[str, ...] = ("product_id", "ds")

# --- forecast statuses (model_versions.status and the pricing engine's input) -----------------

STATUS_TRAINED = "trained"  # own model, passed the backtest gate, own elasticity
STATUS_COLD_START = "cold_start"  # too little history to train: category profile and elasticity
STATUS_NOT_IDENTIFIED = "not_identified"  # its price never varied: pooled elasticity
STATUS_GATE_FAILED = "gate_failed"  # lost to seasonal-naive in the backtest: pooled elasticity
# Its price moves with its demand (set in response to demand, as hotels and events do): the
# regression reads demand as inelastic, so its elasticity is not trusted (held by default).
STATUS_CONFOUNDED = "confounded"

# Statuses pricing may release from a hold (`PricingConfig.hold_statuses`); a cold start (and any
# status it does not know) with a hold reason is always held.
RELEASABLE_STATUSES: tuple[str, ...] = (
    STATUS_GATE_FAILED,
    STATUS_NOT_IDENTIFIED,
    STATUS_CONFOUNDED,
)
# Statuses whose elasticity is uncertain as its category's spread, not by its own interval: a
# cold start or a product whose price never varied also takes its category's pooled elasticity; a
# gate failure keeps its own estimate (only its forecast lost to seasonal-naive).
POOLED_STATUSES: tuple[str, ...] = (STATUS_COLD_START, STATUS_GATE_FAILED, STATUS_NOT_IDENTIFIED)

# --- recommendations ------------------------------------------------------------------------

ACTION_INCREASE = "increase"
ACTION_DECREASE = "decrease"
ACTION_KEEP = "keep"
ACTION_HOLD = "hold"
CHANGE_ACTIONS: tuple[str, ...] = (ACTION_INCREASE, ACTION_DECREASE)
ACTIONS: tuple[str, ...] = (ACTION_INCREASE, ACTION_DECREASE, ACTION_KEEP, ACTION_HOLD)
# The binding_rule of a price chosen by a price test (learning, not the estimate's optimum).
RULE_PRICE_TEST = "price_test"

RECOMMENDATION_COLUMNS: tuple[str, ...] = (
    "product_id",
    "current_price",
    "recommended_price",
    "action",
    "allowed_min",
    "allowed_max",
    "expected_units",
    "expected_revenue",
    "expected_profit",
    "current_expected_units",
    "current_expected_revenue",
    "current_expected_profit",
    "profit_uplift",
    "elasticity",
    "elasticity_lo",
    "elasticity_hi",
    "binding_rule",
    "reason",
)

# --- data checks (data_issues.check) --------------------------------------------------------

CHECK_GAP = "gap"
CHECK_UNKNOWN_PRODUCT = "sales_product_known"
CHECK_FUTURE_DATE = "future_date"
# Issues that are recorded without holding the product.
NOT_HOLDING_CHECKS = frozenset({CHECK_GAP, CHECK_UNKNOWN_PRODUCT})
# A hold reason that starts so comes from the run's data checks: quarantined input always holds,
# whatever the product's forecast status.
DATA_ISSUE = "data issue"

# --- runs ------------------------------------------------------------------------------------

RUN_RUNNING = "running"
RUN_COMPLETED = "completed"
RUN_FAILED = "failed"
RUN_END_STATUSES: tuple[str, ...] = (RUN_COMPLETED, RUN_FAILED)
