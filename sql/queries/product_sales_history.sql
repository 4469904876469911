-- product_sales_history: one product's daily sales, oldest first (units per day, shelf price
-- paid in currency per unit, stockout days censored). Parameter: the product_id.
-- Run by pipeline/report.py.

select ds, units, price, stockout from sales where product_id = ? order by ds
