"""The suite's figures per run, their medians per scenario, and the table on the terminal."""

from __future__ import annotations

import textwrap
from typing import Any

from pipeline.evaluate.figures import median

# (key, header, format) of each column of the table; a None figure prints as "n/a".
_COLUMNS = (
    ("elasticity_mae", "MAE", ".3f"),
    ("elasticity_bias", "bias", "+.3f"),
    ("coverage", "cover", ".0%"),
    ("wape", "WAPE", ".3f"),
    ("naive_wape", "naive", ".3f"),
    ("capture", "capture", ".0%"),
    ("loglog_capture", "loglog", ".0%"),
    ("capture_priced", "priced", ".0%"),
    ("loglog_capture_priced", "loglog", ".0%"),
    ("capture_cautious", "caut.", ".0%"),
    ("tests_share", "tests", "+.0%"),
    ("n_held", "held", ".0f"),
    ("below_cost", "<cost", ".0f"),
    ("below_cost_explained", "why", ".0f"),
    ("capped_raises", "capped", ".0f"),
    ("capped_raises_inelastic", "e>-1", ".0f"),
    ("seconds", "s", ".0f"),
)
_WIDTH = {"MAE": 6, "bias": 7, "cover": 6, "WAPE": 6, "naive": 6, "capture": 8, "loglog": 7,
          "priced": 7, "caut.": 6, "tests": 6, "held": 5, "<cost": 6, "why": 4, "capped": 7,
          "e>-1": 5, "s": 5}  # fmt: skip


def _get(tree: Any, *path: str) -> Any:
    for key in path:
        if tree is None:
            return None
        tree = tree.get(key)
    return tree


def run_figures(run: dict[str, Any]) -> dict[str, Any]:
    """One run's headline figures as a flat dict (None where the run has no such figure)."""
    model, loglog = _get(run, "policies", "model"), _get(run, "policies", "loglog")
    decisions = run.get("decisions")
    return {
        "elasticity_n": _get(run, "elasticity", "n_products"),
        "elasticity_mae": _get(run, "elasticity", "median_abs_error"),
        "elasticity_bias": _get(run, "elasticity", "median_bias"),
        "coverage": _get(run, "elasticity", "interval_coverage"),
        "loglog_elasticity_mae": _get(loglog, "elasticity", "median_abs_error"),
        "wape": _get(run, "forecast", "median_wape"),
        "naive_wape": _get(run, "forecast", "median_naive_wape"),
        "capture": _get(model, "overall", "capture"),
        "capture_priced": _get(model, "overall", "capture_priced"),
        "loglog_capture": _get(loglog, "overall", "capture"),
        "loglog_capture_priced": _get(loglog, "overall", "capture_priced"),
        "capture_cautious": _get(model, "overall", "capture_cautious"),
        "tests_share": _get(model, "overall", "tests_share"),
        **{key: _get(decisions, key) for key in _DECISIONS},
        "endogenous_bias": _get(run, "endogenous", "elasticity", "median_bias"),
        "endogenous_flagged": _get(run, "endogenous", "n_flagged"),
        "endogenous_capped_raises": _get(run, "endogenous", "capped_raises"),
        "seconds": run.get("seconds"),
    }


_DECISIONS = ("n_held", "below_cost", "below_cost_explained", "capped_raises",
              "capped_raises_inelastic")  # fmt: skip


def scenario_figures(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario (in run order): the median over its seeds of every figure, and of the holds
    by reason (a reason a seed did not have counts 0 there)."""
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_scenario.setdefault(run["scenario"], []).append(run)
    out = {}
    for name, group in by_scenario.items():
        flat = [run_figures(run) for run in group]
        figures: dict[str, Any] = {key: median(f[key] for f in flat) for key in flat[0]}
        holds = [(run.get("decisions") or {}).get("holds", {}) for run in group]
        reasons = sorted({reason for h in holds for reason in h})
        figures["holds"] = {r: median(h.get(r, 0) for h in holds) for r in reasons}
        figures["seeds"] = len(group)
        out[name] = figures
    return out


def _cell(value: Any, spec: str, width: int) -> str:
    text = "n/a" if value is None else format(value, spec)
    return text.rjust(width)


def suite_table(scenarios: dict[str, dict[str, Any]]) -> str:
    """The per-scenario medians as an aligned text table, with the holds by reason below it."""
    name_width = max([len("scenario"), *(len(n) for n in scenarios)]) + 2
    header = "scenario".ljust(name_width) + "".join(
        title.rjust(_WIDTH[title]) for _, title, _ in _COLUMNS
    )
    lines = [header]
    for name, figures in scenarios.items():
        lines.append(
            name.ljust(name_width)
            + "".join(_cell(figures[key], spec, _WIDTH[title]) for key, title, spec in _COLUMNS)
        )
    lines.append("")
    lines.append("holds by reason (median products per world):")
    for name, figures in scenarios.items():
        holds = ", ".join(f"{reason} {count:g}" for reason, count in figures["holds"].items())
        lines.append(f"  {name}: {holds or 'none'}")
    endogenous = {n: f for n, f in scenarios.items() if f["endogenous_bias"] is not None}
    for name, figures in endogenous.items():
        lines.append(
            f"prices that follow demand ({name}): elasticity bias "
            f"{_cell(figures['endogenous_bias'], '+.3f', 0)}, flagged "
            f"{_cell(figures['endogenous_flagged'], '.0f', 0)}, raised to a cap "
            f"{_cell(figures['endogenous_capped_raises'], '.0f', 0)}"
        )
    return "\n".join(lines)


LEGEND = textwrap.fill(
    "Medians over seeds. MAE, bias (estimate - truth) and cover (truth inside the ~90% interval): "
    "elasticities of products whose price varied, own estimates, prices not set from demand. "
    "WAPE / naive: median backtest WAPE of the model / seasonal-naive. capture / priced: profit "
    "capture overall (price tests' cost included) / on the products priced on their estimate, "
    "beside the log-log baseline priced by the same engine. caut.: capture on the priced products "
    "against an oracle that also keeps the evidence rules (trust region, no walk past the prices "
    "sold at on a true elasticity of -1 or above): the estimation's share, caution's cost taken "
    "out. tests: tonight's price tests' profit "
    "change, as a share of the gain available. held: products held. <cost (why): prices below "
    "unit cost (whose reason says why). "
    "capped (e>-1): raises stopped by a cap (on an elasticity above -1). s: seconds per world.",
    width=100,
)
