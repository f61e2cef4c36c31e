"""Build GreenForge's embedded grid tables from the reference data in ``../shared/data``.

Outputs (committed, compact) in ``src/greenforge/grid/data/``:

- ``annual.json.gz``: Electricity Maps yearly zone averages (2021-2025, life-cycle basis),
  Ember country averages (ISO alpha-3, with an alpha-2 -> alpha-3 map) and zone names.
- ``cloud_regions.json``: AWS / GCP / Azure region -> Electricity Maps zone, with the cloud
  provider's published grid factor where the reference tables have one.
- ``profiles.npz`` + ``profiles.json``: typical hourly profiles for the 16 zones with hourly
  data (month x hour-of-day x weekday/weekend, quantiles 5..95 %), direct and LCA basis,
  indexed in local *standard* time.

Run: ``python scripts/build_grid_tables.py [--data ../shared/data]``. Needs ``pycountry`` at
build time only (the alpha-2/alpha-3 map is embedded).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "greenforge" / "grid" / "data"
YEARS = (2021, 2022, 2023, 2024, 2025)
QUANTILES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
# Local standard-time offsets (hours) of the 16 hourly zones; DST is deliberately ignored so the
# index is a pure function of UTC time.
STANDARD_OFFSET_H = {
    "AU-NSW": 10.0,
    "AU-VIC": 10.0,
    "BR-CS": -3.0,
    "CA-ON": -5.0,
    "CL-SEN": -4.0,
    "DE": 1.0,
    "GB": 0.0,
    "IN-WE": 5.5,
    "JP-TK": 9.0,
    "KR": 9.0,
    "SG": 8.0,
    "US-CAL-CISO": -8.0,
    "US-MIDA-PJM": -5.0,
    "US-NY-NYIS": -5.0,
    "US-TEX-ERCO": -6.0,
    "ZA": 2.0,
}
# Does the weekend matter? The statistic is the mean absolute difference, over month x hour, of
# the median intensity of two day groups, as a share of the zone's mean. Weekend (Sat+Sun) vs
# weekdays is compared with a noise baseline of the same group size: Mon+Tue vs Thu+Fri. A zone
# keeps separate weekday/weekend profiles when the weekend difference is above 2 % of the mean
# AND at least 1.5x the weekday-vs-weekday baseline; otherwise one all-days profile serves both.
WEEKEND_MIN_SHARE = 0.02
WEEKEND_MIN_RATIO = 1.5

# Cloud region -> (Electricity Maps zone, location). The location/country columns of the
# reference tables tell where each region is; the grid zone is the balancing area / bidding
# zone that serves that location.
AWS_ZONES = {
    "us-east-1": ("US-MIDA-PJM", "N. Virginia"),
    "us-east-2": ("US-MIDA-PJM", "Ohio"),
    "us-west-1": ("US-CAL-CISO", "N. California"),
    "us-west-2": ("US-NW-BPAT", "Oregon"),
    "us-gov-east-1": ("US-MIDA-PJM", "Ohio"),
    "us-gov-west-1": ("US-CAL-CISO", "California"),
    "af-south-1": ("ZA", "Cape Town"),
    "ap-east-1": ("HK", "Hong Kong"),
    "ap-south-1": ("IN-WE", "Mumbai"),
    "ap-south-2": ("IN-SO", "Hyderabad"),
    "ap-northeast-1": ("JP-TK", "Tokyo"),
    "ap-northeast-2": ("KR", "Seoul"),
    "ap-northeast-3": ("JP-KN", "Osaka"),
    "ap-southeast-1": ("SG", "Singapore"),
    "ap-southeast-2": ("AU-NSW", "Sydney"),
    "ap-southeast-3": ("ID", "Jakarta"),
    "ap-southeast-4": ("AU-VIC", "Melbourne"),
    "ap-southeast-5": ("MY-WM", "Malaysia"),
    "ca-central-1": ("CA-QC", "Montreal"),
    "ca-west-1": ("CA-AB", "Calgary"),
    "cn-north-1": ("CN", "Beijing"),
    "cn-northwest-1": ("CN", "Ningxia"),
    "eu-central-1": ("DE", "Frankfurt"),
    "eu-central-2": ("CH", "Zurich"),
    "eu-west-1": ("IE", "Ireland"),
    "eu-west-2": ("GB", "London"),
    "eu-west-3": ("FR", "Paris"),
    "eu-south-1": ("IT-NO", "Milan"),
    "eu-south-2": ("ES", "Spain"),
    "eu-north-1": ("SE-SE3", "Stockholm"),
    "il-central-1": ("IL", "Tel Aviv"),
    "me-south-1": ("BH", "Bahrain"),
    "me-central-1": ("AE", "UAE"),
    "sa-east-1": ("BR-CS", "Sao Paulo"),
}
GCP_ZONES = {
    "africa-south1": ("ZA", "Johannesburg"),
    "asia-east1": ("TW", "Changhua County"),
    "asia-east2": ("HK", "Hong Kong"),
    "asia-northeast1": ("JP-TK", "Tokyo"),
    "asia-northeast2": ("JP-KN", "Osaka"),
    "asia-northeast3": ("KR", "Seoul"),
    "asia-south1": ("IN-WE", "Mumbai"),
    "asia-south2": ("IN-NO", "Delhi"),
    "asia-southeast1": ("SG", "Jurong West"),
    "asia-southeast2": ("ID", "Jakarta"),
    "australia-southeast1": ("AU-NSW", "Sydney"),
    "australia-southeast2": ("AU-VIC", "Melbourne"),
    "europe-central2": ("PL", "Warsaw"),
    "europe-north1": ("FI", "Hamina"),
    "europe-southwest1": ("ES", "Madrid"),
    "europe-west1": ("BE", "St. Ghislain"),
    "europe-west2": ("GB", "London"),
    "europe-west3": ("DE", "Frankfurt"),
    "europe-west4": ("NL", "Eemshaven"),
    "europe-west6": ("CH", "Zurich"),
    "europe-west8": ("IT-NO", "Milan"),
    "europe-west9": ("FR", "Paris"),
    "europe-west10": ("DE", "Berlin"),
    "europe-west12": ("IT-NO", "Turin"),
    "me-central1": ("QA", "Doha"),
    "me-central2": ("SA", "Dammam"),
    "me-west1": ("IL", "Tel Aviv"),
    "northamerica-northeast1": ("CA-QC", "Montreal"),
    "northamerica-northeast2": ("CA-ON", "Toronto"),
    "southamerica-east1": ("BR-CS", "Sao Paulo"),
    "southamerica-west1": ("CL-SEN", "Santiago"),
    "us-central1": ("US-MIDW-MISO", "Council Bluffs, Iowa"),
    "us-east1": ("US-CAR-SCEG", "Moncks Corner, South Carolina"),
    "us-east4": ("US-MIDA-PJM", "Ashburn, Northern Virginia"),
    "us-east5": ("US-MIDA-PJM", "Columbus, Ohio"),
    "us-south1": ("US-TEX-ERCO", "Dallas, Texas"),
    "us-west1": ("US-NW-BPAT", "The Dalles, Oregon"),
    "us-west2": ("US-CAL-LDWP", "Los Angeles"),
    "us-west3": ("US-NW-PACE", "Salt Lake City"),
    "us-west4": ("US-NW-NEVP", "Las Vegas"),
}
# Azure: programmatic names (lower case, no spaces), as `az account list-locations` shows them.
AZURE_ZONES = {
    "centralus": ("US-MIDW-MISO", "Iowa"),
    "eastus": ("US-MIDA-PJM", "Virginia"),
    "eastus2": ("US-MIDA-PJM", "Virginia"),
    "eastus3": ("US-SE-SOCO", "Georgia"),
    "northcentralus": ("US-MIDA-PJM", "Illinois"),
    "southcentralus": ("US-TEX-ERCO", "Texas"),
    "westcentralus": ("US-NW-WACM", "Wyoming"),
    "westus": ("US-CAL-CISO", "California"),
    "westus2": ("US-NW-BPAT", "Washington"),
    "westus3": ("US-SW-SRP", "Arizona"),
    "canadacentral": ("CA-ON", "Toronto"),
    "canadaeast": ("CA-QC", "Quebec City"),
    "brazilsouth": ("BR-CS", "Sao Paulo"),
    "eastasia": ("HK", "Hong Kong"),
    "southeastasia": ("SG", "Singapore"),
    "japaneast": ("JP-TK", "Tokyo"),
    "japanwest": ("JP-KN", "Osaka"),
    "koreacentral": ("KR", "Seoul"),
    "australiaeast": ("AU-NSW", "New South Wales"),
    "australiasoutheast": ("AU-VIC", "Victoria"),
    "centralindia": ("IN-WE", "Pune"),
    "southindia": ("IN-SO", "Chennai"),
    "westindia": ("IN-WE", "Mumbai"),
    "northeurope": ("IE", "Ireland"),
    "westeurope": ("NL", "Netherlands"),
    "uksouth": ("GB", "London"),
    "ukwest": ("GB", "Cardiff"),
    "francecentral": ("FR", "Paris"),
    "finlandcentral": ("FI", "Helsinki"),
    "germanywestcentral": ("DE", "Frankfurt"),
    "belgiumcentral": ("BE", "Brussels"),
    "swedencentral": ("SE-SE3", "Gavle"),
    "switzerlandnorth": ("CH", "Zurich"),
    "norwayeast": ("NO-NO1", "Oslo"),
    "polandcentral": ("PL", "Warsaw"),
    "italynorth": ("IT-NO", "Milan"),
    "spaincentral": ("ES", "Madrid"),
    "southafricanorth": ("ZA", "Johannesburg"),
    "uaenorth": ("AE", "Dubai"),
    "qatarcentral": ("QA", "Doha"),
    "israelcentral": ("IL", "Israel"),
}


def _factor_table(path: Path) -> dict[str, float]:
    """Region -> published grid factor (g/kWh) from a cloud-carbon-footprint CSV."""
    out: dict[str, float] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            raw = (row.get("CO2e (metric ton/kWh)") or "").strip()
            try:
                value = float(raw)
            except ValueError:
                continue
            # A few Azure rows lost their "0." prefix ("000402"): those are not usable factors.
            if raw.startswith("0.") and 0 < value < 0.01:
                out[row["Region"].strip()] = round(value * 1e6, 2)
    return out


def _gcp_impact(path: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            try:
                out[row["region"].strip()] = float(row["impact"])
            except (KeyError, ValueError):
                continue
    return out


def build_annual(data: Path) -> dict[str, object]:
    import pycountry

    yearly = data / "grid" / "yearly"
    zones: dict[str, dict[str, object]] = {}
    for year in YEARS:
        table = json.loads((yearly / f"electricitymaps_yearly_{year}.json").read_text("utf-8"))
        for zone, entry in table.items():
            value = entry.get("carbonIntensity", {}).get("value")
            if value is None:
                continue
            z = zones.setdefault(zone, {"name": entry.get("zone", {}).get("zoneName", zone)})
            z.setdefault("g_per_kwh", {})[str(year)] = float(value)  # type: ignore[index]
    ember_raw = json.loads((yearly / "ember_country_averages.json").read_text("utf-8"))
    ember: dict[str, dict[str, object]] = {}
    regions: dict[str, dict[str, object]] = {}
    for key, entry in ember_raw.items():
        item = {
            "name": entry["country_or_region"],
            "year": int(entry["year"]),
            "g_per_kwh": float(entry["emissions_intensity_gco2_per_kwh"]),
        }
        if entry.get("country_code"):
            ember[entry["country_code"]] = item
        else:
            regions[key] = item
    alpha2 = {c.alpha_2: c.alpha_3 for c in pycountry.countries}
    return {
        "electricitymaps": zones,
        "ember": ember,
        "ember_regions": regions,
        "alpha2_to_alpha3": {a2: a3 for a2, a3 in sorted(alpha2.items()) if a3 in ember},
    }


def build_cloud(data: Path, annual: dict[str, object]) -> dict[str, object]:
    cloud = data / "cloud"
    em = annual["electricitymaps"]
    assert isinstance(em, dict)
    factors = {
        "aws": _factor_table(cloud / "grid-emissions-factors-aws.csv"),
        "gcp": _factor_table(cloud / "grid-emissions-factors-gcp.csv"),
        "azure": {
            k.lower().replace(" ", ""): v
            for k, v in _factor_table(cloud / "grid-emissions-factors-azure.csv").items()
        },
    }
    gcp_impact = _gcp_impact(cloud / "gcp-region-impact.csv")
    out: dict[str, object] = {}
    for provider, table in (("aws", AWS_ZONES), ("gcp", GCP_ZONES), ("azure", AZURE_ZONES)):
        regions: dict[str, object] = {}
        for region, (zone, location) in sorted(table.items()):
            if zone not in em:
                raise SystemExit(f"{provider} {region}: zone {zone} not in Electricity Maps table")
            item: dict[str, object] = {"zone": zone, "location": location}
            if region in factors[provider]:
                item["ccf_g_per_kwh"] = factors[provider][region]
            if provider == "gcp" and region in gcp_impact:
                item["google_g_per_kwh"] = gcp_impact[region]
            regions[region] = item
        out[provider] = regions
    return out


def _read_hourly(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    t = np.array([r["Datetime (UTC)"] for r in rows], dtype="datetime64[s]").astype(np.int64)
    direct = np.array([float(r["Carbon Intensity gCO₂eq/kWh (direct)"]) for r in rows])
    lca = np.array([float(r["Carbon Intensity gCO₂eq/kWh (LCA)"]) for r in rows])
    return t, direct, lca


def _median_share(
    values: np.ndarray, month: np.ndarray, hour: np.ndarray, a: np.ndarray, b: np.ndarray
) -> float:
    """Mean |median(a) - median(b)| over month x hour cells, as a share of the mean value."""
    diffs = []
    for m in range(12):
        for h in range(24):
            cell = (month == m) & (hour == h)
            diffs.append(
                abs(float(np.median(values[cell & a])) - float(np.median(values[cell & b])))
            )
    return float(np.mean(diffs) / np.mean(values))


def build_profiles(data: Path) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    hourly = data / "grid" / "hourly"
    zones = sorted(STANDARD_OFFSET_H)
    nq = len(QUANTILES)
    # [zone, basis(direct, lca), daytype(weekday, weekend), month, hour, quantile]
    table = np.zeros((len(zones), 2, 2, 12, 24, nq), dtype=np.float64)
    meta: dict[str, object] = {}
    for zi, zone in enumerate(zones):
        parts = [_read_hourly(p) for p in sorted(hourly.glob(f"{zone}_*_hourly.csv.gz"))]
        t = np.concatenate([p[0] for p in parts]).astype(np.float64)
        years = sorted({p.name.split("_")[1] for p in hourly.glob(f"{zone}_*_hourly.csv.gz")})
        local = t + STANDARD_OFFSET_H[zone] * 3600.0
        month = local.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12
        hour = (np.floor(local / 3600.0) % 24).astype(np.int64)
        dow = (np.floor(local / 86400.0).astype(np.int64) + 3) % 7  # Monday = 0
        weekend = dow >= 5
        lca_all = np.concatenate([p[2] for p in parts])

        weekend_share = _median_share(lca_all, month, hour, ~weekend, weekend)
        baseline_share = _median_share(
            lca_all, month, hour, (dow == 0) | (dow == 1), (dow == 3) | (dow == 4)
        )
        split = weekend_share > WEEKEND_MIN_SHARE and weekend_share >= (
            WEEKEND_MIN_RATIO * baseline_share
        )
        for bi, values in enumerate((np.concatenate([p[1] for p in parts]), lca_all)):
            for m in range(12):
                for h in range(24):
                    cell = (month == m) & (hour == h)
                    if split:
                        for di, mask in enumerate((~weekend, weekend)):
                            table[zi, bi, di, m, h] = np.quantile(values[cell & mask], QUANTILES)
                    else:
                        table[zi, bi, :, m, h] = np.quantile(values[cell], QUANTILES)
        meta[zone] = {
            "standard_offset_h": STANDARD_OFFSET_H[zone],
            "years": years,
            "weekend_median_diff_share": round(weekend_share, 4),
            "weekday_baseline_diff_share": round(baseline_share, 4),
            "weekday_weekend_split": split,
        }
    arrays = {
        "zones": np.array(zones),
        "quantiles": np.array(QUANTILES),
        # 0.1 g/kWh resolution is far finer than the data's uncertainty; uint16 keeps it small.
        "values_dg_per_kwh": np.round(table * 10.0).astype(np.uint16),
    }
    return arrays, meta


def build(data: Path, out: Path) -> list[Path]:
    """Write every embedded table into ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    annual = build_annual(data)
    blob = json.dumps(annual, sort_keys=True, separators=(",", ":")).encode("utf-8")
    (out / "annual.json.gz").write_bytes(gzip.compress(blob, mtime=0))
    cloud = build_cloud(data, annual)
    (out / "cloud_regions.json").write_text(json.dumps(cloud, indent=1, sort_keys=True) + "\n")
    arrays, meta = build_profiles(data)
    np.savez_compressed(out / "profiles.npz", **arrays)  # type: ignore[arg-type]
    info = {
        "source": "Electricity Maps data portal hourly exports (ODbL), 2021-2023",
        "time_index": "local standard time (UTC + standard_offset_h, no daylight saving)",
        "weekend_rule": (
            f"separate weekday/weekend profiles when the weekend median difference is above "
            f"{WEEKEND_MIN_SHARE:.0%} of the mean and at least {WEEKEND_MIN_RATIO}x the "
            "Mon+Tue vs Thu+Fri baseline"
        ),
        "zones": meta,
    }
    (out / "profiles.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return sorted(out.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    for p in build(args.data, args.out):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
