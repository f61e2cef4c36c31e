"""Self-contained HTML pages of the *shift* verb: a back-test result and a plan.

Both read the JSON the schedule commands write - ``greenforge backtest --json`` (or
``--out FILE``) and ``greenforge plan --json`` - and draw with the inline-SVG helpers of
:mod:`greenforge.report.html` (same page, palette and escaping rules: no scripts, nothing
fetched at view time). Headline numbers carry ids (``bt-saving-<zone>``, ``bt-oracle-<zone>``,
``bt-captured-<zone>``, ``plan-start``, ``plan-expected``, ``plan-run-now``, ``plan-saving``)
that the browser test compares with the JSON.

A plan's intensity over its window is the series the planner used, carried in the plan
document's ``intensity`` object (:func:`intensity_json`); a document without it (written by an
older ``greenforge plan``) is drawn on the embedded typical profile instead, and the page says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenforge.errors import DataError, GreenForgeError
from greenforge.jsonsafe import finite_or_none
from greenforge.report.html import (
    OKABE_ITO,
    _card,
    _e,
    _f,
    _finite,
    _page,
    _table,
    _utc,
    fmt_co2e_g,
    fmt_energy_j,
    fmt_energy_kwh,
    fmt_grams,
    svg_hbars,
    svg_step_lines,
)

if TYPE_CHECKING:
    from greenforge.grid.series import IntensitySeries

ZONE_COLOURS = (
    OKABE_ITO["blue"],
    OKABE_ITO["orange"],
    OKABE_ITO["green"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["sky"],
    OKABE_ITO["black"],
)
"""Line colours of zones on the plan plot (Okabe-Ito; each also gets its own dash pattern)."""


def fmt_pct(value: object) -> str:
    """Returns a percentage as ``"12.3 %"`` (1 decimal); ``-`` when None or not finite."""
    return f"{_f(value):.1f} %" if _finite(value) else "-"


def load_document(path: Path, kind: str) -> dict[str, Any]:
    """Returns the parsed JSON document at ``path`` after checking it is a ``kind``
    (``backtest`` or ``plan``) document; a :class:`DataError` says what to pass instead."""
    make = {
        "backtest": "greenforge backtest ... --out FILE (or --json > FILE)",
        "plan": "greenforge plan ... --json > FILE",
    }[kind]
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"no such file {str(path)!r}: make one with `{make}`.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc}.") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DataError(
            f"{str(path)!r} is not JSON ({exc}): pass the file written by `{make}`."
        ) from None
    if kind == "backtest":
        ok = isinstance(data, dict) and isinstance(data.get("results"), list)
        what = "a back-test result (no 'results' list)"
    else:
        ok = (
            isinstance(data, dict)
            and isinstance(data.get("slots"), list)
            and isinstance(data.get("job"), dict)
        )
        what = "a plan (no 'slots' list and 'job' object)"
    if not ok:
        raise DataError(f"{str(path)!r} is not {what}: pass the file written by `{make}`.")
    return data  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- back-test


def _row_label(r: Mapping[str, Any]) -> str:
    label = (
        f"{r.get('zone')} · {r.get('forecaster')} · {_f(r.get('job_hours')):g} h job, "
        f"{_f(r.get('slack_hours')):g} h slack"
    )
    return label + (" (in-sample)" if r.get("in_sample") else "")


def best_rows(results: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Returns, per zone (in first-seen order), the result row with the largest
    ``saving_pct`` (rows whose saving is not applicable come last): the headline of a zone."""
    best: dict[str, Mapping[str, Any]] = {}
    for r in results:
        zone = str(r.get("zone"))
        cur = best.get(zone)
        key = _f(r.get("saving_pct")) if _finite(r.get("saving_pct")) else -math.inf
        if cur is None or key > (
            _f(cur.get("saving_pct")) if _finite(cur.get("saving_pct")) else -math.inf
        ):
            best[zone] = r
    return best


