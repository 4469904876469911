-- 008: what a price test can reach (pipeline/pricing/reach.py): the width of the elasticity's ~90%
-- interval predicted, on the test's first night, for its end (from the product's units a day, their
-- dispersion, the test's step and days, and its own estimate before the test). A test whose reach
-- is not narrower than `explore_width` is unlikely to identify the product. Null on every row that
-- is not a price test, and on Thompson tests (no fixed step).
alter table recommendations add column if not exists test_reach_width double;    -- predicted interval width at the test's end
