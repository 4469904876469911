"""Running the training shards of a flow: where they run, their progress, and their failures.

Shards train on the task runner chosen by `[run]` settings: in-process one at a time by default, on
a local Dask cluster of `dask_workers` processes, or on an existing Dask cluster at `dask_address`
(through prefect-dask's `DaskTaskRunner`). Whatever runs them, their results come back to the flow,
which stays the warehouse's only writer.

A shard that fails does not take the others with it: `run_shards` waits for every shard and returns
the finished shards' outputs beside one line per failed shard, so that the flow can register the
finished shards' models before it fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from prefect import Task, unmapped
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from pipeline.config import ModelConfig, RunConfig
from pipeline.errors import named_first_line
from pipeline.forecast import ModelOutputs
from pipeline.night import ShardJob


def shard_runner(run: RunConfig) -> TaskRunner[Any]:
    """The task runner training shards run on, as `[run]` settings choose it.

    `dask_address` connects to an existing cluster (its workers need this package installed);
    `dask_workers` starts a local cluster of that many single-threaded worker processes for the
    run; with neither, shards train one at a time in this process (TensorFlow already uses every
    core for one shard, so running two at once here would only compete for them).
    """
    if not run.dask_address and not run.dask_workers:
        return ThreadPoolTaskRunner(max_workers=1)
    # Imported here: distributed takes a second to import and most runs do not need it.
    from prefect_dask import DaskTaskRunner

    if run.dask_address:
        return DaskTaskRunner(address=run.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": run.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )


def describe(job: ShardJob, total: int, position: int) -> str:
    """A shard as a failure message names it: position, size and first and last product."""
    ids = job.panel.product_ids
    return f"shard {position + 1}/{total} ({len(ids)} products, {ids[0]}..{ids[-1]})"


def run_shards(
    train: Task[..., ModelOutputs],
    jobs: Sequence[ShardJob],
    cfg: ModelConfig,
    run: RunConfig,
    log: Callable[[str], None],
) -> tuple[list[tuple[ShardJob, ModelOutputs]], list[str]]:
    """Train every shard on the configured runner; wait for all of them, failed or not.

    Args:
        train: the Prefect task that trains one shard, called as
            train(panel=, cfg=, folder=, shard=, groups=, pool=).
        jobs: the shards.
        cfg: the model settings every shard uses.
        run: orchestration settings (which runner).
        log: where progress lines go (shards and products done, elapsed, ETA).

    Returns:
        The finished jobs with their outputs, in job order, and one line per failed shard
        ("shard 2/3 (500 products, P0501..P1000): MemoryError: ...").
    """
    if not jobs:
        return [], []
    params: dict[str, Any] = {
        "panel": [job.panel for job in jobs],
        "cfg": unmapped(cfg),
        "folder": [job.folder for job in jobs],
        "shard": [job.name for job in jobs],
        "groups": [job.groups for job in jobs],
        "pool": [job.pool for job in jobs],
    }
    with shard_runner(run) as runner:
        futures = list(runner.map(train, params))
        outcomes = _collect(futures, jobs, log)
    pairs = zip(jobs, outcomes, strict=True)
    finished = [(job, out) for job, out in pairs if not isinstance(out, str)]
    failures = [out for out in outcomes if isinstance(out, str)]
    return finished, failures


def _collect(
    futures: list[PrefectFuture[ModelOutputs]],
    jobs: Sequence[ShardJob],
    log: Callable[[str], None],
) -> list[ModelOutputs | str]:
    """Each shard's outputs, or its one-line failure, in job order; logs progress as they end."""
    position = {future.task_run_id: n for n, future in enumerate(futures)}
    outcomes: list[ModelOutputs | str] = ["not run"] * len(futures)
    total = sum(len(job.panel.product_ids) for job in jobs)
    started, products_done = time.perf_counter(), 0
    for done, future in enumerate(as_completed(futures), start=1):
        n = position[future.task_run_id]
        try:
            outcomes[n] = future.result()
        except Exception as exc:
            outcomes[n] = f"{describe(jobs[n], len(jobs), n)}: {named_first_line(exc)}"
        products_done += len(jobs[n].panel.product_ids)
        elapsed = time.perf_counter() - started
        eta = elapsed / products_done * (total - products_done)
        log(
            f"training: {done}/{len(jobs)} shards, {products_done}/{total} products done "
            f"in {elapsed:.0f}s, ETA {eta:.0f}s"
        )
    return outcomes
