"""Tests for pipeline/rules.py: the rules file, its one-line errors, and resolving scopes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import ConfigError, PricingConfig, load_settings
from pipeline.pricing.limits import resolve
from pipeline.rules import Rules, RulesError, RuleSet, load_rules, parse_rules

RULES_TOML = """
[category.beverages]
max_change_up = 0.05
price_endings = [0.49, 0.99]
margin_floor = 0.2

[product.P1]
min_price = 2
max_price = 3.49
hold = "  supplier contract until March "

[product."SKU.7"]
kvi_max_change = 0.02
"""


def write(tmp_path: Path, text: str, name: str = "rules.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_rules_file_parses_into_scoped_rules(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, RULES_TOML))
    assert rules.categories == (
        ("beverages", Rules(max_change_up=0.05, price_endings=(0.49, 0.99), margin_floor=0.2)),
    )
    assert dict(rules.products) == {
        "P1": Rules(min_price=2.0, max_price=3.49, hold="supplier contract until March"),
        "SKU.7": Rules(kvi_max_change=0.02),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[global]\nmax_change_up = 0.1", "key 'global': unknown section"),
        ("category = 3", "key 'category': must be tables like [category.NAME]"),
        ("[category]\nfresh = 1", "key 'category.fresh': must be a table of rules"),
        ("[category.fresh]\nmax_chnage_up = 0.1", "key 'category.fresh.max_chnage_up': unknown"),
        ("[category.fresh]\nmax_change_up = 1.5", "'category.fresh.max_change_up': must be a"),
        ("[category.fresh]\nmax_change_up = true", "'category.fresh.max_change_up': must be a"),
        ("[product.A]\nprice_endings = [0.995]", "'product.A.price_endings': must be a list"),
        ("[product.A]\nprice_endings = 0.99", "'product.A.price_endings': must be a list"),
        ("[product.A]\nmin_price = -1", "'product.A.min_price': must be a positive price"),
        ("[product.A]\nhold = ''", "'product.A.hold': must be a non-empty reason"),
        ("[product.A]\nmin_price = 5\nmax_price = 4", "'product.A.min_price': 5.0 is above"),
    ],
)
def test_a_malformed_rules_file_is_one_line_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RulesError, match=re.escape(message)) as caught:
        load_rules(path)
    assert "\n" not in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_or_invalid_toml_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"not found: check pricing\.rules_file"):
        load_rules(tmp_path / "nope.toml")
    with pytest.raises(RulesError, match="is not valid TOML"):
        load_rules(write(tmp_path, "[category.fresh\nx = 1"))


def test_the_config_loads_its_rules_file_once(tmp_path: Path) -> None:
    rules = write(tmp_path, RULES_TOML)
    config = write(tmp_path, f'[pricing]\nrules_file = "{rules}"\nmax_changes = 40\n', "c.toml")
    settings = load_settings(config)
    assert settings.pricing.max_changes == 40
    assert dict(settings.pricing.rules.products)["SKU.7"].kvi_max_change == 0.02


def test_a_bad_rules_file_in_the_config_names_both_keys(tmp_path: Path) -> None:
    rules = write(tmp_path, "[category.fresh]\nmargin_floor = 'high'")
    with pytest.raises(ConfigError) as caught:
        PricingConfig(rules_file=str(rules))
    text = str(caught.value)
    assert text.startswith("config key 'pricing.rules_file': rules file")
    assert "key 'category.fresh.margin_floor': must be in (-1, 10)" in text


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"max_changes": -2}, "pricing.max_changes"),
        ({"revenue_floor": 3.0}, "pricing.revenue_floor"),
        ({"risk_quantile": 0.5}, "pricing.risk_quantile"),
        ({"hold_statuses": ("cold_start",)}, "pricing.hold_statuses"),
        ({"max_stockout_share": 1.5}, "pricing.max_stockout_share"),
        ({"solver": "argmax"}, "pricing.solver"),
        ({"price_endings": (0.999,)}, "pricing.price_endings"),
        ({"kvi_max_change": 1.0}, "pricing.kvi_max_change"),
    ],
)
def test_pricing_config_rejects_bad_values_by_key(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        PricingConfig(**overrides)


def test_a_rules_key_in_the_pricing_section_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path, "[pricing]\nrules = 3\n", "c.toml")
    with pytest.raises(ConfigError, match=r"config key 'pricing\.rules'"):
        load_settings(config)


# --- resolving -----------------------------------------------------------------------------------


def resolve_for(cfg: PricingConfig, ids: list[str], categories: list[str], kvi: list[bool]):
    n = len(ids)
    return resolve(
        ids, categories, np.array(kvi), np.full(n, 1.0), np.full(n, 10.0), cfg
    )  # catalogue range 1.00-10.00 for everyone


def test_every_scope_applies_and_the_most_restrictive_value_wins() -> None:
    rules = parse_rules(
        {
            "category": {
                "fresh": {"max_change_up": 0.05, "min_price": 1.5, "margin_floor": 0.0},
                "loose": {"max_change_up": 0.5, "max_change_down": 0.5},
            },
            "product": {
                "a": {"max_change_up": 0.08, "max_price": 8.0, "margin_floor": 0.3},
                "b": {"min_price": 0.5, "kvi_max_change": 0.01},
            },
        }
    )
    cfg = PricingConfig(rules=rules)  # global: 10% each way, 5% for KVIs, margin floor 5%
    limits = resolve_for(cfg, ["a", "b", "c", "d"], ["fresh", "fresh", "loose", "other"], [
        False, True, False, True
    ])  # fmt: skip
    np.testing.assert_allclose(limits.max_change_up, [0.05, 0.01, 0.10, 0.05])
    np.testing.assert_allclose(limits.max_change_down, [0.10, 0.01, 0.10, 0.05])
    np.testing.assert_allclose(limits.min_price, [1.5, 1.5, 1.0, 1.0])  # 0.5 cannot loosen
    np.testing.assert_allclose(limits.max_price, [8.0, 10.0, 10.0, 10.0])
    np.testing.assert_allclose(limits.margin_floor, [0.3, 0.05, 0.05, 0.05])


def test_endings_are_the_intersection_of_every_scope() -> None:
    rules = parse_rules(
        {
            "category": {"bev": {"price_endings": [0.49, 0.99]}, "any": {"price_endings": []}},
            "product": {"x": {"price_endings": [0.49]}, "y": {"price_endings": [0.95]}},
        }
    )
    cfg = PricingConfig(price_endings=(0.49, 0.95, 0.99), rules=rules)
    limits = resolve_for(cfg, ["x", "y", "z", "w"], ["bev", "bev", "any", "bev"], [False] * 4)
    sets = [limits.endings.sets[i].tolist() if i >= 0 else None for i in limits.endings.index]
    assert sets == [[49], None, [49, 95, 99], [49, 99]]  # y: .95 is not allowed in bev


def test_a_product_hold_wins_over_its_category_hold() -> None:
    rules = RuleSet(
        categories=(("c", Rules(hold="range review")),),
        products=(("a", Rules(hold="contract")),),
    )
    limits = resolve_for(PricingConfig(rules=rules), ["a", "b", "z"], ["c", "c", "d"], [False] * 3)
    assert limits.hold.tolist() == [
        "held by the rules of product a: contract",
        "held by the rules of category c: range review",
        None,
    ]


def test_no_rules_file_means_the_global_rules_everywhere() -> None:
    limits = resolve_for(PricingConfig(), ["a", "b"], ["x", "y"], [False, True])
    np.testing.assert_allclose(limits.max_change_up, [0.10, 0.05])
    np.testing.assert_allclose(limits.margin_floor, [0.05, 0.05])
    assert limits.endings.index.tolist() == [0, 0]
    assert limits.endings.sets[0].tolist() == [99]
