"""`pricing tune`: search the forecaster's `[model]` options on rolling-origin backtests.

One concern per module:

- `space`: the search space (architecture options, hidden units, learning rate, segment length,
  epochs), each option only where `ModelConfig` has it, and the configuration a trial tries;
- `objective`: a configuration's score, the median backtest WAPE of a sample of products over
  rolling origins, each fold trained only on the days before its origins;
- `study`: the seeded, resumable Optuna study (TPE with median pruning) under a time budget,
  its storage next to the warehouse, and every trial's row for the `tuning_trials` table;
- `output`: the best configuration as a TOML `[model]` section, the JSON of `--out` and the
  progress lines;
- `commands`: the command's body (registered in pipeline/cli.py).

Nothing is imported here, so that registering the command costs nothing until it runs.
"""
