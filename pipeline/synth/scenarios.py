"""The named scenarios of the suite: each one the demo world with one feature of real data on.

With the same seed, every scenario shares the demo world's catalogue and base demand parameters;
only what its switches change differs (see spec.py), so a figure that moves between scenarios
moves because of the feature.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import UserError
from pipeline.synth import spec as specs
from pipeline.synth.spec import WorldSpec


@dataclass(frozen=True)
class Scenario:
    """A named world spec and what it tests, in one line."""

    name: str
    spec: WorldSpec
    about: str


def _scenario(name: str, about: str, **switches: object) -> Scenario:
    return Scenario(name, WorldSpec(name=name, **switches), about)  # type: ignore[arg-type]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        _scenario(
            "demo",
            "the demo world: regular moves every 2-5 months, promotions act only through the "
            "price, elasticities independent of category, 10% fixed prices",
        ),
        _scenario(
            "promo_lift",
            "promotions lift demand 0-40% beyond their price cut (display, feature)",
            promo_lift=(0.0, 0.4),
        ),
        _scenario(
            "rare_moves",
            "regular prices move once or twice in two years; 25% of prices never move; 5% of "
            "unit costs have risen above the current price",
            regular_gap_days=(365, 700),
            fixed_price_share=0.25,
            cost_above_price_share=0.05,
        ),
        _scenario(
            "frequent_moves",
            "regular prices move every 2-6 weeks",
            regular_gap_days=(14, 42),
        ),
        _scenario(
            "seasonal_peaks",
            "peaks from Black Friday to Christmas Eve and at Easter, summer kept, no Christmas "
            "ramp",
            peaks=(specs.BLACK_FRIDAY, specs.EASTER, specs.SUMMER),
        ),
        _scenario(
            "noisy_slow",
            "heavy overdispersion (0.5-1.5) and 40% zero-heavy slow movers (0.05-1 a day)",
            dispersion=(0.5, 1.5),
            slow_mover_share=0.4,
        ),
        _scenario(
            "stockouts_breaks",
            "4-12% of days out of stock in runs up to 10 days; 40% of products break level "
            "and trend once",
            stockout_rate=(0.04, 0.12),
            stockout_run_max=10,
            trend_break_share=0.4,
        ),
        _scenario(
            "launches",
            "30% launched in the last 20-300 days; 10% stopped selling (zero tail of 2-17 weeks)",
            launch_share=0.3,
            launch_history=(20, 300),
            delisted_share=0.1,
        ),
        _scenario(
            "endogenous",
            "a latent demand wave on every product; half the products price on it weekly "
            "(raised when demand is high), without promotions",
            endogenous_share=0.5,
        ),
        _scenario(
            "clustered_elasticities",
            "elasticities clustered by category (category mean, product sd 0.25)",
            elasticity_by_category=True,
        ),
    )
}


class UnknownScenarioError(UserError, ValueError):
    """A scenario name that is not in `SCENARIOS` (a user's error: the CLI prints its message)."""


def scenario(name: str) -> Scenario:
    """The named scenario.

    Raises:
        UnknownScenarioError: for an unknown name (the message lists the known ones).
    """
    if name not in SCENARIOS:
        raise UnknownScenarioError(f"unknown scenario '{name}'; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]
