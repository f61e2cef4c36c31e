"""The self-contained HTML page of a federated run's carbon ledger (``greenforge report --ledger``).

:func:`ledger_summary` gathers the ledger's own aggregates (:meth:`Ledger.total`,
:meth:`Ledger.by`, :meth:`Ledger.cumulative`, :meth:`Ledger.participation`,
:meth:`Ledger.zone_participation`, :meth:`Ledger.metric`) into one JSON-ready document - what
``greenforge report --ledger --json`` prints - and :func:`ledger_report` draws that same
document with the inline-SVG helpers of :mod:`greenforge.report.html` (same page, Okabe-Ito
palette and escaping rules: no scripts, nothing fetched at view time). Headline numbers carry
ids (``ledger-co2e``, ``ledger-bounds``, ``ledger-energy``, ``ledger-rounds``,
``ledger-network``, ``ledger-aggregation``, ``ledger-selection``) that the tests compare with
the ledger.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from greenforge.errors import DataError
from greenforge.federated.ledger import Ledger, LedgerEntry, Total
from greenforge.report.html import (
    OKABE_ITO,
    _card,
    _e,
    _page,
    _table,
    _utc,
    fmt_energy_j,
    fmt_energy_kwh,
    integer_ticks,
    svg_hbars,
    svg_lines,
    svg_stacked_bars,
)

COMPONENTS: tuple[tuple[str, str, str], ...] = (
    ("train_compute_g", "clients' training (compute)", OKABE_ITO["blue"]),
    ("evaluate_compute_g", "clients' evaluation (compute)", OKABE_ITO["sky"]),
    ("network_g", "network (bytes down and up)", OKABE_ITO["orange"]),
    ("aggregation_g", "server aggregation", OKABE_ITO["vermillion"]),
)
"""The parts a round's CO2e is stacked by: (summary key, legend name, colour)."""

_METRIC_PHASE_NAMES = {
    "central": "server-side evaluation",
    "evaluate": "clients' evaluation (aggregated)",
    "train": "clients' training (aggregated)",
}


def fmt_mass(co2e_g: float, grams: float | None = None, unit: str = "") -> str:
    """Returns a CO2e mass as ``"1.234 mg"`` (4 significant digits) in the unit its own size
    reads best in, or in ``unit`` (``grams`` per unit) when given; ``-`` when not finite."""
    from greenforge.forge.output import mass_unit

    if not math.isfinite(co2e_g):
        return "-"
    if grams is None:
        unit, grams = mass_unit([co2e_g])
    return f"{co2e_g / grams:.4g} {unit}"


def fmt_bytes(n: float) -> str:
    """Returns a byte count in decimal units (``"1.23 MB"``, 3 significant digits)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 and math.isfinite(part) else None


def _fmt_share(share: object) -> str:
    return f"{100.0 * share:.1f} %" if isinstance(share, float) else "-"


def _compute_g(t: Total | None) -> float:
    return 0.0 if t is None else t.co2e_g - t.network_co2e_g


def _round_parts(ledger: Ledger, entries: Sequence[LedgerEntry]) -> dict[str, float]:
    """The round's CO2e split into :data:`COMPONENTS` from :meth:`Ledger.by` ``phase``."""
    phase = {t.key: t for t in ledger.by("phase", entries)}
    clients = [t for k, t in phase.items() if not k.startswith("aggregate-")]
    return {
        "train_compute_g": _compute_g(phase.get("train")),
        "evaluate_compute_g": _compute_g(phase.get("evaluate")),
        "network_g": math.fsum(t.network_co2e_g for t in clients),
        "aggregation_g": math.fsum(
            t.co2e_g for k, t in phase.items() if k.startswith("aggregate-")
        ),
    }


