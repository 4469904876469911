-- model_quality: the latest model of each product (by trained_at, UTC) and how it compares with
-- the seasonal-naive baseline. WAPEs are fractions (0.25 = 25% error), scored on held-out days
-- nothing of the backtest's model was fitted on; wape_improvement is the fraction of the
-- baseline's error the model removes (0.2 = 20% lower error, negative = worse). The elasticity
-- columns say what it rests on: its ~90% interval, `identified_by` (which price moves identify
-- it: 'regular', 'regular_and_promo', 'promo_only' or 'none'), `promo_effect` (a promotion's own
-- lift beyond its price cut, 0.2 = 20% more units) and `confounding_z` (above 3: the price moves
-- with demand, status 'confounded'); `elasticity_identified` is true where the price rests on
-- moves that identify it (regular moves, not confounded).

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
        1 - backtest_wape / nullif(baseline_wape, 0) as wape_improvement,
        identified_by in ('regular', 'regular_and_promo')
            and status <> 'confounded' as elasticity_identified
    from ranked_models
    where recency_rank = 1

)

select * from final
