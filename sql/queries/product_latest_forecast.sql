-- product_latest_forecast: one product's daily forecast (units per day: mean, p10, p90) from the
-- run of the latest recommendations, at the recommended price. Parameter: the product_id.
-- Run by pipeline/report.py.

select ds, units_mean, units_p10, units_p90 from forecasts
where product_id = ? and run_id = (select run_id from latest_recommendations limit 1)
order by ds
