"""Synthetic retail worlds with their exact ground truth: the demo data and the suite's scenarios.

- `spec`: `WorldSpec`, the frozen switches a world is drawn from (defaults: the demo world);
- `scenarios`: the named specs of the scenario suite (`SCENARIOS`, `scenario`);
- `world`: `generate(spec, seed)` and `generate_world(n, days, seed)` (the demo world);
- `demand`: the one demand formula behind the simulation and the truth functions
  (`true_daily_mean`, `true_expected_units`), which the oracle prices on;
- `catalogue`, `prices`, `features`, `truth`: the parts a world is drawn from.

Nothing here reads or writes storage; the frames follow the data contract (DESIGN section 3).
"""

from pipeline.synth.demand import true_daily_mean, true_expected_units
from pipeline.synth.scenarios import SCENARIOS, Scenario, UnknownScenarioError, scenario
from pipeline.synth.spec import PEAKS, SpecError, WorldSpec
from pipeline.synth.world import World, generate, generate_world, scaled

__all__ = [
    "PEAKS",
    "SCENARIOS",
    "Scenario",
    "SpecError",
    "UnknownScenarioError",
    "World",
    "WorldSpec",
    "generate",
    "generate_world",
    "scaled",
    "scenario",
    "true_daily_mean",
    "true_expected_units",
]
