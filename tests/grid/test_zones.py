"""Zone resolution: explicit > GREENFORGE_ZONE > config file > cloud region > error."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenforge.config import Settings, load_settings
from greenforge.errors import ConfigError, UnknownZoneError
from greenforge.grid.zones import (
    annual_intensity,
    canonical_zone,
    cloud_region_zone,
    cloud_regions,
    known_zones,
    resolve_zone,
)

NO_ENV: dict[str, str] = {}


def test_explicit_zone_wins_over_everything(tmp_path: Path) -> None:
    config = tmp_path / "greenforge.toml"
    config.write_text('zone = "FR"\ncloud_provider = "aws"\ncloud_region = "us-east-1"\n')
    settings = load_settings(env={"GREENFORGE_ZONE": "GB"}, config_file=config)
    assert resolve_zone(settings, "de", env={"AWS_REGION": "eu-west-3"}) == "DE"


def test_environment_beats_config_file(tmp_path: Path) -> None:
    config = tmp_path / "greenforge.toml"
    config.write_text('zone = "FR"\n')
    settings = load_settings(env={"GREENFORGE_ZONE": "GB"}, config_file=config)
    assert resolve_zone(settings, env=NO_ENV) == "GB"
    assert resolve_zone(load_settings(env={}, config_file=config), env=NO_ENV) == "FR"


def test_config_zone_beats_cloud_region() -> None:
    settings = Settings(zone="SE", cloud_provider="aws", cloud_region="us-west-1")
    assert resolve_zone(settings, env={"AWS_REGION": "us-east-1"}) == "SE"


@pytest.mark.parametrize(
    ("provider", "region", "zone"),
    [
        ("aws", "us-west-1", "US-CAL-CISO"),
        ("aws", "us-east-1", "US-MIDA-PJM"),
        ("aws", "eu-west-2", "GB"),
        ("aws", "eu-central-1", "DE"),
        ("aws", "ap-southeast-2", "AU-NSW"),
        ("gcp", "europe-west3", "DE"),
        ("gcp", "us-central1", "US-MIDW-MISO"),
        ("gcp", "asia-northeast1", "JP-TK"),
        ("azure", "westeurope", "NL"),
        ("azure", "West Europe", "NL"),
        ("azure", "uksouth", "GB"),
        ("azure", "eastus", "US-MIDA-PJM"),
    ],
)
def test_cloud_regions_map_to_grid_zones(provider: str, region: str, zone: str) -> None:
    settings = Settings(cloud_provider=provider, cloud_region=region)
    assert resolve_zone(settings, env=NO_ENV) == zone


@pytest.mark.parametrize(
    ("env", "zone"),
    [
        ({"AWS_REGION": "eu-west-3"}, "FR"),
        ({"AWS_DEFAULT_REGION": "ap-northeast-1"}, "JP-TK"),
        ({"GOOGLE_CLOUD_REGION": "europe-west2"}, "GB"),
        ({"CLOUDSDK_COMPUTE_REGION": "us-west1"}, "US-NW-BPAT"),
        ({"REGION_NAME": "Sweden Central"}, "SE-SE3"),
    ],
)
def test_provider_environment_variables_name_the_region(env: dict[str, str], zone: str) -> None:
    assert resolve_zone(Settings(), env=env) == zone


def test_region_without_provider_is_found_when_unambiguous() -> None:
    assert resolve_zone(Settings(cloud_region="europe-west9"), env=NO_ENV) == "FR"


def test_unknown_cloud_region_lists_close_matches() -> None:
    with pytest.raises(ConfigError, match=r"unknown aws region 'us-east-7'.*us-east-1"):
        cloud_region_zone("aws", "us-east-7")


def test_no_location_at_all_is_an_error_with_guidance() -> None:
    with pytest.raises(ConfigError, match="GREENFORGE_ZONE") as info:
        resolve_zone(Settings(), env=NO_ENV)
    assert "cloud_region" in str(info.value)


def test_blank_zone_is_rejected() -> None:
    with pytest.raises(ConfigError, match="empty grid zone"):
        resolve_zone(Settings(), "  ", env=NO_ENV)


def test_unlisted_zone_names_pass_through_for_live_providers() -> None:
    assert resolve_zone(Settings(), "CAISO_NORTH", env=NO_ENV) == "CAISO_NORTH"


def test_every_cloud_region_points_at_a_known_zone() -> None:
    regions = cloud_regions()
    assert {r.provider for r in regions} == {"aws", "gcp", "azure"}
    assert len(regions) >= 90
    assert all(canonical_zone(r.zone) == r.zone for r in regions)


def test_every_region_of_the_reference_tables_is_mapped(shared_data: Path) -> None:
    import csv

    have = {(r.provider, r.region) for r in cloud_regions()}
    cloud = shared_data / "cloud"
    wanted = set()
    for provider, name, key in (
        ("aws", "grid-emissions-factors-aws.csv", "Region"),
        ("gcp", "grid-emissions-factors-gcp.csv", "Region"),
        ("azure", "grid-emissions-factors-azure.csv", "Region"),
        ("gcp", "gcp-region-impact.csv", "region"),
    ):
        with (cloud / name).open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                region = row[key].strip()
                wanted.add(
                    (provider, region.lower().replace(" ", "") if provider == "azure" else region)
                )
    wanted.discard(("gcp", "me-cenrtal1"))  # a typo in the source table for me-central1
    assert wanted <= have


def test_annual_table_has_electricitymaps_zones_and_ember_countries() -> None:
    zones = set(known_zones())
    assert {"DE", "GB", "US-CAL-CISO", "IN-WE", "DEU", "UA"} <= zones
    de = annual_intensity("DE")
    assert (de.year, de.dataset, de.basis) == (2025, "electricitymaps-yearly", "lca")
    assert de.source == "embedded:electricitymaps-yearly-2025:DE"
    assert annual_intensity("de", 2022).intensity_g_per_kwh == 475.0
    assert annual_intensity("DE", 1999).year == 2025  # not in the table: latest year
    ukraine = annual_intensity("UA")  # alpha-2 that only Ember covers
    assert ukraine.dataset == "ember"
    assert ukraine.source.startswith("embedded:ember-")
    assert annual_intensity("DEU").name == "Germany"


def test_names_are_not_zones_but_suggest_them() -> None:
    with pytest.raises(UnknownZoneError, match=r"unknown grid zone 'Germany'.*DE \(Germany\)"):
        annual_intensity("Germany")
    assert canonical_zone("Georgia") is None  # the country GE, or the US state? Not guessed.


def test_misspelt_country_name_suggests_the_zone_code() -> None:
    with pytest.raises(UnknownZoneError, match=r"Close matches: DE \(Germany\)") as info:
        annual_intensity("Germny")
    assert info.value.suggestions[0] == "DE"


def test_unknown_zone_lists_close_matches() -> None:
    with pytest.raises(UnknownZoneError, match="US-CAL-CISO") as info:
        annual_intensity("US-CAL-CIS")
    assert info.value.suggestions


def test_resolve_zone_source_names_where_the_zone_came_from() -> None:
    from greenforge.grid.zones import resolve_zone_source

    assert resolve_zone_source(Settings(), "de", env={}) == ("DE", "argument")
    assert resolve_zone_source(Settings(zone="GB"), env={}) == ("GB", "setting")
    cloud = Settings(cloud_provider="aws", cloud_region="us-west-1")
    assert resolve_zone_source(cloud, env={}) == ("US-CAL-CISO", "cloud_region=aws:us-west-1")
    found = resolve_zone_source(Settings(), env={"AWS_REGION": "eu-central-1"})
    assert found == ("DE", "AWS_REGION=eu-central-1")
