"""What the `pricing` command prints: its own lines, not its frameworks' start-up and log noise.

Quiet is the default when `pricing` runs as a program; `pricing --verbose ...` (or
`PRICING_VERBOSE=1`) leaves TensorFlow and Prefect to print as they always do. Quiet means:

- **TensorFlow's start-up lines** ("Could not find cuda drivers on your machine", the absl banner
  "All log messages before absl::InitializeLog() is called are written to STDERR", oneDNN's
  notice) are written by C++ code straight to file descriptor 2 while TensorFlow is imported,
  before Python logging exists; `TF_CPP_MIN_LOG_LEVEL` silences only some of them since TF 2.19
  (tensorflow/tensorflow#100442). `load_tensorflow` imports the model package (and with it
  TensorFlow) with descriptor 2 pointed at /dev/null for the import only; commands that train or
  forecast call it first. `CUDA_VISIBLE_DEVICES` is left alone: a GPU is still found and used.
- **Prefect's console** shows nothing: a handler of ours on the root logger prints only the records
  logged by this package's own code (`pipeline/`, `flows/`: training progress, lock waits, the
  run's one-line result), as plain lines on stderr. Prefect leaves a root logger that already has
  a handler alone (`prefect.logging.configuration.setup_logging`), and
  `PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=CRITICAL` quiets its console handler where it is
  installed anyway. The API handlers are untouched, so every run's full log, Prefect's INFO lines
  included, is still kept with the run in Prefect (`prefect flow-run logs ID`, or the UI).
- **Python warnings** from libraries are not shown.

An error still prints its one line (pipeline/cli.py); `--debug` adds the traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

# Records whose source file lies under these folders are this package's own lines.
_OWN_FOLDERS = tuple(
    str(Path(__file__).resolve().parent.parent / name) + os.sep for name in ("pipeline", "flows")
)
_QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
}
_quiet = False


class OwnLinesHandler(logging.Handler):
    """Print this package's own log records, message only, on the current stderr.

    Installed on the root logger, it sees every record that propagates there; records logged from
    other code (Prefect's engine, libraries) are dropped.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(message)s"))

    def filter(self, record: logging.LogRecord) -> bool:
        """Only records whose call site is in this package's own code."""
        return record.pathname.startswith(_OWN_FOLDERS) and super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        """Write the message (warnings and errors prefixed with their level) to stderr."""
        try:
            text = self.format(record)
            if record.levelno >= logging.WARNING:
                text = f"{record.levelname.lower()}: {text}"
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def configure(verbose: bool) -> None:
    """Set up the command's output; call once, before Prefect or TensorFlow is imported.

    Args:
        verbose: leave the frameworks' own output as it is (nothing is changed).
    """
    global _quiet
    if verbose or _quiet:
        return
    _quiet = True
    for name, value in _QUIET_ENV.items():
        os.environ.setdefault(name, value)
    root = logging.getLogger()
    if not any(isinstance(handler, OwnLinesHandler) for handler in root.handlers):
        root.addHandler(OwnLinesHandler())
    warnings.simplefilter("ignore")


@contextlib.contextmanager
def _descriptor_2_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the body (C++ code writes there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_tensorflow() -> None:
    """Import the model package, and TensorFlow with it, without its start-up lines when quiet.

    Call before work that trains or forecasts, from the main thread and before other threads
    print: while TensorFlow is imported, anything written to stderr is lost. An import error
    still surfaces (raised after stderr is restored).
    """
    if not _quiet or "pipeline.model" in sys.modules:
        importlib.import_module("pipeline.model")
        return
    with _descriptor_2_silenced():
        importlib.import_module("pipeline.model")


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """A text bar of `done` out of `total`, `width` characters inside brackets: `[#####.....]`."""
    filled = round(width * min(done, total) / max(total, 1))
    return f"[{'#' * filled}{'.' * (width - filled)}]"
