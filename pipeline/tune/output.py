"""What `pricing tune` shows: progress lines, the best `[model]` section, the JSON of `--out`."""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline.config import ModelConfig
from pipeline.console import progress_bar


def toml_value(value: Any) -> str:
    """A value as TOML writes it (strings quoted, booleans lower case, floats with a point)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)
    return str(value)


def changed_keys(cfg: ModelConfig) -> dict[str, Any]:
    """The `[model]` keys whose value differs from the default, in field order."""
    default = ModelConfig()
    return {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(ModelConfig)
        if getattr(cfg, f.name) != getattr(default, f.name)
    }


def score_text(score: float | None) -> str:
    """A WAPE as printed ("n/a" before any)."""
    return "n/a" if score is None else f"{score:.4f}"


def toml_section(
    cfg: ModelConfig, score: float | None, default: float | None, heading: list[str]
) -> str:
    """The best configuration as a `[model]` section for `--config`: only the keys that differ
    from the defaults, the scores in comments above it."""
    versus = ""
    if score is not None and default is not None and default > 0:
        versus = f" vs {score_text(default)} tuned from ({(score / default - 1) * 100:+.1f}%)"
    lines = [f"# {line}" for line in heading]
    lines.append(f"# median backtest WAPE {score_text(score)}{versus}")
    keys = changed_keys(cfg)
    if not keys:
        lines.append("# every key at its default")
    lines.append("[model]")
    lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def progress_line(
    done: int,
    total: int,
    record: dict[str, Any],
    best: float | None,
    seconds_left: float,
    seconds_total: float | None = None,
) -> str:
    """One line after each trial: a bar, the trials done, the trial, the best so far, time left.

    The study ends at its trials or at its deadline, whichever comes first, so with
    `seconds_total` (the study's whole time budget) the bar shows the larger of the two shares
    used: a study stopped by its clock fills it, whatever its count of trials was.
    """
    what = record["note"] or record["state"]
    if record["score"] is not None:
        what = f"WAPE {record['score']:.4f}"
    seconds = record["seconds"] or 0.0
    left = max(seconds_left, 0.0)
    share = done / max(total, 1)
    if seconds_total and seconds_total > 0:
        share = max(share, 1.0 - left / seconds_total)
    return (
        f"{progress_bar(round(1000 * share), 1000)} {done}/{total} trials | "
        f"trial {record['trial_number']}: {what} "
        f"({seconds:.0f}s) | best {score_text(best)} | {int(left // 60)}:{int(left % 60):02d} left"
    )


def study_json(
    name: str,
    category: str | None,
    product_ids: tuple[str, ...],
    records: list[dict[str, Any]],
    best: dict[str, Any] | None,
) -> dict[str, Any]:
    """A study in `--out`'s JSON: its sample, every trial and the best one."""
    default = next(
        (r["score"] for r in records if r["is_default"] and r["score"] is not None), None
    )
    return {
        "study": name,
        "category": category,
        "products": list(product_ids),
        "default_score": default,
        "best": best,
        "trials": records,
    }
