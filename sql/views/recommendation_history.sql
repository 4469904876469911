-- recommendation_history: every recommendation of every completed run, with the run's as_of (the
-- first day of its priced horizon), flow and finished_at (UTC). Prices are currency per unit;
-- expected_* are summed over the run's forecast horizon.

with

completed_runs as (

    select run_id, as_of, flow, finished_at
    from runs
    where status = 'completed'

),

final as (

    select
        recommendations.*,
        completed_runs.as_of,
        completed_runs.flow,
        completed_runs.finished_at  -- UTC
    from recommendations
    inner join completed_runs on recommendations.run_id = completed_runs.run_id

)

select * from final
