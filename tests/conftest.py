"""Shared fixtures: a Prefect test harness for the whole session and tiny seeded worlds, and the
reliability ledger: what the reliability tests tried, printed at the end of the session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
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

# Prefect's logging (set up when `prefect.main` is first imported) and TensorFlow's Python logger
# (with absl's) bind their handlers to the sys.stderr of the moment they are set up. Set them up
# now, while sys.stderr is pytest's session-long capture stream: first set up inside a test's
# `CliRunner` (a command importing them lazily), they would keep that runner's stream, closed
# once the test ends, and a later log record (the Prefect harness draining its logs at the end of
# the session, say) fails on the closed file: "I/O operation on closed file", "lost sys.stderr".
import prefect.main  # noqa: F401
import pytest
from tensorflow.python.platform import tf_logging

tf_logging.get_logger()


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts the Prefect test server slow, so the fast part never does."""
    for item in items:
        if "prefect_harness" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server and database for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield


@pytest.fixture(scope="session")
def baseline(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> dict[str, object]:
    """A tiny world with one completed night, shared read-only by the reliability tests
    (tests/baseline.py; each test copies it)."""
    from tests.baseline import build_baseline

    return build_baseline(tmp_path_factory.mktemp("baseline") / "pricing.duckdb", LEDGER)


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


class ReliabilityLedger:
    """What the reliability tests tried, counted as they run (in any order, any subset).

    tests/test_fuzz_inputs.py counts generated files per damage kind; tests/test_reliability.py
    and tests/test_processes.py count kill points, processes left running after the kills, and
    rows lost or duplicated. `pytest_terminal_summary` prints it after the run.
    """

    def __init__(self) -> None:
        self.files: Counter[tuple[str, str]] = Counter()  # (damage kind, outcome) -> files
        self.bad_input_kinds: set[str] = set()
        self.kill_points: set[str] = set()
        self.orphans = 0
        self.rows_lost_or_duplicated = 0
        self.checked_nights = 0

    def fuzzed(self, kind: str, outcome: str) -> None:
        """One generated file of `kind` was 'loaded' exactly or 'refused' in one line."""
        self.files[(kind, outcome)] += 1

    def killed(self, point: str, orphans: int) -> None:
        """A process was SIGKILLed at `point`; `orphans` of its processes outlived it."""
        self.kill_points.add(point)
        self.orphans += orphans

    def nights_checked(self, lost_or_duplicated: int) -> None:
        """A warehouse's nights were counted row by row after a fault."""
        self.checked_nights += 1
        self.rows_lost_or_duplicated += lost_or_duplicated

    def report(self) -> list[str]:
        """The lines printed after the run (none when no reliability test ran)."""
        lines = []
        if self.files:
            kinds = sorted({kind for kind, _ in self.files})
            per_kind = ", ".join(
                f"{kind} {self.files[(kind, 'loaded')]}+{self.files[(kind, 'refused')]}"
                for kind in kinds
            )
            total = sum(self.files.values())
            lines.append(
                f"generated files tried: {total} in {len(kinds)} damage kinds "
                f"(loaded exactly + refused in one line: {per_kind})"
            )
        fuzzed = {kind for kind, _ in self.files}
        if self.bad_input_kinds or fuzzed:
            lines.append(
                f"bad-input kinds: {len(self.bad_input_kinds | fuzzed)} ({len(fuzzed)} damages of "
                f"generated files, {len(self.bad_input_kinds)} written into the tables or frames)"
            )
        if self.kill_points:
            lines.append(
                f"kill points: {len(self.kill_points)} ({', '.join(sorted(self.kill_points))}); "
                f"orphaned processes after all kills: {self.orphans}"
            )
        if self.checked_nights:
            lines.append(
                f"rows lost or duplicated: {self.rows_lost_or_duplicated} "
                f"(warehouses checked after faults: {self.checked_nights})"
            )
        return lines


LEDGER = ReliabilityLedger()


@pytest.fixture(scope="session")
def reliability_ledger() -> ReliabilityLedger:
    """The session's reliability ledger (see ReliabilityLedger)."""
    return LEDGER


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = LEDGER.report()
    if lines:
        terminalreporter.write_sep("-", "reliability suite")
        for line in lines:
            terminalreporter.write_line(line)
