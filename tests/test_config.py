"""Tests of pipeline/config.py: defaults, TOML files and one-line errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.config import ConfigError, ModelConfig, PricingConfig, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def test_defaults_and_warehouse_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("PRICING_WAREHOUSE", "/data/shop.duckdb")
    settings = load_settings()
    assert settings.warehouse == Path("/data/shop.duckdb")
    assert settings.model_dir == Path("/data/models")
    assert settings.model.horizon == 14 and settings.pricing.objective == "profit"


def test_a_file_overrides_its_keys_only(tmp_path: Path) -> None:
    path = write(tmp_path, "[model]\nhorizon = 7\n[pricing]\nprice_endings = [0.99, 0.49]\n")
    settings = load_settings(path, tmp_path / "w.duckdb")
    assert settings.model.horizon == 7 and settings.model.hidden_units == 32
    assert settings.pricing.price_endings == (0.99, 0.49)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[model]\nhorizn = 7\n", "'model.horizn': unknown key"),
        ("[model]\nhorizon = 0\n", "'model.horizon': must be between 1 and 90"),
        ("[model]\nhorizon = 'x'\n", "'model.horizon': expected int"),
        ("[pricing]\nmax_change_up = 1.5\n", "'pricing.max_change_up'"),
        (
            "[model]\nsegment_days = 16\nwarmup_days = 4\n",
            "'model.validation_days': must be >= 0 and below model.segment_days",
        ),
        ("[pricng]\n", "'pricng': unknown section"),
        ("[model\n", "is not valid TOML"),
    ],
)
def test_bad_files_give_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        load_settings(write(tmp_path, text))
    assert "\n" not in str(caught.value)


def test_missing_file_and_direct_construction_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"model\.elasticity"):
        ModelConfig(elasticity="magic")
    with pytest.raises(ConfigError, match=r"pricing\.objective"):
        PricingConfig(objective="volume")


def test_the_evidence_keys_of_pricing_are_read_and_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[pricing]\ntrust_widening = 0.2\nhold_inelastic = false\nhold_statuses = ['confounded']\n"
        "inelastic_walk = false\nwalk_test_phases = 4\n",
    )
    pricing = load_settings(path).pricing
    assert (pricing.trust_widening, pricing.hold_inelastic) == (0.2, False)
    assert pricing.hold_statuses == ("confounded",) and not pricing.inelastic_walk
    assert pricing.walk_test_phases == 4 and PricingConfig().walk_test_phases == 2
    with pytest.raises(ConfigError, match=r"'pricing\.walk_test_phases': must be between 1"):
        PricingConfig(walk_test_phases=5)
    defaults = PricingConfig()
    assert defaults.trust_widening == 0.1 and defaults.hold_inelastic and defaults.inelastic_walk
    assert "confounded" in defaults.hold_statuses
    with pytest.raises(ConfigError, match=r"'pricing\.trust_widening': must be a fraction"):
        PricingConfig(trust_widening=-0.1)
    with pytest.raises(ConfigError, match=r"'pricing\.hold_statuses': may list only"):
        PricingConfig(hold_statuses=("cold_start",))
    with pytest.raises(ConfigError, match=r"'pricing\.hold_inelastic': expected bool"):
        load_settings(write(tmp_path, "[pricing]\nhold_inelastic = 1\n"))
    with pytest.raises(ConfigError, match=r"'pricing\.inelastic_walk': expected bool"):
        load_settings(write(tmp_path, "[pricing]\ninelastic_walk = 'yes'\n"))
