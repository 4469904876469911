"""The time budget of `pricing tune`: when a trial may start, and when it must stop.

The budget is hard. A trial starts only while there is time for the quickest first fold (before
one finished: the quickest first epoch, its setup included) seen so far. While it trains, it is
stopped between epochs when its next epoch would end past the deadline, or when, at its maximum
epochs, it could not finish its remaining folds in time (measured from its own epochs so far:
the work would be lost anyway). The deadline itself keeps a reserve before the end of the budget
for writing the results and exiting (`deadline_of`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

# Epochs of a fold seen before its pace is trusted to project the rest (the first one also
# builds and traces the model).
_PACE_EPOCHS = 3


def deadline_of(minutes: float, started: float) -> float:
    """The trials' deadline (`time.monotonic()` seconds) for a budget of `minutes` from `started`:
    5% of the budget, at most 15 s, is kept for writing the results and exiting."""
    return started + minutes * 60 - min(15.0, minutes * 3)


class OutOfTime(Exception):
    """A trial stopped because it would run past the deadline; the message says which way."""


@dataclass
class Budget:
    """The time a study may use: its deadline, and the least a trial needs to show anything.

    Attributes:
        deadline: when the study must end (`time.monotonic()` seconds).
        first_epoch: the fewest seconds a trial took from its start to the end of its first
            epoch (None before one did).
        first_fold: the fewest seconds a trial took from its start to the end of its first
            fold (None before one did): with less time left no trial starts.
    """

    deadline: float
    first_epoch: float | None = None
    first_fold: float | None = None

    def left(self) -> float:
        """Seconds left (negative once past)."""
        return self.deadline - time.monotonic()

    def can_start(self) -> bool:
        """Whether a new trial could finish its first fold (or, before any fold finished, its
        first epoch) before the deadline: a trial stopped before then tells the search nothing."""
        return self.left() > (self.first_fold or self.first_epoch or 0.0)


class TrialClock:
    """Times one trial's epochs and folds against a budget (its `epoch` is a training progress
    callback, `fold_done` is called after each fold)."""

    def __init__(self, budget: Budget, folds: int) -> None:
        self.budget, self.folds_left = budget, folds
        self.started = self.fold_started = self.last = time.monotonic()
        self.first_epoch_end: float | None = None

    def fold_done(self) -> None:
        """A fold finished; the next one starts now."""
        now = time.monotonic()
        if self.fold_started == self.started:  # the trial's first fold
            self.budget.first_fold = _least(self.budget.first_fold, now - self.started)
        self.folds_left -= 1
        self.fold_started = self.last = now

    def epoch(self, epoch: int, epochs: int, loss: float, active: int) -> None:
        """After each epoch: raise `OutOfTime` if the trial cannot go on within the budget."""
        now = time.monotonic()
        took, self.last = now - self.last, now
        if epoch == 1:
            self.first_epoch_end = now
            if self.fold_started == self.started:  # the trial's first epoch
                self.budget.first_epoch = _least(self.budget.first_epoch, now - self.started)
        if epoch < epochs and now + took > self.budget.deadline:
            raise OutOfTime("out of time")
        if epoch >= _PACE_EPOCHS and self.first_epoch_end is not None:
            pace = (now - self.first_epoch_end) / (epoch - 1)
            setup = self.first_epoch_end - self.fold_started
            later = (self.folds_left - 1) * (setup + (epochs - 1) * pace)
            if now + (epochs - epoch) * pace + later > self.budget.deadline:
                raise OutOfTime("would not finish in time")


def _least(known: float | None, seconds: float) -> float:
    """The smaller of a recorded minimum (None: none yet) and a new measure."""
    return seconds if known is None else min(known, seconds)
