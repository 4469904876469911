"""Price recommendations: guardrails, candidate ladders, vectorised scoring and the scipy choice.

`recommend` (in `engine.py`) is the one entry point the flows call: products and their forecasts
in, one row per product out (`contract.RECOMMENDATION_COLUMNS`). It runs in small steps, each a
function in the module named for its concern (DESIGN section 5):

1. `inputs`: products joined with their forecasts; `limits.resolve` then `ladder.allowed_range`:
   min/max price -> maximum change per run -> margin floor -> the trust region of the prices the
   product has sold at, each the most restrictive of the catalogue, global, category and product
   rules, recording the rule that set each bound, and the base price (today's, or where it
   breaks a bound, the nearest allowed price toward it: a floor is a floor); `holds`: why a
   product keeps its price before any choice (status, data issues, rules, an inelastic estimate);
2. `ladder.candidate_ladders`: prices inside the range that end in an allowed ending, plus the
   base price; candidates closer to the current price than `min_change` are dropped;
3. `scoring.score_candidates` (and `risk_adjusted` for the risk-aware objective): units, revenue
   and profit of every candidate in one numpy pass, over the elasticity's uncertainty;
4. `choice`: the `portfolio` problem over the ladders, solved by `portfolio.solve` (a per-product
   argmax while products are independent, and under family ordering, the change budget and the
   revenue floor otherwise), and the outcome of each product;
5. `scoring.binding_rules`: which rule stopped each price short of its unconstrained optimum;
6. `explain`: one readable sentence per product.

Holds: a cold start always keeps its price; products whose forecast failed its quality gate,
whose elasticity is not identified or whose price moves with demand (confounded) keep theirs when
their status is in `hold_statuses`, and so do products with more stockout days than
`max_stockout_share` and, with `hold_inelastic`, products whose elasticity is -1 or above. A hold
for the evidence still moves a price below its margin floor toward it. `oracle_config` gives the
rules for pricing on true curves. `explore` runs price tests around `recommend`, and lets an
inelastic estimate its test proved walk the widened trust region (`inelastic_walk`). Everything here
is pure: frames and arrays in, new frames and arrays out, no I/O.
"""

from pipeline.pricing import portfolio
from pipeline.pricing.choice import choice_problem, outcomes
from pipeline.pricing.engine import oracle_config, recommend
from pipeline.pricing.explain import endings_text, explain
from pipeline.pricing.ladder import (
    RULE_ORDER,
    PriceRange,
    allowed_range,
    candidate_ladders,
    without_small_changes,
)
from pipeline.pricing.scoring import (
    Scores,
    binding_rules,
    risk_adjusted,
    score_candidates,
    unconstrained_optimum,
)

__all__ = [
    "RULE_ORDER",
    "PriceRange",
    "Scores",
    "allowed_range",
    "binding_rules",
    "candidate_ladders",
    "choice_problem",
    "endings_text",
    "explain",
    "oracle_config",
    "outcomes",
    "portfolio",
    "recommend",
    "risk_adjusted",
    "score_candidates",
    "unconstrained_optimum",
    "without_small_changes",
]
