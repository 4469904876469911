"""A night's counts, its one-line message, held products by reason and the markdown summary.

Pure functions of the recommendations frame: the flows record and publish them, the CLI prints
them, `pricing report` shows them. Nothing here draws (no matplotlib) or touches storage.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipeline.contract import ACTION_HOLD, CHANGE_ACTIONS


def counts_of(recs: pl.DataFrame, n_trained: int, n_data_issues: int = 0) -> dict:
    """The counts a nightly run records in `runs` and returns: products, changes, holds, uplift."""
    return {
        "n_products": recs.height,
        "n_trained": n_trained,
        "n_recommendations": recs.height,
        "n_changes": recs.filter(pl.col("action").is_in(list(CHANGE_ACTIONS))).height,
        "n_holds": recs.filter(pl.col("action") == ACTION_HOLD).height,
        "n_data_issues": n_data_issues,
        "expected_profit_uplift": float(recs["profit_uplift"].fill_null(0).sum()),
    }


def one_line(counts: dict) -> str:
    """`counts` as the run's one-line message."""
    return (
        f"{counts['n_products']} products priced: {counts['n_changes']} changes, "
        f"{counts['n_holds']} holds, expected profit uplift {counts['expected_profit_uplift']:,.2f}"
    )


def hold_reasons(recs: pl.DataFrame) -> pl.DataFrame:
    """Held products counted by reason: `why` (e.g. "cold start") and `products`, most first."""
    # Reasons read "hold 4.99: cold start: 30 days ..." or "hold 4.99: forecast lost to
    # seasonal-naive in the backtest (WAPE ...); ...": the reason is the first clause after the
    # price, cut before any figures, so that products with the same reason group together.
    why = pl.col("reason").str.extract(r"^hold [^:]+: ([^:;(]+)", 1).str.strip_chars()
    return (
        recs.filter(pl.col("action") == ACTION_HOLD)
        .group_by(why.fill_null("other").alias("why"))
        .agg(pl.len().alias("products"))
        .sort(["products", "why"], descending=[True, False])
    )


def summary_markdown(
    recs: pl.DataFrame, counts: dict, as_of: dt.date, stages: dict[str, float]
) -> str:
    """The run's markdown summary: counts, expected uplift by direction, holds, stage times."""
    by_action = (
        recs.group_by("action")
        .agg(pl.len().alias("products"), pl.col("profit_uplift").fill_null(0).sum().alias("uplift"))
        .sort("action")
    )
    lines = [f"# Nightly pricing for {as_of}", "", one_line(counts), ""]
    lines += ["| action | products | expected profit uplift |", "|---|---:|---:|"]
    lines += [
        f"| {row['action']} | {row['products']} | {row['uplift']:,.2f} |"
        for row in by_action.iter_rows(named=True)
    ]
    lines += ["", "| hold reason | products |", "|---|---:|"]
    lines += [f"| {r['why']} | {r['products']} |" for r in hold_reasons(recs).iter_rows(named=True)]
    lines += ["", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in stages.items()]
    return "\n".join(lines)


def largest_changes(recs: pl.DataFrame, n: int = 20) -> pl.DataFrame:
    """The `n` recommendations with the largest expected profit change, for the run's artefact."""
    top = recs.sort(pl.col("profit_uplift").abs(), descending=True).head(n)
    return top.select("product_id", "current_price", "recommended_price", "profit_uplift", "reason")
