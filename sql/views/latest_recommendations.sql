-- latest_recommendations: the prices to put on the shelf now, one row per product, from the most
-- recent completed nightly run (latest as_of, then the latest finished_at for that date).
-- Prices are currency per unit; expected_* and profit_uplift are currency (or units) summed over
-- the forecast horizon; price_change_pct is in percent (5.0 = recommended 5% above current).

with

completed_nightly_runs as (

    select run_id, as_of, finished_at
    from runs
    where status = 'completed' and flow = 'nightly'

),

latest_run as (

    select run_id, as_of, finished_at
    from completed_nightly_runs
    order by as_of desc nulls last, finished_at desc
    limit 1

),

final as (

    select
        recommendations.*,
        latest_run.as_of,
        latest_run.finished_at as run_finished_at,  -- UTC
        products.name,
        products.category,
        products.unit_cost,  -- currency per unit
        100 * (recommendations.recommended_price / recommendations.current_price - 1)
            as price_change_pct
    from recommendations
    inner join latest_run on recommendations.run_id = latest_run.run_id
    left join products on recommendations.product_id = products.product_id

)

select * from final