def backtest_report(doc: Mapping[str, Any]) -> str:
    """Returns the HTML document (a str) of a back-test result (``greenforge backtest --json``):
    per zone, the saving vs running at arrival and vs the oracle, and the captured share."""
    from greenforge.forge.output import fmt_g, mass_unit

    raw = doc.get("results")
    results = [r for r in raw if isinstance(r, Mapping)] if isinstance(raw, list) else []
    if not results:
        raise DataError(
            "the back-test result has no rows: re-run `greenforge backtest` with data that "
            "holds at least one arrival."
        )
    policy = str(doc.get("policy") or results[0].get("policy") or "?")
    kinds = {"interruptible" if r.get("interruptible") else "uninterruptible" for r in results}
    parts = [
        f"<section id='backtest'><h2>Back-test: {_e(' and '.join(sorted(kinds)))} jobs, "
        f"policy {_e(policy)}</h2>"
    ]
    best = best_rows(results)
    cards: list[str] = []
    for zone, r in list(best.items())[:6]:
        z = _e(zone)
        cards.append(
            _card(
                f"{zone}: saving vs run at arrival",
                fmt_pct(r.get("saving_pct")),
                f"{r.get('forecaster')}, {_f(r.get('job_hours')):g} h job, "
                f"{_f(r.get('slack_hours')):g} h slack",
                f"bt-saving-{z}",
            )
        )
        cards.append(
            _card(
                f"{zone}: oracle saving",
                fmt_pct(r.get("oracle_saving_pct")),
                "perfect foresight of the actual intensity",
                f"bt-oracle-{z}",
            )
        )
        captured = r.get("captured")
        cards.append(
            _card(
                f"{zone}: captured",
                fmt_pct(100.0 * _f(captured)) if _finite(captured) else "-",
                "share of the oracle's saving the forecast achieved"
                if _finite(captured)
                else str(r.get("saving_note") or "oracle saves nothing"),
                f"bt-captured-{z}",
            )
        )
    parts.append('<div class="headline">' + "".join(cards) + "</div>")
    if len(best) > 6:
        parts.append(f"<p class='note'>{len(best) - 6} more zones in the table below.</p>")
    first = min(str(r.get("first_arrival", "")) for r in results)
    last = max(str(r.get("last_arrival", "")) for r in results)
    parts.append(
        f"<p>Arrivals {_e(first)} to {_e(last)}: a job arrives at every step of the history and "
        "must finish within its job + slack hours.</p>"
    )

    labels = [_row_label(r) for r in results]
    parts.append("<h3>Savings vs running at arrival, and vs the oracle</h3>")
    parts.append(
        svg_hbars(
            labels,
            [
                ("planned on the forecast", OKABE_ITO["blue"],
                 [_opt(r.get("saving_pct")) for r in results]),
                ("oracle (knows the actual intensity)", OKABE_ITO["orange"],
                 [_opt(r.get("oracle_saving_pct")) for r in results]),
            ],
            title="CO2e saving vs running every job at arrival",
            x_label="CO2e saving vs running each job at arrival (%)",
            value_format=lambda v: f"{v:.1f} %",
        )
    )  # fmt: skip
    captured = [_opt(r.get("captured")) for r in results]
    if any(c is not None for c in captured):
        parts.append("<h3>Captured share of the oracle's saving</h3>")
        parts.append(
            svg_hbars(
                labels,
                [("captured", OKABE_ITO["green"],
                  [None if c is None else 100.0 * c for c in captured])],
                title="captured share of the oracle's saving",
                x_label="captured = saving / oracle saving (%)",
                value_format=lambda v: f"{v:.0f} %",
            )
        )  # fmt: skip
    totals = [
        [_opt(r.get(k)) for r in results]
        for k in ("run_now_co2e_g_per_kw", "planned_co2e_g_per_kw", "oracle_co2e_g_per_kw")
    ]
    unit, grams = mass_unit(v for col in totals for v in col if v is not None)
    parts.append("<h3>Total CO2e per kW of job power</h3>")
    parts.append(
        svg_hbars(
            labels,
            [
                (name, colour, [None if v is None else v / grams for v in col])
                for (name, colour), col in zip(
                    [("run at arrival", OKABE_ITO["sky"]),
                     ("planned", OKABE_ITO["blue"]),
                     ("oracle", OKABE_ITO["orange"])],
                    totals, strict=True,
                )
            ],
            title="total CO2e of all jobs per kW of job power",
            x_label=f"total CO2e of all replayed jobs per kW of job power ({unit}/kW)",
        )
    )  # fmt: skip

    parts.append("<h3>Every result</h3>")
    rows = [
        [_e(r.get("zone")), _e(r.get("forecaster")) + (" (in-sample)" if r.get("in_sample") else ""),
         f"{_f(r.get('job_hours')):g}", f"{_f(r.get('slack_hours')):g}", _e(r.get("arrivals")),
         _e(fmt_pct(r.get("saving_pct"))), _e(fmt_pct(r.get("oracle_saving_pct"))),
         _e(fmt_pct(100.0 * _f(r.get("captured"))) if _finite(r.get("captured")) else "-"),
         _e(fmt_g(_f(r.get("run_now_co2e_g_per_kw")), grams)),
         _e(fmt_g(_f(r.get("planned_co2e_g_per_kw")), grams)),
         _e(fmt_g(_f(r.get("oracle_co2e_g_per_kw")), grams)),
         f"{_f(r.get('mean_delay_h')):.1f}", f"{_f(r.get('mae_g_per_kwh')):.1f}",
         f"{_f(r.get('mape_pct')):.1f}", _e(r.get("saving_note") or "")]
        for r in results
    ]  # fmt: skip
    parts.append(
        _table(
            ["zone", "forecaster", "job (h)", "slack (h)", "arrivals", "saving", "oracle saving",
             "captured", f"run at arrival ({unit}/kW)", f"planned ({unit}/kW)",
             f"oracle ({unit}/kW)", "mean delay (h)", "MAE (g/kWh)", "MAPE (%)", "note"],
            rows, {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13},
        )
    )  # fmt: skip

    parts.append("<h3>How these numbers were obtained</h3><ul>")
    how = [
        str(doc.get("definition") or "saving = 100 x (1 - planned CO2e / run-at-arrival CO2e)"),
        "Each job is planned on the forecast available at its arrival (only the values before "
        "it) and charged at the actual intensity; the oracle plans on the actual intensity. "
        "Totals are per kW of job power, so they scale with any job's power.",
        f"Policy {policy}: " + ("plan once at arrival" if policy == "once" else "re-plan at "
                                "every step while the job waits") + ".",
    ]  # fmt: skip
    forecasters = doc.get("forecasters")
    if isinstance(forecasters, Mapping):
        how.extend(f"forecaster {name}: {desc}" for name, desc in forecasters.items())
    sources = doc.get("sources")
    if isinstance(sources, Mapping):
        how.extend(f"data for {zone}: {src}" for zone, src in sources.items())
    parts.extend(f"<li>{_e(h)}</li>" for h in how)
    parts.append("</ul></section>")
    return _page(f"GreenForge report: back-test ({', '.join(best)})", parts)


