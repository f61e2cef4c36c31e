"""Grid zones: the embedded annual table, cloud-region mapping and zone resolution.

Zone resolution order (:func:`resolve_zone`): explicit argument > ``GREENFORGE_ZONE`` >
config file (both already folded into ``settings.zone`` by :func:`~greenforge.config.
load_settings`) > cloud region (``settings.cloud_provider`` + ``cloud_region``, else the
conventional provider environment variables) > :class:`~greenforge.errors.ConfigError` with
guidance. There is no network probe and no silent default location.

The annual table holds Electricity Maps yearly zone averages (life-cycle basis, ODbL) and
Ember country averages (ISO alpha-3, CC BY-SA 4.0), built by ``scripts/build_grid_tables.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import zlib
from collections.abc import Mapping
from typing import Any

from greenforge.config import Settings
from greenforge.errors import ConfigError, UnknownZoneError
from greenforge.pkgdata import read_data

CLOUD_PROVIDERS = ("aws", "gcp", "azure")

# Environment variables that name the current cloud region, in order of preference.
CLOUD_REGION_ENV: tuple[tuple[str, str], ...] = (
    ("AWS_REGION", "aws"),  # set by Lambda, ECS, SageMaker, the AWS SDKs
    ("AWS_DEFAULT_REGION", "aws"),  # AWS CLI / SDK default
    ("GOOGLE_CLOUD_REGION", "gcp"),  # Cloud Functions (2nd gen) / buildpacks
    ("CLOUDSDK_COMPUTE_REGION", "gcp"),  # gcloud's compute/region property
    ("FUNCTION_REGION", "gcp"),  # Cloud Functions (1st gen)
    ("REGION_NAME", "azure"),  # Azure App Service / Functions ("West Europe")
    ("AZURE_REGION", "azure"),
)


@dataclasses.dataclass(frozen=True)
class AnnualIntensity:
    """An annual average carbon intensity with its provenance."""

    zone: str
    intensity_g_per_kwh: float
    year: int
    dataset: str
    """``electricitymaps-yearly`` (life-cycle) or ``ember`` (direct generation emissions)."""
    name: str

    @property
    def basis(self) -> str:
        return "lca" if self.dataset == "electricitymaps-yearly" else "direct"

    @property
    def source(self) -> str:
        return f"embedded:{self.dataset}-{self.year}:{self.zone}"


@dataclasses.dataclass(frozen=True)
class CloudRegion:
    """A cloud region and the grid zone that powers it."""

    provider: str
    region: str
    zone: str
    location: str
    provider_factor_g_per_kwh: float | None
    """The factor published with the region (Cloud Carbon Footprint / Google), for reference."""


def _read_data(name: str) -> bytes:
    return read_data("greenforge.grid", f"data/{name}")


@functools.lru_cache(maxsize=1)
def _annual() -> dict[str, Any]:
    # zlib reads the one gzip member directly (the gzip module costs ~1 ms of a start)
    data: dict[str, Any] = json.loads(zlib.decompress(_read_data("annual.json.gz"), wbits=31))
    return data


@functools.lru_cache(maxsize=1)
def _cloud() -> dict[str, dict[str, dict[str, Any]]]:
    data: dict[str, dict[str, dict[str, Any]]] = json.loads(_read_data("cloud_regions.json"))
    return data


@functools.lru_cache(maxsize=1)
def _upper_index() -> dict[str, str]:
    return {z.upper(): z for z in known_zones()}


def electricitymaps_zones() -> list[str]:
    """Zones of the embedded Electricity Maps yearly table."""
    return sorted(_annual()["electricitymaps"])


@functools.lru_cache(maxsize=1)
def known_zones() -> tuple[str, ...]:
    """Every zone the embedded provider answers: Electricity Maps zones, Ember ISO alpha-3
    countries, and ISO alpha-2 countries that only Ember covers."""
    table = _annual()
    em = set(table["electricitymaps"])
    alpha2 = {a2 for a2 in table["alpha2_to_alpha3"] if a2 not in em}
    return tuple(sorted(em | set(table["ember"]) | alpha2))


@functools.lru_cache(maxsize=1)
def _name_index() -> dict[str, str]:
    """Upper-case zone/country name -> zone, for names that identify one zone."""
    table = _annual()
    counts: dict[str, list[str]] = {}
    for zone, entry in table["electricitymaps"].items():
        counts.setdefault(str(entry["name"]).upper(), []).append(zone)
    out = {name: zones[0] for name, zones in counts.items() if len(zones) == 1}
    for a3, entry in table["ember"].items():
        out.setdefault(str(entry["name"]).upper(), a3)
    return out


def canonical_zone(zone: str) -> str | None:
    """The embedded table's spelling of the zone code ``zone`` (case-insensitive), or ``None``.

    Names are not accepted as zones (``Georgia`` the country is not the US state); they only
    feed the suggestions of :func:`unknown_zone_error`."""
    return _upper_index().get(zone.strip().upper())


def unknown_zone_error(zone: str, source: str) -> UnknownZoneError:
    """An :class:`UnknownZoneError` whose suggestions also come from zone *names*
    (``Germny`` -> ``DE (Germany)``), not only from zone codes."""
    import difflib

    err = UnknownZoneError(zone, known_zones(), source=source)
    names = _name_index()
    close = difflib.get_close_matches(zone.strip().upper(), list(names), n=3, cutoff=0.7)
    if close:
        by_name = [names[n] for n in close]
        shown = [f"{names[n]} ({zone_name(names[n])})" for n in close]
        codes = [c for c in err.suggestions if c not in by_name]
        err.suggestions = by_name + codes
        err.args = (
            f"unknown grid zone {zone!r} in {source}. Close matches: "
            f"{', '.join(shown + codes[:3])}.",
        )
    return err


def zone_name(zone: str) -> str:
    """A readable name of a known zone (``DE`` -> ``Germany``); the zone itself otherwise."""
    table = _annual()
    z = canonical_zone(zone) or zone
    if z in table["electricitymaps"]:
        return str(table["electricitymaps"][z]["name"])
    a3 = table["alpha2_to_alpha3"].get(z, z)
    if a3 in table["ember"]:
        return str(table["ember"][a3]["name"])
    return zone


def annual_years(zone: str) -> list[int]:
    """Years with an Electricity Maps annual value for ``zone`` (empty for Ember-only zones)."""
    z = canonical_zone(zone)
    em = _annual()["electricitymaps"]
    if z is None or z not in em:
        return []
    return sorted(int(y) for y in em[z]["g_per_kwh"])


def annual_intensity(zone: str, year: int | None = None) -> AnnualIntensity:
    """Annual average intensity of ``zone``.

    Electricity Maps zones give the value of ``year`` when the table has it, else the latest
    year available; ISO alpha-3 (and alpha-2 codes Electricity Maps lacks) fall back to Ember's
    latest country average. Unknown zones raise :class:`UnknownZoneError` with close matches.
    """
    table = _annual()
    z = canonical_zone(zone)
    if z is None:
        raise unknown_zone_error(zone, "the embedded annual table")
    em = table["electricitymaps"]
    if z in em:
        values: dict[str, float] = em[z]["g_per_kwh"]
        chosen = str(year) if year is not None and str(year) in values else max(values, key=int)
        return AnnualIntensity(
            zone=z,
            intensity_g_per_kwh=float(values[chosen]),
            year=int(chosen),
            dataset="electricitymaps-yearly",
            name=str(em[z]["name"]),
        )
    a3 = table["alpha2_to_alpha3"].get(z, z)
    entry = table["ember"][a3]
    return AnnualIntensity(
        zone=z,
        intensity_g_per_kwh=float(entry["g_per_kwh"]),
        year=int(entry["year"]),
        dataset="ember",
        name=str(entry["name"]),
    )


def _normalise_region(provider: str, region: str) -> str:
    text = region.strip().lower()
    return text.replace(" ", "") if provider == "azure" else text


def cloud_regions(provider: str | None = None) -> list[CloudRegion]:
    """The embedded cloud-region table (all providers, or one)."""
    table = _cloud()
    providers = CLOUD_PROVIDERS if provider is None else (provider,)
    out = []
    for p in providers:
        if p not in table:
            raise ConfigError(f"unknown cloud provider {p!r}: use 'aws', 'gcp' or 'azure'.")
        for region, item in sorted(table[p].items()):
            factor = item.get("ccf_g_per_kwh", item.get("google_g_per_kwh"))
            out.append(
                CloudRegion(
                    provider=p,
                    region=region,
                    zone=str(item["zone"]),
                    location=str(item["location"]),
                    provider_factor_g_per_kwh=None if factor is None else float(factor),
                )
            )
    return out


def cloud_region_zone(provider: str | None, region: str) -> str:
    """The grid zone of a cloud region. With ``provider=None`` the region name must be
    unambiguous across AWS, GCP and Azure. Unknown regions raise :class:`ConfigError`
    listing close matches."""
    import difflib

    table = _cloud()
    providers = CLOUD_PROVIDERS if provider is None else (provider,)
    hits = []
    for p in providers:
        if p not in table:
            raise ConfigError(f"unknown cloud provider {p!r}: use 'aws', 'gcp' or 'azure'.")
        key = _normalise_region(p, region)
        if key in table[p]:
            hits.append((p, str(table[p][key]["zone"])))
    zones = {z for _, z in hits}
    if len(zones) == 1:
        return zones.pop()
    if len(zones) > 1:
        raise ConfigError(
            f"cloud region {region!r} exists for several providers ({', '.join(p for p, _ in hits)})"
            " with different grid zones: set cloud_provider (GREENFORGE_CLOUD_PROVIDER)."
        )
    names = [r for p in providers for r in table[p]]
    close = difflib.get_close_matches(region.strip().lower().replace(" ", ""), names, n=4)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    which = provider or "AWS/GCP/Azure"
    raise ConfigError(
        f"unknown {which} region {region!r}.{hint} Set the grid zone directly with --zone or "
        "GREENFORGE_ZONE (see `greenforge grid zones`)."
    )


def zone_from_cloud_env(env: Mapping[str, str]) -> tuple[str, str] | None:
    """``(zone, why)`` from the first conventional cloud-region environment variable set."""
    for var, provider in CLOUD_REGION_ENV:
        value = env.get(var, "").strip()
        if value:
            return cloud_region_zone(provider, value), f"{var}={value}"
    return None


def resolve_zone(
    settings: Settings,
    explicit: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The grid zone to use: explicit > ``GREENFORGE_ZONE`` > config file > cloud region.

    Known zones come back in the embedded table's spelling (``de`` -> ``DE``); other names pass
    through unchanged for live providers to judge. Raises :class:`ConfigError` with guidance
    when nothing says where the machine is.
    """
    return resolve_zone_source(settings, explicit, env)[0]


