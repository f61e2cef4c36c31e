"""Build GreenForge's embedded hardware tables from the reference data.

Reads ``../shared/data/hardware`` and ``../shared/data/cloud`` (beside the repository) and
writes compact files into ``src/greenforge/hardware/data/``:

- ``cpu_tdp.csv``: ``name,tdp_w,threads_per_package`` (threads from SPECpower where the model
  appears there, else empty). Source: codecarbon ``cpu_power.csv`` (MIT) + SPECpower (via CCF,
  Apache-2.0).
- ``cloud.json``: per-vCPU min/max watts by micro-architecture per provider, instance types
  (vCPUs, memory, CPU, micro-architecture, platform vCPUs, platform embodied kgCO2e), and the
  SPECpower active-idle / full-load ratio distribution used by the CPU power curve.
  Source: cloud-carbon-footprint/ccf-coefficients (Apache-2.0), Teads dataset, spec.org.

Run: ``python scripts/build_hardware_tables.py`` (deterministic; re-running changes nothing).
"""

from __future__ import annotations

import csv
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
OUT = ROOT / "src" / "greenforge" / "hardware" / "data"

# Platform CPU name (AWS lists names, not micro-architectures) -> CCF micro-architecture.
# Ordered: first match wins.
AWS_ARCH_PATTERNS: list[tuple[str, str]] = [
    (r"graviton4", "Graviton4"),
    (r"graviton3e", "Graviton3E"),
    (r"graviton3", "Graviton3"),
    (r"graviton2", "Graviton2"),
    (r"annapurna labs graviton", "Graviton2"),
    (r"granite rapids", "Granite Rapids"),
    (r"emerald rapids", "Emerald Rapids"),
    (r"sapphire rapids", "Sapphire Rapids"),
    (r"ice lake|8375c", "Ice Lake"),
    (r"cascade lake|8259c|8259l|8275cl|8252c|8280l", "Cascade Lake"),
    (r"skylake|8175|8124m|8176m|8151", "Skylake"),
    (r"broadwell|e5-2686 v4|e7-8880 v4", "Broadwell"),
    (r"haswell|e5-2666 v3|e5-2676 v3|e7[ -]8880 ?v3", "Haswell"),
    (r"e5-2680 v2|e5-2651 v2", "Ivy Bridge"),
    (r"e5-2670|e5-2665", "Sandy Bridge"),
    (r"i7-8700b", "Coffee Lake"),
    (r"epyc 7571", "EPYC 1st Gen"),
    (r"epyc 7r32", "EPYC 2nd Gen"),
    (r"epyc 7r13", "EPYC 3rd Gen"),
    (r"epyc 9r14", "EPYC 4th Gen"),
    (r"epyc 9r45|epyc 9r05", "EPYC 5th Gen"),
]


INSTANCE_FIELDS = ("vcpus", "memory_gb", "cpu", "arch", "platform_vcpus", "platform_embodied_kg")


def _num(text: str) -> float:
    return float(text.replace(",", ".").strip())


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9+]+", " ", name.lower()).strip()


def aws_arch(cpu_name: str) -> str:
    low = cpu_name.lower()
    for pattern, arch in AWS_ARCH_PATTERNS:
        if re.search(pattern, low):
            return arch
    return ""


