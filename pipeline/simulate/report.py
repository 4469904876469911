"""`pricing report --simulation FILE`: a closed loop's results as one HTML page.

The page reads the JSON that `pricing simulate --out FILE` writes and shows the cumulative
expected profit of every policy above today's prices against the oracle's (one plot), the
capture figures (all products, and the products with a best price inside the range), and the
night-by-night figures. Like the nightly report, it is one self-contained file with its plot
embedded.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.report import ReportError, html_table, image_tag
from pipeline.simulate.summary import COMPARED, cumulative_figure, summarise

_STYLE = "body{font-family:sans-serif;max-width:1000px;margin:2em auto}td,th{padding:2px 8px}"


def read_result(path: Path) -> dict[str, Any]:
    """A `pricing simulate --out` file, checked to be one.

    Raises:
        ReportError: the file is missing, not JSON, or not a simulation's result.
    """
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = "write one with `pricing simulate --out`"
        raise ReportError(f"{path}: no such file ({hint})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(result, dict) or not {"config", "nights"} <= set(result):
        hint = "`pricing simulate --out` writes one"
        raise ReportError(f"{path}: not a simulation's result ({hint})")
    if not result["nights"] or "oracle" not in result["config"].get("arms", []):
        raise ReportError(f"{path}: the simulation has no night, or no oracle to compare with")
    return result


def capture_table(summary: dict[str, Any]) -> pl.DataFrame:
    """One row per compared policy: uplift and capture, on all products and the elastic ones."""
    rows = []
    elastic = summary.get("elastic", {})
    for arm in (a for a in COMPARED if a in summary):
        own, sub = summary[arm], elastic.get(arm, {})
        rows.append(
            {
                "policy": arm,
                "uplift": own["uplift"],
                "capture": _share(own["capture"]),
                "capture, last 7 nights": _share(own["capture_last_7"]),
                "capture on elastic products": _share(sub.get("capture")),
                "elastic, last 7 nights": _share(sub.get("capture_last_7")),
                "of the cautious oracle": _share(own.get("capture_cautious")),
                "price changes": own["price_changes"],
            }
        )
    return pl.DataFrame(rows)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def nights_table(result: dict[str, Any]) -> pl.DataFrame:
    """Night by night: each policy's expected profit, and the engine's tests and identified."""
    arms = result["config"]["arms"]
    rows = []
    for record in result["nights"]:
        row: dict[str, Any] = {"night": record["night"], "day": record["day"]}
        row |= {arm: round(record[arm]["expected_profit"]) for arm in arms}
        engine = record["engine"]
        row |= {k: engine.get(k) for k in ("testing", "identified", "price_changes")}
        rows.append(row)
    return pl.DataFrame(rows)


def simulation_html(result: dict[str, Any]) -> str:
    """The whole page of one simulation's result."""
    cfg = result["config"]
    summary = result.get("summary") or summarise(result)
    title = (
        f"Closed loop: {cfg['scenario']} world, seed {cfg['seed']}, {cfg['products']} products, "
        f"{cfg['nights']} nights"
    )
    ahead = summary.get("tests_ahead_from_night")
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        "<p>Expected profit (the true mean demand at each policy's shelf prices) above keeping "
        f"today's prices. The oracle's cumulative uplift: {summary['oracle_uplift']:,.0f}. "
        "Capture is a policy's uplift over the oracle's; elastic products are those whose true "
        "elasticity is below -1 (the others' best price is their max_price). The cautious oracle "
        "knows the true curves but keeps the engine's evidence rules (the trust region, walked "
        "one step a week on an elasticity of -1 or above, as the engine does once a price test "
        "found it): its capture is what those rules leave, and 'of the cautious oracle' is an "
        "engine's uplift over its uplift.</p>",
        image_tag(cumulative_figure(result), "cumulative profit against the oracle"),
        html_table(capture_table(summary)),
        "<p>The engine with price tests is ahead of the engine without "
        + ("from night " + str(ahead) if ahead else "not at the last night")
        + f"; wall time {result.get('seconds', 0):,.0f} s.</p>",
        "<h2>Night by night (expected profit)</h2>",
        html_table(nights_table(result)),
    ]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>"
    )


def write_simulation_report(path: Path, out_dir: Path | None = None) -> Path:
    """Write the page of the simulation in `path` (default: next to it); return its path."""
    result = read_result(path)
    folder = out_dir or Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{Path(path).stem}.html"
    target.write_text(simulation_html(result), encoding="utf-8")
    return target