def ledger_summary(ledger: Ledger) -> dict[str, Any]:
    """Returns the aggregates of ``ledger`` as one JSON-ready document (CO2e in g, energy in J,
    shares 0-1): headline, per round (with its cumulative figure and its CO2e by component),
    per client, per zone and per phase (with low/high bounds), participation and the fairness
    floor, aggregated metrics, and the selection's plans. Every total comes from the ledger's
    own aggregation methods."""
    if not ledger.entries:
        raise DataError(
            f"ledger {ledger.id} ({ledger.path}) has no entries: no round has finished yet; "
            "report it after the first round."
        )
    meta = ledger.metadata
    total = ledger.total()
    server = ledger.total(e for e in ledger.entries if e.client == "server")
    zones = ledger.zones()
    parts = ledger.participation(zones)
    by_zone_parts = ledger.zone_participation()
    per_round: dict[int, list[LedgerEntry]] = {}
    for e in ledger.entries:
        per_round.setdefault(e.round, []).append(e)
    cumulative = {r: (c, lo, hi) for r, c, lo, hi in ledger.cumulative()}

    by_round: list[dict[str, Any]] = []
    for t in sorted(ledger.by("round"), key=lambda t: int(t.key)):
        r = int(t.key)
        entries = per_round[r]
        c, lo, hi = cumulative[r]
        by_round.append(
            {
                **t.to_dict(),
                "round": r,
                "hour_s": min(e.hour_s for e in entries),
                "clients": sum(1 for e in entries if e.client != "server" and e.phase == "train"),
                "cumulative_g": c,
                "cumulative_low_g": lo,
                "cumulative_high_g": hi,
                **_round_parts(ledger, entries),
            }
        )
    seen = {t.key: t for t in ledger.by("client")}
    by_client = [
        {
            **(seen.get(c) or dataclasses.replace(ledger.total(()), key=c)).to_dict(),
            "zone": zones.get(c, ""),
            "rounds": parts.get(c, 0),
        }
        for c in [*zones, *(k for k in seen if k not in zones and k != "server")]
    ]
    if "server" in seen:
        by_client.append(
            {**seen["server"].to_dict(), "zone": meta.get("server_zone", ""), "rounds": 0}
        )
    by_zone = [
        {
            **t.to_dict(),
            "clients": by_zone_parts.get(t.key, (0, 0))[0],
            "rounds": by_zone_parts.get(t.key, (0, 0))[1],
        }
        for t in ledger.by("zone")
    ]
    selection = meta.get("selection") if isinstance(meta.get("selection"), Mapping) else None
    train_rounds = len({e.round for e in ledger.clients("train")})
    fairness: dict[str, Any] | None = None
    if selection is not None and isinstance(selection.get("min_share"), (int, float)):
        min_share = float(selection["min_share"])
        floor = int(min_share * train_rounds + 1e-9)
        fairness = {
            "min_share": min_share,
            "rounds": train_rounds,
            "floor": floor,
            "below_floor": sorted(c for c, n in parts.items() if n < floor),
        }
    return {
        "ledger": {
            "id": ledger.id,
            "path": None if ledger.path is None else str(ledger.path),
            "created_s": ledger.created_s,
            "strategy": meta.get("strategy"),
            "clock": meta.get("clock"),
            "server_zone": meta.get("server_zone"),
            "selection": selection,
            "network": meta.get("network"),
            "intensity_sources": sorted({e.intensity_source for e in ledger.entries} - {""}),
            "methods": sorted({e.method for e in ledger.entries} - {""}),
            "example": meta.get("example"),
            "stopped": ledger.stopped,
        },
        "headline": {
            "co2e_g": total.co2e_g,
            "low_g": total.low_g,
            "high_g": total.high_g,
            "energy_j": total.energy_j,
            "network_energy_j": total.network_energy_j,
            "rounds": len(by_round),
            "clients": len(zones),
            "bytes_down": total.bytes_down,
            "bytes_up": total.bytes_up,
            "network_co2e_g": total.network_co2e_g,
            "network_share": _share(total.network_co2e_g, total.co2e_g),
            "aggregation_co2e_g": server.co2e_g,
            "aggregation_share": _share(server.co2e_g, total.co2e_g),
        },
        "total": total.to_dict(),
        "by_round": by_round,
        "by_client": by_client,
        "by_zone": by_zone,
        "by_phase": [t.to_dict() for t in ledger.by("phase")],
        "participation": parts,
        "fairness": fairness,
        "metrics": [dataclasses.asdict(m) for m in ledger.metrics],
        "plans": [dataclasses.asdict(p) for p in ledger.plans],
    }


# --------------------------------------------------------------------------- page


