"""Reports for people: forecasts against actuals, demand and profit curves, price changes.

`write_report` writes one self-contained HTML page (PNG plots embedded) under
`<warehouse folder>/reports/`; `write_product_plot` writes one product's PNG. Everything is read
with the named queries in `sql/queries/` (`warehouse.run_named_query`), through the same read-only
path as an analyst's `pricing sql`, and plotted with matplotlib's Agg backend (no display needed).

Forecast against actuals uses only forecasts a nightly run really made: the latest completed
nightly run whose forecast days now have sales (a night replayed with `pricing nightly --as-of`
works too). Its forecasts assume the recommended price; they are moved to the price actually paid
with the run's own elasticity, which is exact for the model's constant-elasticity price term.
Stockout days are left out: their sales are censored.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pipeline import warehouse
from pipeline.contract import ACTIONS, CHANGE_ACTIONS
from pipeline.errors import UserError
from pipeline.summary import hold_reasons


class ReportError(UserError, ValueError):
    """Nothing to report yet; the message says which command makes it."""


@dataclass(frozen=True)
class Curve:
    """A product's expected units and profit over the horizon across its price range."""

    price: np.ndarray
    units: np.ndarray
    profit: np.ndarray


# --------------------------------------------------------------------------------- data


def latest_recommendations(path: str | Path) -> pl.DataFrame:
    """The latest nightly run's recommendations with each product's cost and price limits.

    Raises:
        ReportError: no nightly run has completed yet.
    """
    recs = warehouse.run_named_query(path, "report_recommendations")
    if recs.is_empty():
        raise ReportError("no recommendations yet: run `pricing nightly` first")
    return recs


def backtest(path: str | Path) -> pl.DataFrame:
    """Forecast against actual units, per product and day, of the latest run that has actuals.

    Returns:
        run_id, as_of, product_id, ds, forecast (expected units at the price actually paid),
        actual; stockout days left out. Empty when no forecast day has sales yet.
    """
    raw = warehouse.run_named_query(path, "report_backtest")
    if raw.is_empty():
        return raw
    # Constant elasticity: units(paid) = units(forecast price) * (paid / forecast price) ** e.
    shift = (pl.col("paid_price") / pl.col("forecast_price")).pow(pl.col("elasticity").fill_null(0))
    return raw.filter(~pl.col("stockout")).select(
        "run_id",
        "as_of",
        "product_id",
        "ds",
        (pl.col("units_mean") * shift).alias("forecast"),
        pl.col("units").alias("actual"),
    )


def wape(frame: pl.DataFrame) -> float:
    """Weighted absolute percentage error of `forecast` against `actual` (0.25 = 25%)."""
    actual = float(frame["actual"].sum())
    return float((frame["forecast"] - frame["actual"]).abs().sum()) / max(actual, 1e-9)


def price_curve(rec: dict, points: int = 200) -> Curve:
    """Expected units and profit over the horizon from min to max price, for one product.

    The curve runs through the run's own expected units at the recommended price with the run's
    elasticity (the model's constant-elasticity demand), so it marks the same numbers as the
    recommendation row.

    Raises:
        ReportError: the product has no demand estimate (held on invalid inputs).
    """
    if rec["expected_units"] is None or rec["unit_cost"] is None:
        raise ReportError(f"{rec['product_id']} has no demand estimate: {rec['reason']}")
    low = min(rec["min_price"], rec["current_price"], rec["recommended_price"])
    high = max(rec["max_price"], rec["current_price"], rec["recommended_price"])
    price = np.linspace(low, high, points)
    elasticity = rec["elasticity"] if rec["elasticity"] is not None else 0.0
    units = rec["expected_units"] * (price / rec["recommended_price"]) ** elasticity
    return Curve(price=price, units=units, profit=(price - rec["unit_cost"]) * units)


def price_changes(recs: pl.DataFrame) -> np.ndarray:
    """Recommended against current price, in percent, of the products whose price changes."""
    changed = recs.filter(pl.col("action").is_in(list(CHANGE_ACTIONS)))
    return ((changed["recommended_price"] / changed["current_price"] - 1) * 100).to_numpy()


# -------------------------------------------------------------------------------- plots


