-- 003: where a run's time went. JSON text mapping each stage to its wall-clock seconds, e.g.
-- {"read": 1.2, "train": 41.0, "forecast": 3.4, "optimise": 0.2, "write": 0.9}; stages a run
-- did not reach are absent (a retrain has no optimise stage).

alter table runs add column if not exists stage_seconds varchar;