def _headline(doc: Mapping[str, Any]) -> str:
    from greenforge.forge.output import mass_unit

    h, info = doc["headline"], doc["ledger"]
    unit, grams = mass_unit([h["co2e_g"]])
    sel = info.get("selection")
    if isinstance(sel, Mapping):
        selection = f"{sel.get('policy', '?')}" + (
            f" ({sel.get('rule')})" if sel.get("policy") == "carbon" else ""
        )
        sel_small = (
            f"{sel.get('clients_per_round')} clients per round, min share "
            f"{sel.get('min_share')}, slack {sel.get('slack_h')} h, forecast "
            f"{sel.get('forecaster')}"
            + (f", budget {sel.get('budget_co2e_g')} g" if sel.get("budget_co2e_g") else "")
        )
    else:
        selection, sel_small = "the strategy's own", "no carbon-aware selection recorded"
    cards = [
        _card("total CO2e", fmt_mass(h["co2e_g"]), "compute + network + server aggregation",
              "ledger-co2e"),
        _card("low-high", f"{h['low_g'] / grams:.4g}-{h['high_g'] / grams:.4g} {unit}",
              "energy bounds and the network coefficient range, added", "ledger-bounds"),
        _card("energy", fmt_energy_j(h["energy_j"]),
              f"{fmt_energy_kwh(h['energy_j'])} compute; network "
              f"{fmt_energy_j(h['network_energy_j'])} more", "ledger-energy"),
        _card("rounds", str(h["rounds"]), f"{h['clients']} clients, {info.get('clock')} clock",
              "ledger-rounds"),
        _card("network share", _fmt_share(h["network_share"]),
              f"{fmt_mass(h['network_co2e_g'])}; {fmt_bytes(h['bytes_down'])} down, "
              f"{fmt_bytes(h['bytes_up'])} up", "ledger-network"),
        _card("aggregation share", _fmt_share(h["aggregation_share"]),
              f"server aggregation {fmt_mass(h['aggregation_co2e_g'])} in "
              f"{info.get('server_zone')}", "ledger-aggregation"),
        _card("selection", selection, sel_small, "ledger-selection"),
    ]  # fmt: skip
    return '<div class="headline">' + "".join(cards) + "</div>"


def _facts(doc: Mapping[str, Any]) -> str:
    info = doc["ledger"]
    rows: list[tuple[str, str]] = [
        ("ledger", f"{info['id']} ({info.get('path') or 'in memory'})"),
        ("created", _utc(float(info.get("created_s") or 0.0))),
        ("strategy", f"{info.get('strategy')}, {info.get('clock')} clock, server in "
                     f"{info.get('server_zone')}"),
    ]  # fmt: skip
    sel = info.get("selection")
    if isinstance(sel, Mapping):
        rows.append(("selection", ", ".join(f"{k}={v}" for k, v in sel.items())))
    example = info.get("example")
    if isinstance(example, Mapping):
        rows.append(("example", ", ".join(f"{k}={v}" for k, v in example.items())))
    net = info.get("network")
    if isinstance(net, Mapping):
        rows.append(
            ("network coefficient",
             f"{net.get('kwh_per_gb')} kWh/GB (low {net.get('low_kwh_per_gb')}, high "
             f"{net.get('high_kwh_per_gb')}): {net.get('source')}")
        )  # fmt: skip
    rows.append(("intensity sources", _grouped(info.get("intensity_sources") or ["-"])))
    rows.append(("energy methods", ", ".join(info.get("methods") or ["-"])))
    if info.get("stopped"):
        rows.append(("stopped early", str(info["stopped"])))
    return _table(["what", "value"], [[_e(k), _e(v)] for k, v in rows], set())


def _grouped(sources: Sequence[str]) -> str:
    """``a:b:GB, a:b:DE`` as ``a:b: GB, DE`` (sources that differ only in their zone)."""
    groups: dict[str, list[str]] = {}
    for src in sources:
        head, _, zone = src.rpartition(":")
        groups.setdefault(head, []).append(zone)
    return "; ".join(f"{h}: {', '.join(z)}" if h else ", ".join(z) for h, z in groups.items())


