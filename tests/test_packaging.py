"""`pip install .` gives a working `pricing`: the wheel carries the SQL files, and the installed
package (not this source tree) creates a warehouse and runs a small demo.

Offline: the wheel is built with this environment's setuptools (`--no-build-isolation`, which
the test extras pin) and installed without dependencies into a folder of its own; the commands
run with that folder on PYTHONPATH, from an empty working directory, so nothing is imported from
the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pipeline import warehouse as wh

ROOT = Path(__file__).resolve().parent.parent
# What a wheel is built from (copied, so the build leaves no build/ or egg-info in the checkout).
_SOURCES = ("pyproject.toml", "README.md", "pipeline", "flows", "sql")

pytestmark = pytest.mark.slow


def _pip(*args: str, cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _sql_files() -> set[str]:
    """The SQL files of the checkout, as paths inside the wheel (sql/views/x.sql)."""
    return {
        file.relative_to(ROOT).as_posix()
        for folder in ("migrations", "views", "queries")
        for file in (ROOT / "sql" / folder).glob("*.sql")
    }


def _copy_sources(folder: Path) -> None:
    """The files a wheel is built from, without caches, into `folder`."""
    folder.mkdir()
    for name in _SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, folder / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, folder / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as a wheel and installed into a folder; returns that folder."""
    base = tmp_path_factory.mktemp("packaging")
    source, dist, target = base / "source", base / "dist", base / "site"
    _copy_sources(source)
    offline = ("--no-deps", "--no-index")
    _pip("wheel", *offline, "--no-build-isolation", "-w", str(dist), ".", cwd=source)
    (wheel,) = dist.glob("pricing_pipeline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {file.split("/")[1] for file in _sql_files()} == {"migrations", "views", "queries"}
    assert _sql_files() <= names, f"missing from the wheel: {sorted(_sql_files() - names)}"
    assert {"sql/__init__.py", "pipeline/warehouse/__init__.py"} <= names
    _pip("install", *offline, "--target", str(target), str(wheel), cwd=base)
    return target


def _pricing(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `pricing` console script with only the installed package importable."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONPATH": str(site), "PREFECT_API_URL": PREFECT_API_URL.value()}
    env.pop("PRICING_WAREHOUSE", None)
    return subprocess.run(
        [str(site / "bin" / "pricing"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_the_wheel_carries_the_sql_files_and_runs_init_and_a_demo(
    installed: Path, tmp_path: Path, prefect_harness: None
) -> None:
    empty = tmp_path / "cwd"
    empty.mkdir()
    where = "import pipeline.warehouse as w, sql; print(w.__file__, sql.__file__)"
    origin = subprocess.run(
        [sys.executable, "-c", where],
        cwd=empty, env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert origin.returncode == 0, origin.stderr
    assert all(Path(file).is_relative_to(installed) for file in origin.stdout.split())

    path = tmp_path / "w.duckdb"
    init = _pricing(installed, empty, "init", "--warehouse", str(path))
    assert init.returncode == 0, init.stderr
    assert init.stdout.strip().startswith(
        f"warehouse {path}: schema version {wh.SCHEMA_VERSION} (001_core_tables"
    )
    demo = _pricing(
        installed, empty, "demo", "--products", "5", "--days", "120", "--epochs", "1",
        "--warehouse", str(path),
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "wrote 600 sales rows" in demo.stdout
    assert wh.read_recommendations(path).height == 5
