"""Edge benchmark (issue 11): energy per inference of the digits forge candidates, measured on
this CPU and modelled per device, and edge vs cloud at three prediction volumes.

The candidates are the kinds ``greenforge forge --example digits`` produces, built with the same
library calls its recipes make (a 64-128-64-10 MLP baseline, a 32-unit student distilled from
it, the student's ONNX Runtime int8-dynamic and int8-static graphs - per-channel, 7-bit weights -
and its bf16 copy), on scikit-learn's bundled digits (70/30 split, seed 0). Each is exported with
``greenforge.edge.export.export_candidate`` (checked against torch on the test rows), then:

- **here** (measured): ``measure_exports`` - the forge protocol (1 intra-op thread, batch 1,
  interleaved fixed-work rounds with a reference GEMM, the process's own CPU-time attribution),
  ``--budget-s`` CPU seconds; the interval is the protocol's (spread + meter bounds);
- **per device** (``model:``): ``device_energy`` from each profile's published power and
  sustained throughput at the utilisation measured here (never measurements);
- **edge vs cloud**: the int8-dynamic student on a Raspberry Pi 5 in DE vs a cloud CPU in AWS
  eu-north-1 (PUE, network transfer of every request/response), at 1e3, 1e5 and 1e7 predictions
  a day, with the verdict (``within uncertainty`` when the intervals overlap).

Run: ``python benchmarks/bench_edge.py [--budget-s 2]`` (about a minute on a busy 2-core box).
Prints the tables and writes ``benchmarks/results/edge.json``.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from greenforge import jsonsafe
from greenforge.config import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "edge.json"
VOLUMES = (1_000, 100_000, 10_000_000)
EDGE_DEVICE, EDGE_ZONE = "rpi5", "DE"
CLOUD_DEVICE, CLOUD_PROVIDER, CLOUD_REGION = "cloud-cpu", "aws", "eu-north-1"


def _train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, teacher: Any = None) -> None:
    from greenforge.forge.protocol import thread_limit

    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    soft = None
    if teacher is not None:
        with torch.no_grad():
            soft = (teacher(x) / 2.0).softmax(-1)
    with thread_limit(1):
        model.train()
        for _ in range(150):
            opt.zero_grad()
            out = model(x)
            loss = torch.nn.functional.cross_entropy(out, y)
            if soft is not None:
                kd = torch.nn.functional.kl_div(
                    (out / 2.0).log_softmax(-1), soft, reduction="batchmean"
                )
                loss = 0.5 * loss + 0.5 * 4.0 * kd
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        model.eval()


def build_candidates(workdir: Path) -> tuple[dict[str, tuple[Any, str]], Any, Any, Any]:
    """``({name: (served model, precision)}, x_train, x_test, y_test)`` on digits."""
    from sklearn.datasets import load_digits

    from greenforge.forge.compress import Bf16Config, Int8DynamicConfig, Int8StaticConfig, quantize
    from greenforge.forge.models import build_model

    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target)
    torch.manual_seed(0)
    perm = torch.randperm(len(x))
    cut = int(0.7 * len(x))
    tr, te = perm[:cut], perm[cut:]
    base = build_model("mlp", (64,), 10, hidden=(128, 64))
    _train(base, x[tr], y[tr])
    student = build_model("mlp", (64,), 10, hidden=(32,))
    _train(student, x[tr], y[tr], teacher=base)
    calib = [x[tr][i : i + 64] for i in range(0, 512, 64)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out: dict[str, tuple[Any, str]] = {
            "baseline": (base, "fp32"),
            "distill": (student, "fp32"),
            "distill+int8-dynamic": (
                quantize(student, Int8DynamicConfig(), example_inputs=x[tr], workdir=workdir / "d"),
                "int8-dynamic",
            ),
            "distill+int8-static": (
                quantize(
                    student,
                    Int8StaticConfig(),
                    example_inputs=x[tr],
                    workdir=workdir / "s",
                    calibration=calib,
                ),
                "int8-static",
            ),
            "distill+bf16": (
                quantize(student, Bf16Config(), example_inputs=x[tr], workdir=workdir),
                "bf16",
            ),
        }
    return out, x[tr], x[te], y[te]


def _accuracy(model: Any, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def _fmt_bound(b: Any, scale: float = 1.0) -> str:
    return f"{b.central * scale:.3g} [{b.low * scale:.3g}-{b.high * scale:.3g}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=2.0, help="CPU seconds to measure")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from greenforge.edge.compare import DEFAULT_OVERHEAD_BYTES, compare, payload_for
    from greenforge.edge.devices import device_names, get_device
    from greenforge.edge.energy import measure_exports
    from greenforge.edge.export import CandidateInfo, export_candidate
    from greenforge.edge.workflow import cloud_site, estimates_for, zone_site
    from greenforge.federated.network import NetworkCoefficient
    from greenforge.forge.evaluate import count_flops, torch_module

    console = Console(width=220)
    settings = Settings()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp:
        work = Path(tmp)
        cands, _x_train, x_test, y_test = build_candidates(work)
        rows = x_test.numpy()
        files: dict[str, Path] = {}
        exports: dict[str, Any] = {}
        accuracy: dict[str, float] = {}
        for name, (model, precision) in cands.items():
            accuracy[name] = _accuracy(model, x_test, y_test)
            module = torch_module(model)
            flops = count_flops(module if module is not None else model, x_test[:1])
            info = CandidateInfo(name, precision, "bench", (64,), 10, accuracy[name], flops)
            files[name] = work / f"{name}.onnx"
            exports[name] = export_candidate(model, info, files[name], inputs=rows)
        host = measure_exports(files, settings=settings, budget_s=args.budget_s, inputs=rows)
        devices = device_names()
        estimates = estimates_for(host, devices)

        edge_site = zone_site(settings, EDGE_ZONE)
        cloud = cloud_site(settings, CLOUD_PROVIDER, CLOUD_REGION)
        chosen = "distill+int8-dynamic"
        est = dict(zip(devices, estimates[chosen], strict=True))
        payload = payload_for(64, 10, DEFAULT_OVERHEAD_BYTES)
        comparisons = [
            compare(
                n,
                edge_profile=get_device(EDGE_DEVICE),
                edge_estimate=est[EDGE_DEVICE],
                edge_site=edge_site,
                cloud_profile=get_device(CLOUD_DEVICE),
                cloud_estimate=est[CLOUD_DEVICE],
                cloud_site=cloud,
                payload=payload,
                network=NetworkCoefficient(),
            )
            for n in VOLUMES
        ]
    wall = time.perf_counter() - started

    t = Table(title="digits candidates: energy per inference (µJ), here measured, devices model:")
    t.add_column("candidate")
    t.add_column("acc %", justify="right")
    t.add_column("ONNX B", justify="right")
    t.add_column("max|diff|", justify="right")
    t.add_column("here (measured)", justify="right")
    for d in devices:
        t.add_column(f"model:{d}", justify="right")
    for m in host.measurements:
        e = exports[m.candidate]
        t.add_row(
            m.candidate,
            f"{100 * accuracy[m.candidate]:.2f}",
            f"{e.size_bytes:,}",
            f"{e.max_abs_diff:.2g}",
            f"{m.energy_j * 1e6:.3g} [{m.energy_low_j * 1e6:.3g}-{m.energy_high_j * 1e6:.3g}]",
            *[_fmt_bound(x.energy_j, 1e6) for x in estimates[m.candidate]],
        )
    console.print(t)
    c = Table(
        title=f"{chosen}: {EDGE_DEVICE} in {EDGE_ZONE} vs {CLOUD_DEVICE} in {CLOUD_PROVIDER} "
        f"{CLOUD_REGION} (g CO2e/day, model:)"
    )
    for col in ("predictions/day", "edge", "cloud", "cloud/edge", "verdict"):
        c.add_column(col, justify="right")
    for cmp in comparisons:
        c.add_row(
            f"{cmp.predictions_per_day:,}",
            _fmt_bound(cmp.edge.total_g),
            _fmt_bound(cmp.cloud.total_g),
            f"{cmp.ratio:.3g}",
            cmp.verdict,
        )
    console.print(c)
    be = comparisons[0].break_even_predictions_per_day
    console.print(
        "break-even (central estimates): "
        + ("none" if be is None else f"{be:,.0f} predictions/day")
    )
    console.print(f"wall {wall:.0f} s, {host.rounds} rounds, attribution {host.attribution}")

    doc = {
        "benchmark": "edge",
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "budget_s": args.budget_s,
        "wall_s": wall,
        "accuracy": accuracy,
        "exports": {k: v.to_dict() for k, v in exports.items()},
        "host": host.to_dict(),
        "devices": {k: [e.to_dict() for e in v] for k, v in estimates.items()},
        "compare": {
            "candidate": chosen,
            "edge": f"{EDGE_DEVICE} in {EDGE_ZONE}",
            "cloud": f"{CLOUD_DEVICE} in {CLOUD_PROVIDER} {CLOUD_REGION}",
            "volumes": [cmp.to_dict() for cmp in comparisons],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(jsonsafe.dumps(doc, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
