"""Shared fixtures: a Prefect test harness for the whole session and tiny seeded worlds."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

# A cold Prefect server start on a 2-core CI machine can exceed the default 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's oneDNN CPU kernels order floating-point sums by their OpenMP thread count, which
# differs between this process and Dask's worker processes (Dask sets OMP_NUM_THREADS=1); a few
# Adam epochs grow those last bits into visibly different models. Tests compare runners exactly, so
# they use TensorFlow's own kernels. Set before TensorFlow starts; worker processes inherit it.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server and database for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield


# Holds a DuckDB write connection (the file lock a writing nightly run holds) until stdin closes.
_HOLD_WRITE_LOCK = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture()
def write_lock_holder() -> Callable[[Path], AbstractContextManager[None]]:
    """`with write_lock_holder(path):` another process holds the warehouse's write lock."""

    @contextmanager
    def hold(path: Path) -> Iterator[None]:
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_WRITE_LOCK, str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            yield
        finally:
            holder.communicate("", timeout=30)

    return hold
