"""One candidate price per product when rules tie products together (DESIGN section 5).

A `Portfolio` (`problem.py`) is the choice over every product's candidate ladder: pick one column
per product to maximise the summed value subject to

- family ordering: along each family chain (smallest size first) a price is never below its
  predecessor's and, where sizes are given, never above it per unit of size;
- at most `max_changes` products off their current price;
- total expected revenue at least `revenue_floor` (currency over the horizon).

`solve` (`solver.py`) picks the method:

- nothing couples products: the exact per-product argmax;
- family ordering only: an exact dynamic programme along each chain, all families at once;
- one global limit (the change budget or the revenue floor): Lagrangian relaxation of it, a
  bisection on its multiplier with the chain programme inside, then a greedy fill of the slack;
  the dual bound is kept, so the gap to the optimum is known (`exact.py`);
- both global limits: a bisection on the floor's multiplier around the budget's search;
- when that leaves a gap and the problem has at most `MILP_MAX_VARIABLES` candidates, and always
  with `method="milp"`: scipy.optimize.milp over one binary per candidate, with a time limit
  (`milp.py`; HiGHS needs ~1 s at 1,000 products x 25 candidates and finds nothing in a minute at
  10,000: `pricing bench optimize`); a `method="milp"` without a valid answer holds every
  product, with the reason;
- `method="greedy"`: the per-product best, repaired rule by rule (the baseline, `greedy.py`).

The coupled answer is never worse than the greedy one: the best valid answer of the methods run
(greedy's included) is returned. Families whose rules leave no ordered prices, or that need more
changes than the budget allows to restore their order, are held before solving; their reason says
why. A limit no choice can meet holds every product, with the reason.
"""

from pipeline.pricing.portfolio.greedy import greedy
from pipeline.pricing.portfolio.problem import (
    FAMILY_ORDER,
    MAX_CHANGES,
    REVENUE_FLOOR,
    Portfolio,
    Solution,
    independent_best,
    violations,
)
from pipeline.pricing.portfolio.solver import MILP_MAX_VARIABLES, solve

__all__ = [
    "FAMILY_ORDER",
    "MAX_CHANGES",
    "MILP_MAX_VARIABLES",
    "REVENUE_FLOOR",
    "Portfolio",
    "Solution",
    "greedy",
    "independent_best",
    "solve",
    "violations",
]
