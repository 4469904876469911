"""Array type names and the numerical constants every module shares."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.object_]

# Log-demand is clipped before exponentiating: exp(15) is 3.3 million units a day, more than any
# product sells, and exp(-20) is zero for every purpose, so nothing overflows or underflows.
LOG_MIN, LOG_MAX = -20.0, 15.0

# The standard normal's 95% quantile: a ~90% two-sided interval is estimate +- Z90 * se.
Z90 = 1.6448536269514722


def exp_clipped(log_values: npt.ArrayLike) -> FloatArray:
    """exp of log-demand, clipped to [LOG_MIN, LOG_MAX] first (see above)."""
    return np.exp(np.clip(log_values, LOG_MIN, LOG_MAX))
