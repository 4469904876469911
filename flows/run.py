"""What every flow run shares: its settings, stage clock, warehouse lock and failure record.

Used by flows/nightly.py (the nightly and retrain flows); kept apart so the flows read as the
sequence of steps they are.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prefect.logging import get_run_logger

from pipeline import runlock, warehouse
from pipeline.config import Settings, load_settings
from pipeline.contract import RUN_FAILED
from pipeline.errors import UserError, first_line


class ShardsFailedError(UserError, RuntimeError):
    """Some training shards failed; the finished shards' models were registered.

    An operational failure (a worker out of memory, a lost Dask worker), not a bug: the message
    names the failed shard and its cause, and the next run trains only what is still missing.
    """


@dataclass
class StageClock:
    """Wall-clock seconds per stage of a run (read, train, forecast, optimise, write).

    A stage entered twice adds up, so interleaved work is charged to the stage it belongs to.
    """

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        """Time the body as (part of) `stage`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed

    def rounded(self) -> dict[str, float]:
        """The stages' seconds, rounded to milliseconds."""
        return {stage: round(seconds, 3) for stage, seconds in self.seconds.items()}


def json_text(value: Any) -> str:
    """`value` as stable JSON (sorted keys; dates and other objects as strings)."""
    return json.dumps(value, sort_keys=True, default=str)


def settings_for(
    warehouse_path: str | None,
    config_file: str | None,
    epochs: int | None,
    dask_address: str | None = None,
) -> Settings:
    """The run's settings: the config file's, with the flow's overrides (epochs, Dask address)."""
    settings = load_settings(
        Path(config_file) if config_file else None,
        Path(warehouse_path) if warehouse_path else None,
    )
    if epochs is not None:
        model_cfg = replace(
            settings.model, epochs=epochs, min_epochs=min(epochs, settings.model.min_epochs)
        )
        settings = replace(settings, model=model_cfg)
    if dask_address:
        settings = replace(settings, run=replace(settings.run, dask_address=dask_address))
    return settings


def run_params(settings: Settings, **values: Any) -> dict[str, Any]:
    """The run's parameters as recorded in `runs.parameters`, with where its shards trained."""
    run = settings.run
    return {**values, "dask_address": run.dask_address or None, "dask_workers": run.dask_workers}


@contextmanager
def warehouse_guard(
    path: str, flow_name: str, run_id: str, settings: Settings, params: dict
) -> Iterator[None]:
    """Hold the warehouse's run lock for the body, so a nightly and a retrain never interleave.

    A run that cannot get the lock within `run.lock_wait_s` is recorded as failed (best effort:
    the holder may keep DuckDB busy) and ends with the one-line message naming the holder.
    """
    logger = get_run_logger()

    def waiting(holder: str) -> None:
        logger.warning(
            "waiting up to %.0f s for %s to finish with %s", settings.run.lock_wait_s, holder, path
        )

    try:
        with runlock.warehouse_lock(path, flow_name, run_id, settings.run.lock_wait_s, waiting):
            yield
    except runlock.WarehouseBusyError as exc:
        with contextlib.suppress(Exception):
            warehouse.record_run_start(path, run_id, flow_name, None, params)
            warehouse.record_run_end(path, run_id, RUN_FAILED, message=str(exc)[:500])
        raise


@dataclass(frozen=True)
class RunState:
    """What every step of one run needs: where it writes, its id, settings and stage clock."""

    path: str
    run_id: str
    settings: Settings
    clock: StageClock = field(default_factory=StageClock)


def fail_run(run: RunState, exc: BaseException) -> None:
    """Mark the run failed with the first line of `exc` and its stage times (best effort)."""
    counts = {"stage_seconds": json_text(run.clock.rounded())}
    # The run's own failure is the one to report, not a failure to record it.
    with contextlib.suppress(Exception):
        warehouse.record_run_end(run.path, run.run_id, RUN_FAILED, counts, first_line(exc)[:500])