def _opt(v: object) -> float | None:
    return _f(v) if _finite(v) else None


# --------------------------------------------------------------------------- plan


def intensity_json(
    forecasts: Mapping[str, IntensitySeries], start_s: float, end_s: float
) -> dict[str, dict[str, Any]]:
    """Returns ``{zone: {times_s, values_g_per_kwh, step_s, source, kind}}``: each series the
    planner saw, cut to ``[start_s, end_s)`` (the ``intensity`` object of a plan document;
    values that are not finite are None)."""
    out: dict[str, dict[str, Any]] = {}
    for zone, series in forecasts.items():
        try:
            part = series.between(start_s, end_s)
        except DataError:
            continue
        out[zone] = {
            "times_s": part.times_s.tolist(),
            "values_g_per_kwh": finite_or_none(part.values_g_per_kwh.tolist()),
            "step_s": float(part.step_s),
            "source": part.source,
            "kind": part.kind,
        }
    return out


def _plan_lines(
    doc: Mapping[str, Any], start_s: float, end_s: float
) -> tuple[list[tuple[str, list[float], list[float], float, str]], str]:
    """Returns ([(zone, step starts (unix s), values (g/kWh), step (s), source)], note)."""
    job = _mapping(doc.get("job"))
    zones = [str(z) for z in job.get("zones", []) if isinstance(z, str)]
    got = doc.get("intensity")
    lines: list[tuple[str, list[float], list[float], float, str]] = []
    if isinstance(got, Mapping) and got:
        for zone, s in got.items():
            if not isinstance(s, Mapping):
                continue
            times = [_f(t) for t in s.get("times_s", [])]
            values = [_f(v) for v in s.get("values_g_per_kwh", [])]
            step = _f(s.get("step_s"))
            if times and len(times) == len(values) and step > 0:
                lines.append((str(zone), times, values, step, str(s.get("source", "?"))))
        lines.sort(key=lambda line: line[0] not in zones)  # the job's zones first
        note = "The intensity the planner used (the plan file's forecast)."
        if len(lines) > len(ZONE_COLOURS):
            note += (
                f" {len(lines) - len(ZONE_COLOURS)} advisory zone(s) left off the plot: "
                + ", ".join(line[0] for line in lines[len(ZONE_COLOURS) :])
                + "."
            )
        return lines[: len(ZONE_COLOURS)], note
    from greenforge.grid.steps import embedded_steps

    for zone in zones:
        try:
            steps = embedded_steps(zone, start_s, end_s)
        except GreenForgeError:
            continue
        lines.append(
            (zone, list(steps.times_s), list(steps.values_g_per_kwh), steps.step_s,
             steps.provenance.source)
        )  # fmt: skip
    return lines, (
        "The plan file carries no intensity series (written by an older greenforge plan): "
        "drawn here on the embedded typical profile, which may differ from the forecast the "
        "planner used (" + str(doc.get("forecast_source", "?")) + ")."
    )


