"""The simulation's figures: cumulative profit per policy, capture against the oracle, the table.

Uplift is profit above `keep` (today's prices kept); capture is a policy's uplift over the oracle's
(the same engine on the true demand, under the same rules). Expected profit (the true mean at the
shelf prices) is the headline, since it does not depend on one draw of noise; realised profit is
reported beside it. Capture is also given over the products whose true elasticity is below -1
("elastic"): a constant elasticity of -1 or above makes the oracle's profit rise with price up to
max_price, a walk the engine makes only on a price test's finding and one trust-region step at a
time (`pricing.hold_inelastic`, `pricing.inelastic_walk`), so the elastic products show how well
the engine prices where a best price exists inside the range.

The `cautious` oracle knows the true curves but obeys the engine's evidence rules (the trust
region; an elasticity of -1 or above walks one step past the prices sold at per week of sales
there, as the engine's do once a test found them, or stays within them where the engine's never
walk, `loop.cautious_config`): its capture is what those rules leave of the oracle's uplift, and
each engine's `capture_cautious` (its uplift over the cautious oracle's) is what learning the
curves leaves of that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.console import progress_bar

COMPARED = ("engine", "engine_off", "loglog", "cautious")
ENGINES = ("engine", "engine_off")  # the learning policies measured against the cautious oracle


def _cumulative(nights: list[dict[str, Any]], arm: str, key: str) -> list[float]:
    total, out = 0.0, []
    for record in nights:
        total += record.get(arm, {}).get(key, 0.0)
        out.append(total)
    return out


def _capture(gain: float, oracle: float) -> float | None:
    return gain / oracle if oracle > 0 else None


def summarise(result: dict[str, Any], key: str = "expected_profit") -> dict[str, Any]:
    """Cumulative uplift over `keep`, capture of the oracle's uplift, last-7-night capture, and
    the night from which the engine with tests stays ahead of the engine without."""
    nights = result["nights"]
    arms = result["config"]["arms"]
    if "keep" not in arms or "oracle" not in arms or not nights:
        return {}
    keep = _cumulative(nights, "keep", key)
    oracle_gain = [o - k for o, k in zip(_cumulative(nights, "oracle", key), keep, strict=True)]
    out: dict[str, Any] = {"oracle_uplift": oracle_gain[-1]}
    last = max(0, len(nights) - 7)
    oracle_last = oracle_gain[-1] - (oracle_gain[last - 1] if last else 0.0)
    gains = {
        arm: [c - k for c, k in zip(_cumulative(nights, arm, key), keep, strict=True)]
        for arm in COMPARED
        if arm in arms
    }
    for arm, gain in gains.items():
        gain_last = gain[-1] - (gain[last - 1] if last else 0.0)
        out[arm] = {
            "uplift": gain[-1],
            "capture": _capture(gain[-1], oracle_gain[-1]),
            "capture_last_7": _capture(gain_last, oracle_last),
            "price_changes": sum(r[arm]["price_changes"] for r in nights),
        }
        if "at_max_price" in nights[-1][arm]:
            out[arm]["at_max_price_last"] = nights[-1][arm]["at_max_price"]
        if arm in ENGINES and "cautious" in gains:
            cautious = gains["cautious"]
            cautious_last = cautious[-1] - (cautious[last - 1] if last else 0.0)
            out[arm]["capture_cautious"] = _capture(gain[-1], cautious[-1])
            out[arm]["capture_cautious_last_7"] = _capture(gain_last, cautious_last)
    elastic = "expected_profit_elastic"
    if key == "expected_profit" and all(elastic in nights[0].get(a, {}) for a in arms):
        sub = summarise(result, elastic)
        out["elastic"] = {"oracle_uplift": sub["oracle_uplift"]} | {
            arm: {
                k: v for k, v in sub[arm].items() if k not in ("price_changes", "at_max_price_last")
            }
            for arm in COMPARED
            if arm in sub
        }
    if "engine_off" in arms:
        tests, off = _cumulative(nights, "engine", key), _cumulative(nights, "engine_off", key)
        ahead = [e > o for e, o in zip(tests, off, strict=True)]
        out["tests_ahead_from_night"] = _ahead_from(ahead)
    out["identified_last"] = nights[-1]["engine"].get("identified")
    out["seconds"] = result.get("seconds")
    return out


def _ahead_from(ahead: list[bool]) -> int | None:
    """The first night from which every later night is ahead (None if the last is not)."""
    night = None
    for k in range(len(ahead) - 1, -1, -1):
        if not ahead[k]:
            break
        night = k + 1
    return night


_BAR = 20  # the progress bar's width (`console.progress_bar`)


def table_header(arms: list[str]) -> str:
    """The terminal table's header: progress, night, day, each policy's expected profit, tests."""
    cells = "".join(f"{a:>12}" for a in arms)
    return (
        f"{'progress':<{_BAR + 2}} {'left':>7} {'night':>5} {'day':<10}{cells}"
        f"{'testing':>9}{'ident.':>8}{'changes':>9}{'s':>6}"
    )


def night_line(
    record: dict[str, Any], arms: list[str], total: int | None = None, elapsed: float = 0.0
) -> str:
    """One night of the terminal table (expected profit of the day per policy), after a bar of
    the nights done out of `total` and the time left at the pace so far (`elapsed` seconds)."""
    engine = record["engine"]
    done, total = record["night"], total or record["night"]
    left = elapsed / max(done, 1) * max(total - done, 0)
    clock = f"{int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}"
    cells = "".join(f"{record[a]['expected_profit']:>12,.0f}" for a in arms)
    seconds = sum(record[a].get("seconds", 0.0) for a in arms)
    return (
        f"{progress_bar(done, total, _BAR)} {clock:>7} {done:>5} {record['day']:<10}{cells}"
        f"{engine.get('testing', 0):>9}{engine.get('identified', 0):>8}"
        f"{engine['price_changes']:>9}{seconds:>6.0f}"
    )


def cumulative_figure(result: dict[str, Any]) -> Any:
    """Cumulative expected profit above today's prices per policy, night by night (a Figure)."""
    from pipeline.report import plt  # matplotlib only where a plot is asked for

    nights = result["nights"]
    arms = result["config"]["arms"]
    keep = _cumulative(nights, "keep", "expected_profit")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = [r["night"] for r in nights]
    for arm in (a for a in ("oracle", *COMPARED) if a in arms):
        gain = [c - k for c, k in zip(_cumulative(nights, arm, "expected_profit"), keep,
                                      strict=True)]  # fmt: skip
        ax.plot(x, gain, label=arm)
    ax.set_xlabel("night")
    ax.set_ylabel("cumulative expected profit above today's prices")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def plot(result: dict[str, Any], path: Path) -> None:
    """`cumulative_figure` as a PNG file."""
    from pipeline.report import figure_png, plt

    fig = cumulative_figure(result)
    Path(path).write_bytes(figure_png(fig))
    plt.close(fig)
