-- 005: the design of price tests (pipeline/pricing/explore.py), on each recommendation that is one,
-- so the history can be evaluated off-policy: which price the test chose, by what rule and with
-- what probability. Null on every row that is not a price test.
alter table recommendations add column if not exists test_status varchar;         -- 'testing' | 'identified' | 'stopped'
alter table recommendations add column if not exists test_phase integer;          -- 1-based phase of the test
alter table recommendations add column if not exists test_phases integer;         -- phases a test has
alter table recommendations add column if not exists test_started date;           -- first night of the test
alter table recommendations add column if not exists test_base_price double;      -- the price the test started at
alter table recommendations add column if not exists test_direction integer;      -- +1 steps up, -1 down
alter table recommendations add column if not exists test_arm varchar;            -- 'step' | 'base' | 'up' | 'down'
alter table recommendations add column if not exists test_rule varchar;           -- 'alternate' | 'thompson'
alter table recommendations add column if not exists test_probability double;     -- probability of the arm chosen
alter table recommendations add column if not exists test_target_price double;    -- the price the test aimed at
