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
from dataclasses import dataclass
from typing import Any

from prefect import Task, unmapped
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from pipeline.config import ModelConfig, RunConfig
from pipeline.features import Panel
from pipeline.forecast import ModelOutputs


@dataclass(frozen=True)
class ShardJob:
    """One training shard: its products' history, a label, and where its artefact goes."""

    name: str
    panel: Panel
    folder: str
    extra: dict[str, Any]


@dataclass(frozen=True)
class ShardResults:
    """What the shards produced.

    Attributes:
        finished: the jobs that trained, with their outputs, in job order.
        failures: one line per failed shard ("shard 2/3 (500 products, P0501..P1000): ...").
    """

    finished: list[tuple[ShardJob, ModelOutputs]]
    failures: list[str]

    @property
    def artefacts(self) -> dict[str, str]:
        """product_id -> artefact folder, for the products of the finished shards."""
        return {pid: job.folder for job, _ in self.finished for pid in job.panel.product_ids}


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
) -> ShardResults:
    """Train every shard on the configured runner; wait for all of them, failed or not.

    Args:
        train: the Prefect task that trains one shard, called as
            train(panel=, cfg=, folder=, shard=, **job.extra).
        jobs: the shards.
        cfg: the model settings every shard uses.
        run: orchestration settings (which runner).
        log: where progress lines go (shards and products done, elapsed, ETA).

    Returns:
        The finished shards' outputs and one line per failed shard.
    """
    if not jobs:
        return ShardResults([], [])
    params: dict[str, Any] = {
        "panel": [job.panel for job in jobs],
        "cfg": unmapped(cfg),
        "folder": [job.folder for job in jobs],
        "shard": [job.name for job in jobs],
    }
    for key in jobs[0].extra:
        params[key] = [job.extra[key] for job in jobs]
    with shard_runner(run) as runner:
        futures = list(runner.map(train, params))
        outcomes = _collect(futures, jobs, log)
    pairs = zip(jobs, outcomes, strict=True)
    finished = [(job, out) for job, out in pairs if not isinstance(out, str)]
    failures = [out for out in outcomes if isinstance(out, str)]
    return ShardResults(finished, failures)


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
            outcomes[n] = f"{describe(jobs[n], len(jobs), n)}: {_first_line(exc)}"
        products_done += len(jobs[n].panel.product_ids)
        elapsed = time.perf_counter() - started
        eta = elapsed / products_done * (total - products_done)
        log(
            f"training: {done}/{len(jobs)} shards, {products_done}/{total} products done "
            f"in {elapsed:.0f}s, ETA {eta:.0f}s"
        )
    return outcomes


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
