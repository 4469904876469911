-- 004: what the elasticity regression estimated (issue 11), on each model version: a promotion's
-- own lift beyond its price cut, which price moves identified the elasticity, and the test that
-- names prices set in response to demand. Null for models trained before this migration.

alter table model_versions add column if not exists promo_effect double;    -- lift of a promotion beyond its price cut, 0.2 = 20% more units; null without promotions
alter table model_versions add column if not exists identified_by varchar;  -- 'regular' | 'regular_and_promo' | 'promo_only' | 'none': the price moves the elasticity rests on
alter table model_versions add column if not exists confounding_z double;   -- standard errors by which demand reads less elastic across weeks than within them; above 3 the status is 'confounded'
