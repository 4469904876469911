-- 007: price tests retry (pipeline/pricing/explore.py, `pricing.explore_retry_days`): a product whose
-- test ended without identifying its elasticity may test again after a cool-off; each test row
-- records which attempt it belongs to (1 for the first). Null on every row that is not a price test.
alter table recommendations add column if not exists test_attempt integer;        -- 1-based attempt of the product's test
