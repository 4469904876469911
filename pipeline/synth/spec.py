"""What a synthetic world is drawn from: `WorldSpec`, one frozen, validated set of switches.

The defaults are the demo world, exactly: `generate(WorldSpec(), seed)` is
`generate_world(200, 730, seed)`. Every other value switches one feature of real retail data on
(or changes its strength). A feature's random draws come from a stream of their own, so two specs
that differ in one feature, drawn with the same seed, share everything else: the same catalogue,
the same base demand parameters, the same promotion calendar.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# The seasonal shapes a world can carry (see demand.py for their exact form).
CHRISTMAS, SUMMER, BLACK_FRIDAY, EASTER = "christmas", "summer", "black_friday", "easter"
PEAKS = (CHRISTMAS, SUMMER, BLACK_FRIDAY, EASTER)

# The demo world's values of the switches whose draws are integers (their range changes how much
# of the random stream a draw consumes, so a non-default value is drawn from its own stream).
DEMO_REGULAR_GAP_DAYS = (60, 150)
DEMO_LAUNCH_SHARE, DEMO_LAUNCH_HISTORY = 0.08, (20, 120)
DEMO_STOCKOUT_RUN_MAX = 5


_SHARES = (
    "fixed_price_share",
    "endogenous_share",
    "launch_share",
    "delisted_share",
    "slow_mover_share",
    "trend_break_share",
    "cost_above_price_share",
)


class SpecError(ValueError):
    """A `WorldSpec` value is out of range; the message names the field."""


def _check(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise SpecError(f"WorldSpec.{name}: {message}")


def _check_range(value: tuple[float, float], name: str, low: float, high: float) -> None:
    _check(len(value) == 2, name, "must be a (low, high) pair")
    _check(
        low <= value[0] <= value[1] <= high, name, f"must satisfy {low} <= low <= high <= {high}"
    )


def _check_share(value: float, name: str) -> None:
    _check(0.0 <= value <= 1.0, name, "must be a share in [0, 1]")


@dataclass(frozen=True)
class WorldSpec:
    """The switches of a synthetic retail world (defaults: the demo world).

    Attributes:
        name: a label for reports ("demo" or the scenario's name).
        n_products: number of products (>= 1).
        n_days: days of history ending at `end_date` (>= 30).
        end_date: last day of the sales history.
        regular_gap_days: days between regular (non-promotional) price moves, drawn uniformly;
            (60, 150) moves every two to five months, (365, 700) once or twice in two years,
            (14, 42) every two to six weeks. The first move comes 20 days to `high` days in.
        fixed_price_share: share of product groups whose price never moves (no promotions).
        promo_lift: per-product display/feature lift of a promotion beyond its price cut, a
            fraction drawn uniformly from (low, high): units on promotion days are multiplied by
            1 + lift. (0, 0) in the demo world: promotions act only through the price.
        endogenous_share: share of the products whose price is set in response to latent demand
            (as hotels do): every product then carries a latent demand wave the model cannot see,
            and these products' prices follow it each week (raised when demand is high), without
            promotions.
        launch_share: share of products launched recently (short histories).
        launch_history: days of history of a recent launch, drawn uniformly.
        delisted_share: share of products that stop selling before the end (a zero tail of 14 to
            120 days: the true demand is 0 from `delisted_on`).
        peaks: the seasonal shapes demand follows: "christmas" (run-up and the dip after it),
            "summer" (a mid-July bump, in the categories that have one), "black_friday" (Black
            Friday weekend to Christmas Eve), "easter" (the two weeks up to Easter Monday).
        elasticity: the range of true elasticities.
        elasticity_by_category: draw each category's mean elasticity from `elasticity` and each
            product's around it (sd 0.25): elasticities cluster by category. False (the demo):
            each product's elasticity is drawn independently of its category.
        dispersion: the negative-binomial dispersion range (variance = mu + dispersion mu^2).
        slow_mover_share: share of products that sell 0.05-1 units a day (zero-heavy).
        stockout_rate: the range of the share of days out of stock.
        stockout_run_max: longest stockout run in days (runs are 1 to this many days).
        trend_break_share: share of products whose level breaks once in their history (a level
            shift of 30-80% either way and a change of trend slope).
        cost_above_price_share: share of products whose unit cost has risen 2-15% above their
            current price (a cost increase not yet passed on: the margin floor binds).
    """

    name: str = "demo"
    n_products: int = 200
    n_days: int = 730
    end_date: dt.date = dt.date(2026, 10, 31)
    regular_gap_days: tuple[int, int] = DEMO_REGULAR_GAP_DAYS
    fixed_price_share: float = 0.10
    promo_lift: tuple[float, float] = (0.0, 0.0)
    endogenous_share: float = 0.0
    launch_share: float = DEMO_LAUNCH_SHARE
    launch_history: tuple[int, int] = DEMO_LAUNCH_HISTORY
    delisted_share: float = 0.0
    peaks: tuple[str, ...] = (CHRISTMAS, SUMMER)
    elasticity: tuple[float, float] = (-3.5, -0.5)
    elasticity_by_category: bool = False
    dispersion: tuple[float, float] = (0.05, 0.30)
    slow_mover_share: float = 0.0
    stockout_rate: tuple[float, float] = (0.01, 0.03)
    stockout_run_max: int = DEMO_STOCKOUT_RUN_MAX
    trend_break_share: float = 0.0
    cost_above_price_share: float = 0.0

    def __post_init__(self) -> None:
        _check(self.n_products >= 1, "n_products", f"must be >= 1, got {self.n_products}")
        _check(self.n_days >= 30, "n_days", f"must be >= 30, got {self.n_days}")
        low, high = self.regular_gap_days
        _check(
            7 <= low <= high and high >= 20,
            "regular_gap_days",
            "needs 7 <= low <= high, high >= 20",
        )
        low, high = self.launch_history
        _check(1 <= low <= high, "launch_history", "needs 1 <= low <= high")
        _check(1 <= self.stockout_run_max <= 60, "stockout_run_max", "must be in [1, 60] days")
        for name in _SHARES:
            _check_share(getattr(self, name), name)
        _check_range(self.promo_lift, "promo_lift", 0.0, 2.0)
        _check_range(self.elasticity, "elasticity", -10.0, 0.0)
        _check_range(self.dispersion, "dispersion", 1e-6, 10.0)
        _check_range(self.stockout_rate, "stockout_rate", 0.0, 0.5)
        object.__setattr__(self, "peaks", tuple(self.peaks))
        unknown = sorted(set(self.peaks) - set(PEAKS))
        _check(not unknown, "peaks", f"unknown {unknown}; known: {', '.join(PEAKS)}")

    @property
    def has_promo_lift(self) -> bool:
        """Promotions lift demand beyond their price cut."""
        return self.promo_lift[1] > 0.0

    @property
    def has_latent_demand(self) -> bool:
        """Some prices follow a latent demand wave (the world then records the wave)."""
        return self.endogenous_share > 0.0
