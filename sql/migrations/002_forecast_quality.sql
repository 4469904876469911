-- 002: forecast quality and uncertainty (issue 3): MASE beside WAPE in the backtest, the median
-- forecast, and the residual dispersion a model was saved with.

alter table model_versions add column if not exists backtest_mase double;  -- mean absolute scaled error (1 = as good as in-sample weekly naive)
alter table model_versions add column if not exists baseline_mase double;  -- same for the seasonal-naive forecast
alter table model_versions add column if not exists dispersion double;     -- negative-binomial alpha: variance = mu + alpha mu^2
alter table forecasts add column if not exists units_p50 double;            -- median units that day
