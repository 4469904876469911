-- price_tests: every price test (pipeline/pricing/explore.py), in progress or finished: when it
-- started, its last night, its phase and status, the nights it moved the price, what it put at
-- risk (expected profit given up at the test prices, summed over its nights, currency over each
-- night's horizon), what it found (the elasticity and interval on its last night) and what it could
-- find (reach_width: the interval's width predicted for its end on its first night). A product
-- whose test ended unidentified may test again after `explore_retry_days`: one row per attempt.

with

tests as (

    select recommendations.*
    from recommendations
    inner join runs on recommendations.run_id = runs.run_id
    where runs.status = 'completed' and recommendations.test_status is not null

),

final as (

    select
        product_id,
        test_started,
        coalesce(max(test_attempt), 1) as attempt,
        max(effective_date) as last_night,
        arg_max(test_status, effective_date) as status,
        max(test_phase) as phase,
        any_value(test_phases) as phases,
        any_value(test_rule) as rule,
        any_value(test_base_price) as base_price,
        -- the nights the test set the price (a test's last row, the night it ended, sets none)
        count(*) filter (where test_status = 'testing') as nights,
        count(*) filter (
            where test_status = 'testing' and recommended_price <> current_price
        ) as price_moves,
        coalesce(sum(greatest(current_expected_profit - expected_profit, 0)) filter (
            where test_status = 'testing'
        ), 0) as expected_profit_at_risk,
        arg_max(elasticity, effective_date) as elasticity,
        arg_max(elasticity_lo, effective_date) as elasticity_lo,
        arg_max(elasticity_hi, effective_date) as elasticity_hi,
        arg_min(test_reach_width, effective_date) as reach_width
    from tests
    group by product_id, test_started

)

select * from final