def build_cpu_table() -> list[tuple[str, float, int | None]]:
    spec_threads: dict[str, int] = {}
    for row in _rows(SHARED / "hardware" / "SPECpower-2026-03-09.csv"):
        try:
            chips = int(float(row["Chips"]))
            threads = int(float(row["Total Threads"]))
        except ValueError:
            continue
        if chips > 0 and threads > 0:
            key = _norm(row["CPU Description"].replace("Processor", ""))
            spec_threads.setdefault(key, threads // chips)
    out: dict[str, tuple[str, float, int | None]] = {}
    for row in _rows(SHARED / "hardware" / "cpu_tdp.csv"):
        name = " ".join(row["Name"].split())
        try:
            tdp = float(row["TDP"])
        except ValueError:
            continue
        if not name or tdp <= 0:
            continue
        key = _norm(name)
        pkg_threads: int | None = spec_threads.get(key) or spec_threads.get(
            _norm("Intel Xeon " + name)
        )
        out.setdefault(key, (name, tdp, pkg_threads))
    return sorted(out.values(), key=lambda r: r[0].lower())


def build_specpower_ratio() -> dict[str, float | int]:
    ratios = []
    for row in _rows(SHARED / "hardware" / "SPECpower-2026-03-09.csv"):
        try:
            full = float(row["avg. watts @ 100%"])
            idle = float(row["avg. watts @ active idle"])
        except ValueError:
            continue
        if full > 0 and 0 < idle < full:
            ratios.append(idle / full)
    ratios.sort()
    q = statistics.quantiles(ratios, n=10)
    return {
        "p10": round(q[0], 4),
        "p50": round(statistics.median(ratios), 4),
        "p90": round(q[-1], 4),
        "n": len(ratios),
    }


def build_use() -> dict[str, dict[str, list[float]]]:
    use: dict[str, dict[str, list[float]]] = {}
    for provider in ("aws", "gcp", "azure"):
        table = {}
        for row in _rows(SHARED / "cloud" / f"coefficients-{provider}-use.csv"):
            table[row["Architecture"]] = [
                round(_num(row["Min Watts"]), 6),
                round(_num(row["Max Watts"]), 6),
            ]
        use[provider] = table
    return use


def _embodied(path: Path, type_col: str, total_col: str) -> dict[str, float]:
    return {r[type_col]: _num(r[total_col]) for r in _rows(path)}


def build_instances() -> dict[str, dict[str, dict[str, object]]]:
    cloud = SHARED / "cloud"
    out: dict[str, dict[str, dict[str, object]]] = {"aws": {}, "gcp": {}, "azure": {}}

    emb = _embodied(cloud / "coefficients-aws-embodied.csv", "type", "total")
    aws = _rows(cloud / "aws-instances-latest-2026.csv")
    family_max: dict[str, int] = {}
    for r in aws:
        fam = r["Instance Type"].split(".")[0]
        family_max[fam] = max(family_max.get(fam, 0), int(_num(r["vCPUs"])))
    for r in aws:
        itype = r["Instance Type"].strip()
        vcpus = int(_num(r["vCPUs"]))
        cpu = r["Platform CPU Name"].strip()
        platform_kg = emb.get(itype)
        if platform_kg is None and r["Platform Embedded Emissions (mtCo2eq)"].strip():
            platform_kg = _num(r["Platform Embedded Emissions (mtCo2eq)"]) * 1000.0
        out["aws"][itype] = {
            "vcpus": vcpus,
            "memory_gb": _num(r["Memory (GiB)"]) if r["Memory (GiB)"].strip() else None,
            "cpu": cpu,
            "arch": aws_arch(cpu),
            "platform_vcpus": family_max[itype.split(".")[0]],
            "platform_embodied_kg": platform_kg,
        }

    emb = _embodied(cloud / "coefficients-gcp-embodied-mean.csv", "type", "total_mean")
    gcp = _rows(cloud / "gcp-instances-latest-2026.csv")
    platform_max: dict[str, int] = {}
    for r in gcp:
        platform_max[r["Platform"]] = max(
            platform_max.get(r["Platform"], 0), int(_num(r["Instance vCPU"]))
        )
    for r in gcp:
        itype = r["Instance Type"].strip()
        platform_kg = emb.get(itype)
        if platform_kg is None and r["Platform Embedded Emissions (kgCo2eq)"].strip():
            platform_kg = _num(r["Platform Embedded Emissions (kgCo2eq)"])
        out["gcp"][itype] = {
            "vcpus": int(_num(r["Instance vCPU"])),
            "memory_gb": _num(r["Instance Memory"]) if r["Instance Memory"].strip() else None,
            "cpu": r["CPU Name"].strip(),
            "arch": r["Microarchitecture"].strip(),
            "platform_vcpus": platform_max[r["Platform"]],
            "platform_embodied_kg": platform_kg,
        }

    emb = _embodied(cloud / "coefficients-azure-embodied.csv", "type", "total")
    for r in _rows(cloud / "azure-instances.csv"):
        itype = r["Virtual Machine"].strip()
        arch = r["Microarchitecture"].strip()
        n_vcpus = _num(r["Instance vCPUs"])
        constrained = re.match(r"^[A-Za-z]+\d+-(\d+)", itype)
        if n_vcpus < 1 and constrained:  # "Constrained vCPUs" rows give a ratio; name has count
            n_vcpus = float(constrained.group(1))
        out["azure"][itype] = {
            "vcpus": max(int(n_vcpus), 1),
            "memory_gb": _num(r["Instance Memory"]) if r["Instance Memory"].strip() else None,
            "cpu": "",
            "arch": "" if arch == "Unknown" else arch,
            "platform_vcpus": int(_num(r["Platform vCPUs (highest vCPU possible)"])),
            "platform_embodied_kg": emb.get(itype),
        }
    return out


def main() -> int:
    if not SHARED.is_dir():
        print(f"reference data not found at {SHARED}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    cpus = build_cpu_table()
    with (OUT / "cpu_tdp.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["name", "tdp_w", "threads_per_package"])
        for name, tdp, threads in cpus:
            w.writerow([name, f"{tdp:g}", "" if threads is None else threads])
    instances = {
        provider: {t: [rec[f] for f in INSTANCE_FIELDS] for t, rec in sorted(table.items())}
        for provider, table in build_instances().items()
    }
    cloud: dict[str, object] = {
        "sources": {
            "cpu_tdp": "codecarbon cpu_power.csv (MIT), from Intel ARK / AMD",
            "use": "cloud-carbon-footprint/ccf-coefficients coefficients-*-use.csv (Apache-2.0)",
            "instances": "ccf-coefficients instance lists and embodied coefficients "
            "(Apache-2.0; Teads dataset)",
            "specpower": "SPECpower_ssj2008 published results via ccf-coefficients",
        },
        "specpower_idle_ratio": build_specpower_ratio(),
        "use_w_per_vcpu": build_use(),
        "instance_fields": list(INSTANCE_FIELDS),
        "instances": instances,
    }
    (OUT / "cloud.json").write_text(
        json.dumps(cloud, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    n_inst = sum(len(v) for v in instances.values())
    print(f"wrote {len(cpus)} CPUs and {n_inst} cloud instance types to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
