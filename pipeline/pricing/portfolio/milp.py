"""scipy.optimize.milp over one binary per candidate: the exact check on small problems.

HiGHS needs ~1 s at 1,000 products x 25 candidates and finds nothing in a minute at 10,000
(`pricing bench optimize`), so the solver runs it only on small problems or when asked.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from pipeline.arrays import FloatArray, IntArray
from pipeline.pricing.portfolio.problem import Portfolio, violations


def milp_choice(p: Portfolio, time_limit: float) -> tuple[IntArray | None, str]:
    """scipy.optimize.milp over one binary per candidate; (None, message) when it fails."""
    rows, cols = np.nonzero(np.isfinite(p.valued))
    n_vars = rows.size
    constraints = [LinearConstraint(_one_per_product(p, rows), 1, 1)]
    constraints += _order_rows(p, rows, cols)
    if p.max_changes is not None:
        moved = (cols != p.current[rows]).astype(float)[None, :]
        constraints.append(LinearConstraint(moved, 0, p.max_changes))
    if p.revenue_floor is not None:
        constraints.append(LinearConstraint(p.revenue[rows, cols][None, :], p.revenue_floor))
    result = milp(
        c=-p.scored[rows, cols],
        integrality=np.ones(n_vars),
        bounds=Bounds(0, 1),
        constraints=constraints,
        options={"disp": False, "mip_rel_gap": 0.0, "time_limit": float(time_limit)},
    )
    if result.x is None:
        return None, f"milp found no solution ({result.message})"
    column = p.current.copy()
    on = result.x > 0.5
    column[rows[on]] = cols[on]
    if np.bincount(rows[on], minlength=p.n_products).max(initial=0) > 1 or violations(p, column):
        return None, "milp's answer broke a rule"
    return column, "" if result.status == 0 else str(result.message)


def _one_per_product(p: Portfolio, rows: IntArray) -> sparse.csr_array:
    n_vars = rows.size
    return sparse.csr_array(
        (np.ones(n_vars), (rows, np.arange(n_vars))), shape=(p.n_products, n_vars)
    )


def _order_rows(p: Portfolio, rows: IntArray, cols: IntArray) -> list[LinearConstraint]:
    """Per link a -> b: price_b - price_a >= 0 and, with sizes, s_a price_b - s_b price_a <= 0."""
    if p.chains.shape[0] == 0:
        return []
    links = np.stack([p.chains[:, :-1].ravel(), p.chains[:, 1:].ravel()], axis=1)
    links = links[links[:, 1] >= 0]
    var_of = {(int(r), int(c)): k for k, (r, c) in enumerate(zip(rows, cols, strict=True))}
    size = p.unit_size if p.unit_size is not None else np.full(p.n_products, np.nan)
    order, per_unit = _LinkRows(), _LinkRows()
    for a, b in links:
        order.add(var_of, p.price, ((b, 1.0), (a, -1.0)))
        if np.isfinite(size[a] * size[b]):
            per_unit.add(var_of, p.price, ((b, size[a]), (a, -size[b])))
    n_vars = rows.size
    out = [LinearConstraint(order.matrix(n_vars), 0, np.inf)]
    if per_unit.count:
        out.append(LinearConstraint(per_unit.matrix(n_vars), -np.inf, 0))
    return out


class _LinkRows:
    """Sparse rows sum_k weight_k * price(candidate k) * x_k, one per family link."""

    def __init__(self) -> None:
        self.r: list[int] = []
        self.c: list[int] = []
        self.v: list[float] = []
        self.count = 0

    def add(self, var_of: dict, price: FloatArray, terms: tuple) -> None:
        for product, weight in terms:
            for column in np.flatnonzero(np.isfinite(price[product])):
                k = var_of.get((int(product), int(column)))
                if k is not None:
                    self.r.append(self.count)
                    self.c.append(k)
                    self.v.append(weight * price[product, column])
        self.count += 1

    def matrix(self, n_vars: int) -> sparse.csr_array:
        return sparse.csr_array((self.v, (self.r, self.c)), shape=(self.count, n_vars))