def _accuracy(doc: Mapping[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """Phase -> [(round, accuracy)] from the summary's aggregated metrics."""
    out: dict[str, list[tuple[int, float]]] = {}
    for m in sorted(doc["metrics"], key=lambda m: m["round"]):
        if "accuracy" in m["values"]:
            out.setdefault(m["phase"], []).append((m["round"], m["values"]["accuracy"]))
    return out


def _plots(doc: Mapping[str, Any], unit: str, grams: float) -> list[str]:
    from greenforge.forge.output import fmt_g, mass_unit

    rounds = doc["by_round"]
    xs = [float(r["round"]) for r in rounds]
    ticks = integer_ticks(int(max(xs)))
    parts = ["<h3>CO2e per round, by component</h3>"]
    parts.append(
        svg_stacked_bars(
            xs,
            [(name, colour, [r[key] / grams for r in rounds]) for key, name, colour in COMPONENTS],
            bounds=[(r["low_g"] / grams, r["high_g"] / grams) for r in rounds],
            bounds_label="low-high of the round",
            title="CO2e per round by component",
            x_label="round",
            y_label=f"CO2e per round ({unit})",
            x_ticks=ticks,
        )
    )
    c_unit, c_grams = mass_unit([rounds[-1]["cumulative_g"]])
    parts.append("<h3>Cumulative CO2e</h3>")
    parts.append(
        svg_lines(
            [("cumulative CO2e", OKABE_ITO["green"], xs,
              [r["cumulative_g"] / c_grams for r in rounds])],
            bands=[("low-high", OKABE_ITO["green"], xs,
                    [r["cumulative_low_g"] / c_grams for r in rounds],
                    [r["cumulative_high_g"] / c_grams for r in rounds])],
            title="cumulative CO2e after each round",
            x_label="round",
            y_label=f"cumulative CO2e ({c_unit})",
            x_ticks=ticks,
        )
    )  # fmt: skip
    zones = doc["by_zone"]
    z_unit, z_grams = mass_unit(z["co2e_g"] for z in zones)
    parts.append("<h3>Per zone</h3>")
    parts.append(
        svg_hbars(
            [z["key"] for z in zones],
            [("CO2e", OKABE_ITO["green"], [z["co2e_g"] / z_grams for z in zones])],
            bounds=[(z["low_g"] / z_grams, z["high_g"] / z_grams) for z in zones],
            title="CO2e per zone",
            x_label=f"CO2e in the zone, all rounds ({z_unit}); bars: low-high",
            value_format=fmt_g,
        )
    )
    parts.append(
        svg_hbars(
            [z["key"] for z in zones],
            [("training participations", OKABE_ITO["blue"], [float(z["rounds"]) for z in zones]),
             ("clients", OKABE_ITO["orange"], [float(z["clients"]) for z in zones])],
            title="participation per zone",
            x_label="training participations (client-rounds) and clients in the zone",
            value_format=lambda v: f"{v:.0f}",
        )
    )  # fmt: skip
    clients = [c for c in doc["by_client"] if c["key"] != "server"]
    fair = doc.get("fairness")
    marks: list[tuple[float, str, str]] = []
    if fair is not None:
        marks.append(
            (float(fair["floor"]),
             f"fairness floor: {fair['floor']} rounds (min share {fair['min_share']:g} x "
             f"{fair['rounds']})", OKABE_ITO["vermillion"])
        )  # fmt: skip
    parts.append("<h3>Participation per client</h3>")
    if clients:
        parts.append(
            svg_hbars(
                [f"{c['key']} ({c['zone']})" for c in clients],
                [("training rounds", OKABE_ITO["blue"], [float(c["rounds"]) for c in clients])],
                marks=marks,
                title="training rounds per client",
                x_label="training rounds the client took part in",
                value_format=lambda v: f"{v:.0f}",
            )
        )
    if fair is None:
        parts.append(
            "<p class='note'>No minimum participation share recorded (the ledger's strategy "
            "was not wrapped in CarbonAwareSelection).</p>"
        )
    elif fair["below_floor"]:
        parts.append(f"<p class='note'>Below the floor: {_e(', '.join(fair['below_floor']))}.</p>")
    acc = _accuracy(doc)
    parts.append("<h3>Accuracy vs round</h3>")
    if acc:
        scale = 100.0 if all(v <= 1.0 for pts in acc.values() for _, v in pts) else 1.0
        colours = (OKABE_ITO["black"], OKABE_ITO["purple"], OKABE_ITO["blue"])
        parts.append(
            svg_lines(
                [(_METRIC_PHASE_NAMES.get(phase, phase), colours[i % len(colours)],
                  [float(r) for r, _ in pts], [scale * v for _, v in pts])
                 for i, (phase, pts) in enumerate(acc.items())],
                title="accuracy vs round",
                x_label="round",
                y_label="accuracy (%)" if scale == 100.0 else "accuracy",
                x_ticks=ticks,
            )
        )  # fmt: skip
    else:
        parts.append(
            "<p class='note'>The ledger holds no accuracy metric: CarbonLedger keeps the "
            "clients' aggregated evaluate metrics (an <code>accuracy</code> metric in their "
            "replies), and a server-side evaluation passed as <code>strategy.start(..., "
            "evaluate_fn=ledger.central_evaluation(fn))</code>.</p>"
        )
    return parts


def _tables(doc: Mapping[str, Any], unit: str, grams: float) -> list[str]:
    from greenforge.forge.output import fmt_g

    def g(v: float) -> str:
        return _e(fmt_g(v, grams))

    def lohi(row: Mapping[str, Any]) -> str:
        return f"{g(row['low_g'])}-{g(row['high_g'])}"

    acc = {ph: dict(pts) for ph, pts in _accuracy(doc).items()}
    acc_phase = next((p for p in ("central", "evaluate", "train") if p in acc), None)
    plans = {p["round"]: p for p in doc["plans"]}
    head = ["round", "hour (UTC)", "clients", f"CO2e ({unit})", f"low-high ({unit})",
            f"cumulative ({unit})", f"train ({unit})", f"evaluate ({unit})",
            f"network ({unit})", f"aggregation ({unit})", "energy (J)", "down", "up",
            "deferred (h)"]  # fmt: skip
    if acc_phase is not None:
        head.append(f"accuracy ({_METRIC_PHASE_NAMES[acc_phase]})")
    rows: list[list[str]] = []
    for r in doc["by_round"]:
        plan = plans.get(r["round"])
        row = [
            str(r["round"]), _e(_utc(r["hour_s"]).removesuffix(" UTC")), str(r["clients"]), g(r["co2e_g"]), lohi(r),
            g(r["cumulative_g"]), g(r["train_compute_g"]), g(r["evaluate_compute_g"]),
            g(r["network_g"]), g(r["aggregation_g"]), f"{r['energy_j']:.4g}",
            _e(fmt_bytes(r["bytes_down"])), _e(fmt_bytes(r["bytes_up"])),
            "-" if plan is None else f"{plan['deferred_s'] / 3600:.3g}",
        ]  # fmt: skip
        if acc_phase is not None:
            v = acc[acc_phase].get(r["round"])
            row.append("-" if v is None else f"{v:.4g}")
        rows.append(row)
    out = ["<h3>Per round</h3>", _table(head, rows, set(range(2, len(head))))]
    rows = [
        [_e(c["key"]), _e(c["zone"]), str(c["rounds"]), g(c["co2e_g"]), lohi(c),
         f"{c['energy_j']:.4g}", f"{c['network_energy_j']:.3g}", _e(fmt_bytes(c["bytes_down"])),
         _e(fmt_bytes(c["bytes_up"])), str(c["entries"])]
        for c in doc["by_client"]
    ]  # fmt: skip
    out += [
        "<h3>Per client</h3>",
        _table(["client", "zone", "training rounds", f"CO2e ({unit})", f"low-high ({unit})",
                "energy (J)", "network (J)", "down", "up", "entries"], rows,
               {2, 3, 4, 5, 6, 7, 8, 9}),
    ]  # fmt: skip
    rows = [
        [_e(z["key"]), str(z["clients"]), str(z["rounds"]), g(z["co2e_g"]), lohi(z),
         f"{z['energy_j']:.4g}", f"{z['network_energy_j']:.3g}", str(z["entries"])]
        for z in doc["by_zone"]
    ]  # fmt: skip
    out += [
        "<h3>Per zone</h3>",
        _table(["zone", "clients", "training rounds", f"CO2e ({unit})", f"low-high ({unit})",
                "energy (J)", "network (J)", "entries"], rows, {1, 2, 3, 4, 5, 6, 7}),
        "<p class='note'>The server's aggregation is counted in its own zone (the server "
        "row of the client table).</p>",
    ]  # fmt: skip
    return out


def ledger_report(ledger: Ledger) -> str:
    """Returns the HTML document (a str) of a federated run's carbon ledger: headline, CO2e per
    round by component with bounds, cumulative CO2e with its band, per zone and per client
    (participation with the fairness floor), accuracy vs round when recorded, and the tables -
    all drawn from :func:`ledger_summary`."""
    from greenforge.forge.output import mass_unit

    doc = ledger_summary(ledger)
    unit, grams = mass_unit(r["co2e_g"] for r in doc["by_round"])
    parts = [f"<section id='ledger'><h2>Federated carbon ledger {_e(ledger.id)}</h2>"]
    parts.append(_headline(doc))
    parts.append(_facts(doc))
    parts.extend(_plots(doc, unit, grams))
    parts.extend(_tables(doc, unit, grams))
    parts.append(
        "<h3>How these numbers were obtained</h3><ul>"
        "<li>Each client measures its own train/evaluate step with the GreenForge tracker "
        "(energy per component, method, low/high); CO2e = energy x PUE x the grid intensity of "
        "its zone at the hour the round is accounted at (simulated clock: the round's slot; "
        "wall clock: the client tracker's own intensity).</li>"
        "<li>Network: Flower's byte count of each message down and up x a kWh/GB range (see "
        "the coefficient above), at the client zone's intensity.</li>"
        "<li>Server aggregation: the server's tracker around the wrapped strategy's "
        "aggregation, in the server zone.</li>"
        "<li>Bounds add up (a conservative interval): low and high of the energy, and the "
        "network coefficient's range.</li></ul></section>"
    )
    return _page(f"GreenForge report: federated ledger {ledger.id}", parts)


__all__ = ["COMPONENTS", "fmt_bytes", "fmt_mass", "ledger_report", "ledger_summary"]
