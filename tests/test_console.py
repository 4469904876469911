"""`pricing` prints its own lines only (pipeline/console.py); `--verbose` shows the frameworks'.

The end-to-end tests run the command as the program in a subprocess, without a Prefect server, as
a first-time user would: TensorFlow's start-up lines and Prefect's logs must not reach the
terminal, the command's own results and progress must.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import console
from tests import processes as proc

# What the frameworks print when left alone: Prefect's log format, absl's (TensorFlow's C++ side)
# and the start-up notices.
FRAMEWORK = re.compile(
    r"^\d\d:\d\d:\d\d\.\d{3} \||^[IWEF]\d{4} |absl::InitializeLog|oneDNN|cuda|CUDA|"
    r"tensorflow|Starting temporary server|Finished in state|Beginning flow run"
)
# The command's own progress on stderr: the flows' training, shard and result lines.
PROGRESS = re.compile(r"^(shard \d+/\d+: |training: |\d+ products priced: )")


def own_record(path: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("prefect.task_runs", level, path, 1, "epoch %d", (3,), None)


def test_only_this_packages_records_are_printed(capsys: pytest.CaptureFixture[str]) -> None:
    handler = console.OwnLinesHandler()
    ours = str(Path(console.__file__).resolve().parent.parent / "flows" / "nightly.py")
    theirs = "/usr/lib/python3/site-packages/prefect/task_engine.py"
    for record in (own_record(ours), own_record(theirs), own_record(ours, logging.WARNING)):
        handler.handle(record)
    assert capsys.readouterr().err.splitlines() == ["epoch 3", "warning: epoch 3"]


def run_pricing(args: list[str], tag: str, api_url: str | None = None) -> tuple[str, str]:
    env = proc.cli_env({proc.TAG_ENV: tag}, api_url=api_url)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=proc.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert proc.left_running(tag) == []
    return done.stdout, done.stderr


@pytest.mark.slow
def test_demo_prints_its_own_lines_only_and_verbose_adds_the_frameworks(
    tmp_path: Path, prefect_harness: None
) -> None:
    path = tmp_path / "pricing.duckdb"
    demo = ["demo", "--products", "6", "--days", "120", "--epochs", "1", "--warehouse", str(path)]
    stdout, stderr = run_pricing(demo, f"quiet-{tmp_path.name}")
    noise = [line for line in (stdout + stderr).splitlines() if FRAMEWORK.search(line)]
    assert noise == []
    assert stdout.startswith("generating 6 products x 120 days (seed 0) ...\n")
    assert "nightly run " in stdout and "profit capture" in stdout
    progress = stderr.splitlines()
    assert progress and all(PROGRESS.match(line) for line in progress), stderr
    assert any(line.startswith("shard 1/1: epoch 1/1") for line in progress)

    from prefect.settings import PREFECT_API_URL

    nightly = ["--verbose", "nightly", "--epochs", "1", "--warehouse", str(path)]
    _, loud = run_pricing(nightly, f"verbose-{tmp_path.name}", str(PREFECT_API_URL.value()))
    assert "Beginning flow run" in loud and "Finished in state Completed()" in loud
