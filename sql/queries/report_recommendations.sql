-- report_recommendations: the latest nightly run's recommendations (the latest_recommendations
-- view) with each product's cost and price limits, for the report's curves. Prices and cost are
-- currency per unit. Run by pipeline/report.py.

select rec.*, p.unit_cost, p.min_price, p.max_price, p.name, p.category
from latest_recommendations rec
join products p using (product_id)
order by product_id