def resolve_zone_source(
    settings: Settings,
    explicit: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """:func:`resolve_zone` and where the zone came from (``argument``, ``setting``,
    ``cloud_region=aws:eu-west-2`` or the cloud environment variable, e.g.
    ``AWS_REGION=eu-central-1``), so a record can say why it used that grid."""
    env = os.environ if env is None else env
    for given, why in ((explicit, "argument"), (settings.zone, "setting")):
        if given is not None:
            if not given.strip():
                raise ConfigError(
                    "empty grid zone: give a zone such as 'DE' or 'US-CAL-CISO' "
                    "(see `greenforge grid zones`)."
                )
            return canonical_zone(given) or given.strip(), why
    if settings.cloud_region:
        zone = cloud_region_zone(settings.cloud_provider, settings.cloud_region)
        return zone, f"cloud_region={settings.cloud_provider}:{settings.cloud_region}"
    found = zone_from_cloud_env(env)
    if found is not None:
        return found
    raise ConfigError(
        "no grid zone: GreenForge does not guess where your machine is. Pass --zone (e.g. "
        '--zone DE), set GREENFORGE_ZONE, put `zone = "DE"` in greenforge.toml, or set '
        "cloud_provider + cloud_region (e.g. GREENFORGE_CLOUD_PROVIDER=aws "
        "GREENFORGE_CLOUD_REGION=eu-west-2). `greenforge grid zones` lists the zones."
    )


@functools.lru_cache(maxsize=1)
def country_aliases() -> dict[str, str]:
    """Ember's ISO alpha-3 country code -> the 2-letter zone of the same country (``ZWE`` ->
    ``ZW``). Both codes are known zones but not the same figure when Electricity Maps has the
    2-letter zone: Electricity Maps is life-cycle (``lca``) for its latest year, Ember is direct
    combustion for its own latest year, so ``ZW`` and ``ZWE`` differ by design."""
    table = _annual()
    return {a3: a2 for a2, a3 in table["alpha2_to_alpha3"].items() if a3 in table["ember"]}
