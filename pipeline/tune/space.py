"""The search space of `pricing tune`: which `[model]` options a trial varies, and over what.

The architecture options (`cell`, `layers`, `dropout`, `decoder`, `local_level_days`) join the
search only where `ModelConfig` has them, so the space follows the forecaster as it grows. Every
range is widened to hold the configuration the study starts from (its trial 0), so that
configuration is always a point of the space. Floats are rounded (learning rate to 3 significant
digits, dropout to a multiple of 0.05) so the configuration a trial scores is exactly the one it
prints.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.config import ModelConfig


class Suggests(Protocol):
    """What a dimension needs of a trial (an `optuna.Trial`)."""

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = ...) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = ..., log: bool = ...
    ) -> float: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class Dimension:
    """One option of `ModelConfig` and the values a trial may give it.

    Attributes:
        name: the `[model]` key.
        kind: "int", "float" or "choice".
        low, high: bounds of an int or float (inclusive).
        log: sample on a log scale.
        step: a float's grid (None: continuous, rounded to 3 significant digits).
        choices: the values of a "choice".
    """

    name: str
    kind: str
    low: float = 0
    high: float = 0
    log: bool = False
    step: float | None = None
    choices: tuple = ()

    def widened(self, value: Any) -> Dimension:
        """This dimension, stretched (or with a choice added) to hold `value`."""
        if self.kind == "choice":
            choices = self.choices if value in self.choices else (*self.choices, value)
            return dataclasses.replace(self, choices=choices)
        step = self.step
        if step is not None and rounded(value, step) != value:
            step = None  # off the grid: searched continuously, so it stays a point of the space
        low, high = min(self.low, value), max(self.high, value)
        return dataclasses.replace(self, low=low, high=high, step=step)

    def suggest(self, trial: Suggests) -> Any:
        """The trial's value of this option."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        value = trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)
        return rounded(value, self.step)


def rounded(value: float, step: float | None) -> float:
    """A float as the configuration keeps it: on its grid, or to 3 significant digits."""
    if step is not None:
        return round(round(value / step) * step, 6)
    return float(f"{value:.3g}") if value != 0 and math.isfinite(value) else value


# The options searched, in `[model]` order; an option ModelConfig lacks is left out.
_OPTIONS = (
    Dimension("cell", "choice", choices=("lstm", "gru")),
    Dimension("layers", "int", low=1, high=3),
    Dimension("dropout", "float", low=0.0, high=0.5, step=0.05),
    Dimension("decoder", "choice", choices=("head", "seq2seq")),
    Dimension("local_level_days", "choice", choices=(0, 28, 56)),
    Dimension("hidden_units", "int", low=8, high=128, log=True),
    Dimension("learning_rate", "float", low=0.003, high=0.2, log=True),
    Dimension("segment_days", "choice", choices=(64, 128, 256)),
)


def model_options() -> set[str]:
    """The keys `ModelConfig` has today."""
    return {field.name for field in dataclasses.fields(ModelConfig)}


def search_space(base: ModelConfig, max_epochs: int) -> tuple[Dimension, ...]:
    """The dimensions searched from `base`, each holding `base`'s own value.

    Args:
        base: the configuration tuned from (the study's trial 0).
        max_epochs: the most epochs a trial may train; the least is a quarter of it.
    """
    known = model_options()
    epochs = Dimension("epochs", "int", low=max(1, max_epochs // 4), high=max_epochs)
    dims = [dim for dim in (*_OPTIONS, epochs) if dim.name in known]
    return tuple(dim.widened(getattr(base, dim.name)) for dim in dims)


def base_params(base: ModelConfig, space: tuple[Dimension, ...]) -> dict[str, Any]:
    """`base`'s values of the searched options (what trial 0 tries)."""
    return {dim.name: getattr(base, dim.name) for dim in space}


def suggest(trial: Suggests, space: tuple[Dimension, ...]) -> dict[str, Any]:
    """The values a trial tries, one per dimension."""
    return {dim.name: dim.suggest(trial) for dim in space}


def trial_config(base: ModelConfig, params: dict[str, Any]) -> ModelConfig:
    """`base` with a trial's values (validated by ModelConfig: a bad mix raises ConfigError).

    `min_epochs` is capped at the trial's epochs, as `--epochs` does elsewhere.
    """
    cfg = dataclasses.replace(base, **params)
    return dataclasses.replace(cfg, min_epochs=min(cfg.min_epochs, cfg.epochs))


def fingerprint(base: ModelConfig, space: tuple[Dimension, ...]) -> dict[str, Any]:
    """What makes two studies comparable: the base configuration and the space (JSON-ready)."""
    return {
        "base": dataclasses.asdict(base),
        "space": [json.loads(json.dumps(dataclasses.asdict(dim))) for dim in space],
    }