def _mapping(v: object) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _plan_pue(pue: Mapping[str, Any]) -> str:
    """The plan's PUE: a constant, or PUE(t) with the saving split into the grid's part and the
    facility's (``greenforge plan --pue SPEC --json``'s ``pue``)."""
    source = str(pue.get("source", "?"))
    if pue.get("constant"):
        return f"{_f(pue.get('mean_pue')):.3g} ({source}): CO2e figures are facility CO2e"
    text = (
        f"PUE(t) {_f(pue.get('min_pue')):.3g}-{_f(pue.get('max_pue')):.3g} over the window "
        f"(mean {_f(pue.get('mean_pue')):.3g}; {source})"
    )
    grid, own = pue.get("grid_saving_g"), pue.get("pue_saving_g")
    if _finite(grid) and _finite(own):
        text += (
            f"; saving vs running now attributed: the grid's hours {_f(grid):.4g} g, the "
            f"facility's PUE(t) {_f(own):.4g} g"
        )
    return text


def plan_report(doc: Mapping[str, Any]) -> str:
    """Returns the HTML document (a str) of a plan (``greenforge plan --json``): the chosen
    slots, the intensity over the window with them marked, and savings vs running now."""
    job = _mapping(doc.get("job"))
    slots = [s for s in doc.get("slots", []) if isinstance(s, Mapping)]
    if not slots:
        raise DataError("the plan has no slots: pass the output of `greenforge plan --json`.")
    earliest, deadline = _f(job.get("earliest_start_s")), _f(job.get("deadline_s"))
    if not (math.isfinite(earliest) and math.isfinite(deadline) and deadline > earliest):
        raise DataError(
            "the plan's job has no valid window (earliest_start_s/deadline_s): pass the output "
            "of `greenforge plan --json`."
        )
    duration_h = _f(job.get("duration_s")) / 3600.0
    zones_used = list(dict.fromkeys(str(s.get("zone")) for s in slots))
    name = str(job.get("name") or f"{duration_h:.3g} h job")
    parts = [f"<section id='plan'><h2>Plan: {_e(name)}</h2>"]
    power = (
        "1 kW assumed (CO2e scales with the job's power)"
        if doc.get("power_assumed")
        else f"{_f(doc.get('power_w')):g} W"
    )
    cards = [
        _card("start", str(doc.get("start", "?")), f"delay {_f(doc.get('delay_s')) / 3600:.3g} h "
              "after the earliest start", "plan-start"),
        _card("zone", ", ".join(zones_used), f"{len(slots)} slot(s); allowed: "
              + ", ".join(str(z) for z in job.get("zones", [])), "plan-zone"),
        _card("expected CO2e", fmt_co2e_g(_opt(doc.get("expected_co2e_g"))), power,
              "plan-expected"),
        _card("running now", fmt_co2e_g(_opt(doc.get("run_now_co2e_g"))),
              "start at the earliest start, in the first zone", "plan-run-now"),
        _card("saving vs now", fmt_pct(doc.get("saving_pct")), "on the forecast",
              "plan-saving"),
    ]  # fmt: skip
    if _finite(doc.get("actual_co2e_g")):
        cards.append(
            _card("actual CO2e", fmt_co2e_g(_f(doc.get("actual_co2e_g"))),
                  f"oracle {fmt_co2e_g(_opt(doc.get('oracle_co2e_g')))}, regret "
                  f"{fmt_co2e_g(_opt(doc.get('regret_g')))}", "plan-actual")
        )  # fmt: skip
    parts.append('<div class="headline">' + "".join(cards) + "</div>")

    facts = [
        ("job", f"{duration_h:.3g} h, {'interruptible' if job.get('interruptible') else 'uninterruptible'}"),
        ("window", f"{job.get('earliest_start', '?')} to {job.get('deadline', '?')}"),
        ("power / energy", f"{power}; {fmt_energy_j(_f(doc.get('energy_j')))} "
                           f"({fmt_energy_kwh(_f(doc.get('energy_j')))})"),
        ("algorithm", str(doc.get("algorithm", "?"))),
        ("forecast", f"{doc.get('forecast', '-')}; {doc.get('forecast_source', '?')}"),
    ]  # fmt: skip
    pue = _mapping(doc.get("pue"))
    if pue:
        facts.append(("PUE", _plan_pue(pue)))
    parts.append(_table(["what", "value"], [[_e(k), _e(v)] for k, v in facts], set()))
    parts.append("<h3>Chosen slots</h3>")
    parts.append(
        _table(
            ["start", "end", "zone", "hours"],
            [[_e(s.get("start")), _e(s.get("end")), _e(s.get("zone")),
              f"{_f(s.get('duration_s')) / 3600:.3g}"] for s in slots],
            {3},
        )
    )  # fmt: skip

    lines, where = _plan_lines(doc, earliest, deadline)
    parts.append("<h3>Grid intensity over the window, chosen slots marked</h3>")
    if lines:
        h = 3600.0
        parts.append(
            svg_step_lines(
                [(f"{zone} ({src})", ZONE_COLOURS[i % len(ZONE_COLOURS)],
                  [((max(t, earliest) - earliest) / h, (min(t + step, deadline) - earliest) / h)
                   for t in times], values)
                 for i, (zone, times, values, step, src) in enumerate(lines)],
                title="grid intensity over the window with the chosen slots",
                x_label=f"hours after the earliest start, {_utc(earliest)} (h)",
                y_label="grid intensity (g CO2e/kWh)",
                shade=[((_f(s.get("start_s")) - earliest) / h, (_f(s.get("end_s")) - earliest) / h,
                        OKABE_ITO["yellow"]) for s in slots],
                shade_label="chosen slot(s): " + ", ".join(zones_used),
                marks=[(0.0, "earliest start (running now)", OKABE_ITO["black"]),
                       ((deadline - earliest) / h, "deadline", OKABE_ITO["purple"])],
            )
        )  # fmt: skip
        parts.append(f"<p class='note'>{_e(where)}</p>")
    else:
        parts.append("<p>No intensity to draw: the plan file carries none and its zones have "
                     "no embedded figures.</p>")  # fmt: skip

    per_zone = _mapping(doc.get("zone_co2e_g"))
    bars: list[tuple[str, float | None]] = [
        ("the plan", _opt(doc.get("expected_co2e_g"))),
        (f"running now in {job.get('zones', ['?'])[0]}", _opt(doc.get("run_now_co2e_g"))),
    ]
    bars += [(f"best start in {z}", _opt(v)) for z, v in per_zone.items()]
    parts.append("<h3>Expected CO2e: the plan, running now, and each zone's best</h3>")
    parts.append(
        svg_hbars(
            [b[0] for b in bars],
            [("expected CO2e", OKABE_ITO["green"], [b[1] for b in bars])],
            title="expected CO2e of the job",
            x_label=f"expected CO2e of the job on the forecast (g), power {power}",
            value_format=fmt_grams,
        )
    )
    advice = [str(a) for a in doc.get("advice", []) if isinstance(a, str)]
    if advice:
        parts.append("<h3>Advice</h3><ul>" + "".join(f"<li>{_e(a)}</li>" for a in advice))
        parts.append("</ul>")
    parts.append(
        "<h3>How these numbers were obtained</h3><ul>"
        "<li>Expected CO2e = the job's energy (power x time, per step of its power profile) x "
        "the forecast intensity over the chosen slots; running now = the same job started at "
        "the earliest start in its first zone, on the same forecast.</li>"
        "<li>saving vs now = 100 x (1 - expected / running now). Actual, oracle and regret "
        "appear only when the actual intensity of the window was given.</li>"
        f"<li>{_e(where)}</li></ul></section>"
    )
    return _page(f"GreenForge report: plan {name}", parts)


__all__ = [
    "ZONE_COLOURS",
    "backtest_report",
    "best_rows",
    "fmt_pct",
    "intensity_json",
    "load_document",
    "plan_report",
]
