"""Shared fixtures: a Prefect test harness for the whole session and tiny seeded worlds."""

from __future__ import annotations

import os

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