def plot_backtest(frame: pl.DataFrame) -> Figure:
    """Daily units summed over products: the run's forecast against what sold."""
    daily = frame.group_by("ds").agg(pl.col("forecast").sum(), pl.col("actual").sum()).sort("ds")
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    ax.plot(daily["ds"], daily["actual"], marker="o", color="black", label="actual units")
    ax.plot(daily["ds"], daily["forecast"], marker="s", color="tab:blue", label="forecast")
    ax.set_title(
        f"Forecast against actuals: run of {frame['as_of'][0]}, {frame['product_id'].n_unique()} "
        f"products, WAPE {wape(frame):.1%} per product-day"
    )
    ax.set_ylabel("units per day (all products)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return fig


def _draw_curves(units_ax: Axes, profit_ax: Axes, rec: dict) -> None:
    """Demand and profit curves with the allowed range shaded and both prices marked."""
    curve = price_curve(rec)
    units_ax.plot(curve.price, curve.units, color="tab:blue")
    units_ax.set_ylabel("expected units over the horizon")
    profit_ax.plot(curve.price, curve.profit, color="tab:purple")
    profit_ax.set_ylabel("expected profit over the horizon")
    for ax in (units_ax, profit_ax):
        ax.axvspan(rec["allowed_min"], rec["allowed_max"], color="tab:green", alpha=0.1)
        ax.axvline(rec["current_price"], color="grey", linestyle="--", label="current price")
        ax.axvline(rec["recommended_price"], color="tab:red", label="recommended price")
        ax.set_xlabel("price")
        ax.grid(alpha=0.3)
    profit_ax.scatter([rec["recommended_price"]], [rec["expected_profit"]], color="tab:red")
    profit_ax.legend(loc="lower center", fontsize="small")


def _curve_title(rec: dict) -> str:
    e = rec["elasticity"]
    if rec["action"] in CHANGE_ACTIONS:
        move = f"{rec['action']} {rec['current_price']:.2f} -> {rec['recommended_price']:.2f}"
    else:
        move = f"{rec['action']} at {rec['current_price']:.2f}"
    return (
        f"{rec['product_id']} ({rec['name']}): {move}, elasticity "
        f"{'n/a' if e is None else f'{e:.2f}'}; shaded: allowed range"
    )


def plot_curves(rec: dict) -> Figure:
    """A product's demand and profit curves, the allowed range shaded, the chosen price marked."""
    fig, (units_ax, profit_ax) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
    _draw_curves(units_ax, profit_ax, rec)
    fig.suptitle(_curve_title(rec))
    return fig


def plot_changes(recs: pl.DataFrame) -> Figure:
    """Histogram of the recommended price changes, with how many products were kept or held."""
    changes = price_changes(recs)
    counts = dict(recs.group_by("action").len().iter_rows())
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    if changes.size:
        # One bar per percentage point of change.
        edges = np.arange(np.floor(changes.min()), np.ceil(changes.max()) + 1.0)
        ax.hist(changes, bins=edges if edges.size > 1 else 1, color="tab:orange")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("recommended change (% of the current price)")
    ax.set_ylabel("products")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    summary = ", ".join(f"{counts.get(a, 0)} {a}" for a in ACTIONS)
    ax.set_title(f"Price changes: {summary}")
    ax.grid(alpha=0.3)
    return fig


def _draw_history(ax: Axes, history: pl.DataFrame, forecast: pl.DataFrame) -> None:
    ax.plot(history["ds"], history["units"], color="black", linewidth=1, label="units sold")
    out = history.filter(pl.col("stockout"))
    ax.scatter(
        out["ds"], out["units"], color="tab:red", s=12, label="stockout (censored)", zorder=3
    )
    if not forecast.is_empty():
        ax.plot(forecast["ds"], forecast["units_mean"], color="tab:blue", label="forecast")
        ax.fill_between(
            forecast["ds"], forecast["units_p10"], forecast["units_p90"],
            color="tab:blue", alpha=0.2, label="forecast p10-p90",
        )  # fmt: skip
    ax.set_ylabel("units per day")
    ax.set_title(f"Last {history.height} days of sales, and the forecast at the recommended price")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)


def plot_product(rec: dict, history: pl.DataFrame, forecast: pl.DataFrame) -> Figure:
    """One product: recent daily sales with the latest forecast band, and its price curves."""
    fig = plt.figure(figsize=(11, 7.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.1])
    _draw_history(top.subplots(), history, forecast)
    units_ax, profit_ax = bottom.subplots(1, 2)
    _draw_curves(units_ax, profit_ax, rec)
    fig.suptitle(_curve_title(rec))
    return fig


