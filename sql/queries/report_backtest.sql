-- report_backtest: the forecast days of the latest completed nightly run that has actual sales
-- for any of them, beside those sales. forecast_price is the price the forecast assumed (the
-- recommended one), paid_price the shelf price actually paid (currency per unit); units_* and
-- units are units per day; elasticity is the run's, to move the forecast to the price paid.
-- Run by pipeline/report.py.

with checked_runs as (
    select f.run_id, max(r.as_of) as as_of, max(r.finished_at) as finished_at
    from forecasts f
    join runs r on r.run_id = f.run_id and r.status = 'completed' and r.flow = 'nightly'
    join sales s on s.product_id = f.product_id and s.ds = f.ds
    group by f.run_id
    order by as_of desc, finished_at desc
    limit 1
)
select f.run_id, c.as_of, f.product_id, f.ds, f.price as forecast_price, f.units_mean,
       f.units_p10, f.units_p90, s.units, s.price as paid_price, s.stockout, rec.elasticity
from forecasts f
join checked_runs c on c.run_id = f.run_id
join sales s on s.product_id = f.product_id and s.ds = f.ds
join recommendations rec on rec.run_id = f.run_id and rec.product_id = f.product_id
order by f.ds, f.product_id
