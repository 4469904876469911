"""Confirming a study's best trial on products it never scored.

The best of many trials on one sample is flattered by that sample (the winner's curse): measured
with `pricing bench tune`, configurations that beat the defaults by 3-6% on the tuning sample
were 0-4% worse on worlds the study never saw. So before `pricing tune` recommends its best
trial, it scores that configuration and the one tuned from on a second sample of products (as
many as the first, drawn from the products the study did not score, in the same scope), and
recommends the best only where it wins there too. Where the second sample cannot be drawn (too
few other products) the best is recommended unconfirmed, and says so; where the time budget ends
first, the configuration tuned from stands.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import ModelConfig
from pipeline.night import PreparedNight
from pipeline.tune import sampling
from pipeline.tune.clock import Budget, OutOfTime, TrialClock
from pipeline.tune.objective import FOLDS, Sample, evaluate

CONFIRM_SHARE = 0.2  # of each study's time kept for its confirmation
MIN_PRODUCTS = 5  # fewer other products than this: no confirmation

CONFIRMED, REJECTED, BASE_IS_BEST = "confirmed", "rejected", "base_is_best"
NO_OTHERS, OUT_OF_TIME = "no_other_products", "out_of_time"


@dataclass(frozen=True)
class Confirmation:
    """What the second sample said of the best trial.

    Attributes:
        status: `confirmed` (it beat the configuration tuned from there too), `rejected` (it did
            not), `base_is_best` (the best trial is the configuration tuned from: nothing to
            confirm), `no_other_products` or `out_of_time` (not confirmed).
        products: products in the second sample (0 without one).
        base_score: the configuration tuned from's median WAPE on it (None without).
        best_score: the best trial's (None without).
    """

    status: str
    products: int = 0
    base_score: float | None = None
    best_score: float | None = None

    @property
    def recommends_best(self) -> bool:
        """Whether the best trial is recommended (confirmed, the base itself, or no way to
        confirm it)."""
        return self.status in (CONFIRMED, BASE_IS_BEST, NO_OTHERS)

    def line(self) -> str:
        """One line on what the confirmation found."""
        stands = "the configuration tuned from stands"
        if self.status == BASE_IS_BEST:
            return "the configuration tuned from scored best: nothing to confirm"
        if self.status == NO_OTHERS:
            return (
                f"not confirmed: only {self.products} products outside the sample (at least "
                f"{MIN_PRODUCTS} needed); the best trial is recommended as scored"
            )
        if self.status == OUT_OF_TIME:
            return f"not confirmed: the time budget ended first; {stands}"
        verdict = "confirmed" if self.status == CONFIRMED else f"not confirmed: {stands}"
        return (
            f"on {self.products} other products the best scored {self.best_score:.4f} against "
            f"{self.base_score:.4f} tuned from: {verdict}"
        )

    def as_json(self) -> dict[str, object]:
        return {"status": self.status, "products": self.products,
                "base_score": self.base_score, "best_score": self.best_score}  # fmt: skip


def confirm(
    night: PreparedNight,
    sample: Sample,
    base: ModelConfig,
    best: ModelConfig,
    seed: int,
    deadline: float,
) -> Confirmation:
    """Score `base` and `best` on products outside `sample` (same scope) before `deadline`."""
    if best == base:
        return Confirmation(BASE_IS_BEST)
    scored = sample.panel.product_ids
    others = sampling.candidates(night, base, sample.category, scored)
    size = min(len(scored), len(others))
    if size < MIN_PRODUCTS:
        return Confirmation(NO_OTHERS, size)
    second = sampling.draw_sample(night, base, size, sample.category, seed + 1, scored)
    budget = Budget(deadline)
    scores = []
    try:
        for cfg in (base, best):
            scores.append(_score(second, cfg, TrialClock(budget, FOLDS)))
    except OutOfTime:
        return Confirmation(OUT_OF_TIME, size)
    status = CONFIRMED if scores[1] < scores[0] else REJECTED
    return Confirmation(status, size, scores[0], scores[1])


def _score(sample: Sample, cfg: ModelConfig, clock: TrialClock) -> float:
    """`cfg`'s median backtest WAPE on `sample`, timed by `clock` (raises `OutOfTime`)."""
    return evaluate(sample, cfg, lambda _fold, _score: clock.fold_done(), clock.epoch).wape
