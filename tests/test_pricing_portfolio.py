"""Tests for pipeline/pricing/portfolio/: the coupled choice against milp and greedy."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from pipeline.pricing.portfolio import (
    Portfolio,
    greedy,
    independent_best,
    solve,
    solver,
    violations,
)
from pipeline.pricing.portfolio import milp as milp_method


def random_problem(
    seed: int,
    n: int = 36,
    width: int = 8,
    max_changes: int | None = None,
    floor: float | None = None,
    per_unit: bool = False,
) -> Portfolio:
    """Seeded problem: families of 2-3 sizes in order at today's prices, random values."""
    rng = np.random.default_rng(seed)
    level = np.exp(rng.uniform(0.0, 2.0, n))
    members = rng.permutation(n)[: n // 2]
    chains = np.full((len(members) // 3, 3), -1, dtype=np.int64)
    for k in range(chains.shape[0]):
        size = rng.integers(2, 4)
        chains[k, :size] = members[3 * k : 3 * k + size]
        level[chains[k, :size]] = level[chains[k, 0]] * 1.25 ** np.arange(size)
    price = np.round(np.sort(level[:, None] * rng.uniform(0.85, 1.15, (n, width)), axis=1), 2)
    current = np.argmin(np.abs(price - level[:, None]), axis=1)
    value = rng.normal(0.0, 10.0, (n, width))
    value[rng.random((n, width)) < 0.2] = np.nan
    value[np.arange(n), current] = rng.normal(0.0, 10.0, n)
    revenue = price * rng.uniform(1.0, 10.0, (n, width))
    unit_size = None
    if per_unit:
        unit_size = np.full(n, np.nan)
        for chain in chains:
            rows = chain[chain >= 0]
            unit_size[rows] = 1.3 ** np.arange(rows.size)
    today = revenue[np.arange(n), current].sum()
    return Portfolio(
        value=value,
        price=price,
        revenue=revenue,
        current=current,
        chains=chains,
        unit_size=unit_size,
        max_changes=max_changes,
        revenue_floor=None if floor is None else floor * today,
    )


def milp_optimum(p: Portfolio) -> float:
    solution = solve(p, "milp", time_limit=60)
    assert solution.method in ("milp", "greedy")
    return solution.objective


COUPLINGS = {
    "family order": {},
    "family order per unit": {"per_unit": True},
    "change budget": {"max_changes": 5},
    "change budget per unit": {"max_changes": 3, "per_unit": True},
    "revenue floor": {"floor": 1.0},
    "budget and floor": {"max_changes": 6, "floor": 1.0},
}


# Couplings where the decomposition alone is exact on these problems: the chain programme for
# family order, and the Lagrangian search on the change budget, whose dual bound closes.
EXACT_COUPLINGS = (
    "family order",
    "family order per unit",
    "change budget",
    "change budget per unit",
)


@pytest.mark.parametrize("coupling", COUPLINGS)
@pytest.mark.parametrize("seed", range(6))
def test_the_decomposition_without_milp_matches_milp_and_is_never_worse_than_greedy(
    coupling: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = random_problem(seed, **COUPLINGS[coupling])
    optimum = milp_optimum(p)
    # On a problem this small "auto" closes any gap with milp itself, which would compare milp
    # with milp; without it the answer is the chain programme's or the Lagrangian search's own.
    monkeypatch.setattr(solver, "MILP_MAX_VARIABLES", 0)
    solution = solve(p)
    assert not solution.held.any()
    assert violations(p, solution.column) == []
    assert solution.objective <= optimum + 1e-6
    assert optimum <= solution.bound + 1e-6
    if coupling in EXACT_COUPLINGS:
        assert solution.method == ("lagrangian" if p.has_global else "dp")
        assert solution.objective == pytest.approx(optimum, rel=1e-9, abs=1e-6)
        assert solution.bound == pytest.approx(optimum, rel=1e-9, abs=1e-6)
    baseline = greedy(p)
    if not violations(p, baseline):
        assert solution.objective >= p.total(baseline) - 1e-9
    # With milp allowed, "auto" closes the remaining gap on a problem this small.
    monkeypatch.undo()
    assert solve(p).objective == pytest.approx(optimum, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("coupling", ["change budget", "revenue floor", "budget and floor"])
@pytest.mark.parametrize("seed", range(6))
def test_the_decomposition_alone_is_valid_close_to_milp_and_within_its_bound(
    coupling: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = random_problem(seed, n=60, **COUPLINGS[coupling])
    optimum = milp_optimum(p)
    monkeypatch.setattr(solver, "MILP_MAX_VARIABLES", 0)  # as on a large catalogue
    solution = solve(p)
    assert solution.method in ("lagrangian", "greedy")
    assert violations(p, solution.column) == []
    assert solution.objective <= optimum + 1e-6
    assert solution.objective >= optimum - 0.03 * abs(optimum)
    assert optimum <= solution.bound + 1e-6


def test_the_coupled_choice_beats_greedy_where_greedy_is_myopic() -> None:
    # Two sizes: the small one alone wants 3.00 (value 10), which forces the large one to 3.00
    # (value 0); 2.00 for the small one (value 9) lets the large one take 2.50 (value 10).
    p = Portfolio(
        value=np.array([[9.0, 0.0, 10.0], [0.0, 10.0, 0.0]]),
        price=np.array([[2.0, 2.5, 3.0], [2.0, 2.5, 3.0]]),
        revenue=np.ones((2, 3)),
        current=np.array([1, 1]),
        chains=np.array([[0, 1]]),
    )
    assert greedy(p).tolist() == [2, 2]
    solution = solve(p)
    assert solution.column.tolist() == [0, 1]
    assert solution.objective == 19.0 > p.total(greedy(p)) == 10.0
    assert solution.limited_by.tolist() == ["family_order", ""]
    assert solution.method == "dp"


def test_uncoupled_choice_is_the_per_product_argmax_and_prefers_today_on_ties() -> None:
    value = np.array([[1.0, 3.0, 3.0], [5.0, 5.0, np.nan], [np.nan, 2.0, 1.0]])
    p = Portfolio(
        value=value, price=np.ones((3, 3)), revenue=np.ones((3, 3)), current=np.array([2, 1, 2])
    )
    solution = solve(p)
    assert solution.column.tolist() == [2, 1, 1]
    assert solution.method == "argmax"
    assert independent_best(p).tolist() == [2, 1, 1]


def test_the_change_budget_keeps_the_largest_gains() -> None:
    gains = np.array([5.0, 1.0, 3.0, 4.0])
    value = np.stack([np.zeros(4), gains], axis=1)
    p = Portfolio(
        value=value,
        price=np.tile([1.0, 2.0], (4, 1)),
        revenue=np.ones((4, 2)),
        current=np.zeros(4, dtype=np.int64),
        max_changes=2,
    )
    solution = solve(p)
    assert solution.column.tolist() == [1, 0, 0, 1]
    assert solution.limited_by.tolist() == ["", "max_changes", "max_changes", ""]
    assert solution.bound == pytest.approx(9.0)


def test_a_family_with_no_ordered_prices_is_held_with_the_reason() -> None:
    # The larger size may only cost 1.00-1.50, the smaller only 2.00-2.50.
    p = Portfolio(
        value=np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]),
        price=np.array([[2.0, 2.5], [1.0, 1.5], [1.0, 1.5]]),
        revenue=np.ones((3, 2)),
        current=np.zeros(3, dtype=np.int64),
        chains=np.array([[0, 1]]),
        chain_names=("F1",),
    )
    solution = solve(p)
    assert solution.held.tolist() == [True, True, False]
    assert solution.column.tolist() == [0, 0, 1]
    assert solution.held_rule.tolist() == ["family_order", "family_order", "none"]
    assert solution.reason[0].startswith("family F1: no prices inside the allowed ranges")


def test_families_out_of_order_beyond_the_budget_are_held() -> None:
    # Both families are out of order today (the larger size is cheaper) and each needs one
    # change to repair; a budget of one repairs one family and holds the other.
    price = np.array([[2.0, 3.0]] * 4)
    p = Portfolio(
        value=np.zeros((4, 2)),
        price=price,
        revenue=np.ones((4, 2)),
        current=np.array([1, 0, 1, 0]),
        chains=np.array([[0, 1], [2, 3]]),
        max_changes=1,
        chain_names=("F1", "F2"),
    )
    solution = solve(p)
    assert solution.held.tolist() == [False, False, True, True]
    assert "more price changes than max_changes 1 leaves" in solution.reason[2]
    assert violations(replace_chains(p, np.array([[0, 1]])), solution.column) == []


def replace_chains(p: Portfolio, chains: np.ndarray) -> Portfolio:
    return Portfolio(p.value, p.price, p.revenue, p.current, chains, max_changes=p.max_changes)


def test_an_unreachable_revenue_floor_holds_everything_with_the_reason() -> None:
    p = Portfolio(
        value=np.array([[0.0, 1.0]]),
        price=np.array([[1.0, 2.0]]),
        revenue=np.array([[1.0, 1.5]]),
        current=np.array([0]),
        revenue_floor=2.0,
    )
    solution = solve(p)
    assert solution.held.all()
    assert solution.reason[0].startswith("no allowed prices reach the revenue floor")


def test_a_failed_milp_holds_every_product(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(**_: Any) -> SimpleNamespace:
        return SimpleNamespace(status=1, x=None, message="Time limit reached")

    monkeypatch.setattr(milp_method, "milp", failing)
    p = random_problem(1, max_changes=4)
    solution = solve(p, "milp", time_limit=1)
    assert solution.held.all()
    assert (solution.column == p.current).all()
    assert solution.reason[0] == (
        "milp found no solution (Time limit reached): today's prices kept"
    )


def test_violations_name_each_broken_rule() -> None:
    p = random_problem(2, max_changes=0, floor=2.0)
    column = np.where(np.isfinite(p.value[:, 0]), 0, p.current)
    found = violations(p, column)
    assert any("exceed max_changes 0" in line for line in found)
    assert any("below the floor" in line for line in found)


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown solver"):
        solve(random_problem(0), "simplex")


def test_the_optimize_benchmark_reports_a_coupled_solve_checked_against_milp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.bench import optimize

    # The benchmark's "decomposition" is solve(..., "auto"), which would close a gap with milp
    # itself at these sizes; without milp it is the decomposition's own answer.
    monkeypatch.setattr(solver, "MILP_MAX_VARIABLES", 0)
    result = optimize.run(n_products=400, max_changes=2_000, repeats=1, milp_sizes=(150,))
    assert result["problem"]["n_products"] == 400
    assert result["problem"]["ladder_columns"] == 25
    assert result["problem"]["n_families"] > 0
    assert result["changes"] <= result["problem"]["max_changes"] == 80  # 2,000 per 10,000
    assert result["coupled_minus_greedy"] >= 0
    assert result["objective"] <= result["dual_bound"] + 1e-6
    (check,) = result["milp"]
    assert check["milp_outcome"] == "milp"
    assert check["decomposition_minus_milp"] == pytest.approx(0.0, abs=1e-6)
