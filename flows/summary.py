"""A finished nightly run's counts, its one-line summary and its Prefect artefacts."""

from __future__ import annotations

import datetime as dt

import polars as pl
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pipeline.report import hold_reasons


def counts_of(recs: pl.DataFrame, n_trained: int, n_data_issues: int = 0) -> dict:
    """The counts a nightly run records in `runs` and returns: products, changes, holds, uplift."""
    return {
        "n_products": recs.height,
        "n_trained": n_trained,
        "n_recommendations": recs.height,
        "n_changes": recs.filter(pl.col("action").is_in(["increase", "decrease"])).height,
        "n_holds": recs.filter(pl.col("action") == "hold").height,
        "n_data_issues": n_data_issues,
        "expected_profit_uplift": float(recs["profit_uplift"].fill_null(0).sum()),
    }


def one_line(counts: dict) -> str:
    """`counts` as the run's one-line message."""
    return (
        f"{counts['n_products']} products priced: {counts['n_changes']} changes, "
        f"{counts['n_holds']} holds, expected profit uplift {counts['expected_profit_uplift']:,.2f}"
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


def publish(recs: pl.DataFrame, counts: dict, as_of: dt.date, stages: dict[str, float]) -> None:
    """Prefect artefacts: a markdown summary and the largest changes."""
    create_markdown_artifact(summary_markdown(recs, counts, as_of, stages), key="nightly-summary")
    top = recs.sort(pl.col("profit_uplift").abs(), descending=True).head(20)
    table = top.select(
        "product_id", "current_price", "recommended_price", "profit_uplift", "reason"
    )
    create_table_artifact(table.to_dicts(), key="nightly-largest-changes")
