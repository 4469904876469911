"""Measure the pipeline against the ground truth of synthetic worlds.

Three questions, on one world (`pricing evaluate`) or on many (the scenario suite): did the
forecaster recover each product's true elasticity, with honest intervals; how much of the profit
that was there to capture did the recommended prices capture, under the same rules; and how does
that compare with a plain per-product log-log regression of units on price fed through the same
pricing engine (the baseline a pricing team would try first)?

- `elasticity`: learned vs true elasticities (error, bias, interval coverage);
- `baseline`: the log-log regression, as a forecaster's product table;
- `capture`: profit capture against an oracle (the same engine on the true demand);
- `measures`: one night's every figure (`night_report`), from frames only;
- `suite`: the scenario suite (`run_suite`), worlds x seeds through the night in process;
- `table`: the suite's table and its per-scenario aggregates.
"""

from pipeline.evaluate.baseline import loglog_table
from pipeline.evaluate.capture import (
    PROFITS,
    capture_text,
    evaluate_policies,
    profit_capture,
    true_demand,
)
from pipeline.evaluate.elasticity import elasticity_report
from pipeline.evaluate.measures import (
    decision_report,
    endogenous_report,
    forecast_report,
    night_report,
    night_text,
)

__all__ = [
    "PROFITS",
    "capture_text",
    "decision_report",
    "elasticity_report",
    "endogenous_report",
    "evaluate_policies",
    "forecast_report",
    "loglog_table",
    "night_report",
    "night_text",
    "profit_capture",
    "true_demand",
]
