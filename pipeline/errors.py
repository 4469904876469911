"""Errors a user can cause, the one line that reports them, and the one retry helper.

Anything a user can get wrong (a missing file, a bad column, an unknown product id, a malformed
config, a locked warehouse) raises a subclass of `UserError` whose message is one line saying what
to do; the CLI prints exactly that line. Any other exception is a bug in this package: the CLI says
so, with a hint to report it, and shows the traceback with `--debug`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A problem the user caused and can fix; `str(error)` is one line that says how."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def named_first_line(exc: BaseException) -> str:
    """'TypeName: first line' of an exception (just the type's name when it has no message)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def retry(
    action: Callable[[], T],
    *,
    retry_on: Callable[[Exception], bool],
    timeout_s: float,
    on_timeout: Callable[[Exception], Exception],
    first_delay_s: float = 0.05,
    max_delay_s: float = 1.0,
) -> T:
    """Call `action` until it succeeds, waiting with exponential backoff between tries.

    Args:
        action: what to try.
        retry_on: whether an exception is worth another try (others propagate at once).
        timeout_s: give up once this many seconds have passed since the first try.
        on_timeout: the exception to raise, given the last one, when time runs out.
        first_delay_s: the first wait; each later one doubles, up to `max_delay_s`.

    Returns:
        What `action` returned.
    """
    deadline = time.monotonic() + timeout_s
    delay = first_delay_s
    while True:
        try:
            return action()
        except Exception as exc:
            if not retry_on(exc):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise on_timeout(exc) from None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, max_delay_s)