# ------------------------------------------------------------------------------- output


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes; the figure is closed (matplotlib keeps open ones alive)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def reports_dir(path: str | Path) -> Path:
    """`reports/` next to the warehouse file."""
    return Path(path).parent / "reports"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _pick(recs: pl.DataFrame, product_id: str | None) -> dict:
    """The product to draw: the one asked for, else the largest expected profit uplift."""
    if product_id is None:
        return recs.sort("profit_uplift", descending=True, nulls_last=True).row(0, named=True)
    match = recs.filter(pl.col("product_id") == product_id)
    if match.is_empty():
        raise ReportError(f"product {product_id!r} has no recommendation in the latest run")
    return match.row(0, named=True)


def image_tag(fig: Figure, alt: str) -> str:
    """An <img> element with the figure embedded as a PNG (the page needs no other file)."""
    data = base64.b64encode(figure_png(fig)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def html_table(frame: pl.DataFrame) -> str:
    """A frame as an HTML table (floats with thousands separators and two decimals)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _cell(value: object) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def _backtest_section(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return (
            "<p>No forecast has actual sales yet. Forecasts are compared once the sales of their "
            "days are loaded; to look back now, replay a past night with "
            "<code>pricing nightly --as-of YYYY-MM-DD</code>.</p>"
        )
    return image_tag(plot_backtest(frame), "forecast against actuals") + (
        f"<p>{frame.height} product-days, WAPE {wape(frame):.1%} (stockout days left out; "
        "forecasts moved to the price actually paid).</p>"
    )


def report_html(recs: pl.DataFrame, frame: pl.DataFrame, rec: dict) -> str:
    """The whole report page: summary, forecast against actuals, one product's curves, changes."""
    as_of = recs["as_of"][0]
    largest = recs.sort(pl.col("profit_uplift").abs(), descending=True, nulls_last=True).head(10)
    columns = ["product_id", "action", "current_price", "recommended_price", "profit_uplift"]
    sections = [
        f"<h1>Pricing report for {as_of}</h1>",
        f"<p>{recs.height} products, expected profit uplift over the horizon "
        f"{recs['profit_uplift'].fill_null(0).sum():,.2f}.</p>",
        "<h2>Forecast against actuals</h2>",
        _backtest_section(frame),
        f"<h2>Demand and profit curve: {html.escape(rec['product_id'])}</h2>",
        image_tag(plot_curves(rec), "demand and profit curves"),
        f"<p>{html.escape(rec['reason'])}</p>",
        "<h2>Distribution of price changes</h2>",
        image_tag(plot_changes(recs), "distribution of price changes"),
        "<h3>Holds by reason</h3>",
        html_table(hold_reasons(recs)),
        "<h3>Largest expected profit changes</h3>",
        html_table(largest.select(columns)),
    ]
    style = "body{font-family:sans-serif;max-width:960px;margin:2em auto}td,th{padding:2px 8px}"
    body = "\n".join(sections)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Pricing report {as_of}"
        f"</title><style>{style}</style></head><body>{body}</body></html>"
    )


def write_report(
    path: str | Path, out_dir: Path | None = None, product_id: str | None = None
) -> Path:
    """Write the HTML report of the latest nightly run; return its path.

    It reads the analysts' snapshot (`warehouse.reading_path`), so it never waits for a nightly
    run that is writing the warehouse.

    Args:
        path: the warehouse file.
        out_dir: folder to write to (default `reports/` next to the warehouse).
        product_id: the product whose curves are drawn (default: the largest expected uplift).

    Raises:
        ReportError: no nightly run yet, or the product has no recommendation.
    """
    source = warehouse.reading_path(path)
    recs = latest_recommendations(source)
    page = report_html(recs, backtest(source), _pick(recs, product_id))
    folder = out_dir or reports_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"report-{recs['as_of'][0]}.html"
    target.write_text(page, encoding="utf-8")
    return target


def write_product_plot(
    path: str | Path, product_id: str, out: Path | None = None, days: int = 120
) -> Path:
    """Write one product's PNG (recent sales, forecast, price curves); return its path.

    Reads the analysts' snapshot, as `write_report` does.

    Raises:
        ReportError: no nightly run yet, or the product has no recommendation.
    """
    source = warehouse.reading_path(path)
    rec = _pick(latest_recommendations(source), product_id)
    history = warehouse.run_named_query(source, "product_sales_history", [product_id]).tail(days)
    forecast = warehouse.run_named_query(source, "product_latest_forecast", [product_id])
    target = out or reports_dir(path) / f"{_safe_name(product_id)}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(figure_png(plot_product(rec, history, forecast)))
    return target
