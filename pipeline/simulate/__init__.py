"""`pricing simulate`: the night in a closed loop on a world with ground truth.

Each simulated night the policies price the day (`loop`), their prices go on the shelf, the
world's true demand answers (`pipeline.synth.market`) and the day's sales join each learning
policy's history. The policies: this engine (with its configured price tests), the same engine
with price tests off, the log-log baseline priced by the same engine, an oracle (the same engine
on the true demand, moving step by step under the same rules) and today's prices kept. `summary`
turns the nights into the figures, the terminal table and the plot.
"""

from pipeline.simulate.loop import SimConfig, simulate
from pipeline.simulate.summary import night_line, summarise, table_header

__all__ = ["SimConfig", "night_line", "simulate", "summarise", "table_header"]
