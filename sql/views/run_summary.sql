-- run_summary: every run with its duration. started_at and finished_at are UTC; duration_s is in
-- seconds and null while the run is still running (or if it died without recording its end).

with

final as (

    select
        *,
        epoch(finished_at - started_at) as duration_s
    from runs

)

select * from final
