-- model_quality: the latest model of each product (by trained_at, UTC) and how it compares with
-- the seasonal-naive baseline. WAPEs are fractions (0.25 = 25% error); wape_improvement is the
-- fraction of the baseline's error the model removes (0.2 = 20% lower error, negative = worse).

with

ranked_models as (

    select
        *,
        row_number() over (
            partition by product_id order by trained_at desc, model_version desc
        ) as recency_rank
    from model_versions

),

final as (

    select
        * exclude (recency_rank),
        1 - backtest_wape / nullif(baseline_wape, 0) as wape_improvement
    from ranked_models
    where recency_rank = 1

)

select * from final
