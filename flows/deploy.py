"""Deployments: the scheduled nightly run and the on-demand retrain, served from one process.

`pricing serve` calls `serve_deployments`, which registers both deployments with the Prefect API
(a server at $PREFECT_API_URL, or Prefect's temporary local one) and runs their flow runs in this
process until it is stopped:

- `nightly/scheduled`: the nightly flow on `run.nightly_cron` (default 02:00) in `run.timezone`;
- `retrain/on-demand`: the retrain flow, no schedule; start it with
  `prefect deployment run 'retrain/on-demand' --param category=snacks`.

Each deployment runs at most once at a time (a deployment concurrency limit of 1 that queues the
next run), and the process runs one flow run at a time. Across processes and machines, the
warehouse lock in `pipeline.runlock` keeps a nightly and a retrain from writing the same warehouse
at once. Teams with work pools and workers use `prefect.yaml` instead (`prefect deploy --all`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from flows.nightly import nightly, retrain
from pipeline.config import Settings

NIGHTLY_DEPLOYMENT = "scheduled"
RETRAIN_DEPLOYMENT = "on-demand"
TAGS = ["pricing"]


def one_at_a_time() -> ConcurrencyLimitConfig:
    """At most one run of a deployment at once; a run started meanwhile waits in the queue."""
    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def _parameters(settings: Settings, config_file: Path | None) -> dict[str, Any]:
    # Absolute paths: flow runs may start in another working directory than `pricing serve`.
    params: dict[str, Any] = {"warehouse_path": str(settings.warehouse.resolve())}
    if config_file is not None:
        params["config_file"] = str(config_file.resolve())
    return params


def build_deployments(settings: Settings, config_file: Path | None) -> list[RunnerDeployment]:
    """The nightly (on its cron schedule) and the retrain (no schedule) deployments.

    Args:
        settings: where the warehouse is and `[run]` nightly_cron and timezone.
        config_file: the TOML settings the flow runs read (passed as their default parameter).

    Returns:
        [nightly, retrain], ready for `prefect.serve` (or `.apply()` to only register them).
    """
    # Module paths, not file paths: the installed package is found from any working directory.
    params = _parameters(settings, config_file)
    schedule = Cron(settings.run.nightly_cron, timezone=settings.run.timezone)
    nightly_deployment = nightly.to_deployment(
        NIGHTLY_DEPLOYMENT,
        schedules=[schedule],
        concurrency_limit=one_at_a_time(),
        parameters=params,
        description="Forecast, optimise and write tonight's prices; retrains stale models.",
        tags=TAGS,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    retrain_deployment = retrain.to_deployment(
        RETRAIN_DEPLOYMENT,
        concurrency_limit=one_at_a_time(),
        parameters=params,
        description="Retrain models by hand: pass category or product_ids (neither = all).",
        tags=TAGS,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return [nightly_deployment, retrain_deployment]


def serve_deployments(settings: Settings, config_file: Path | None) -> None:
    """Register both deployments and run their flow runs here, one at a time, until stopped."""
    serve(*build_deployments(settings, config_file), limit=1)
