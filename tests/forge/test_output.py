"""Specification of what a forge search writes and shows: files, model card, table, plot."""

from __future__ import annotations

import copy
import io
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from greenforge.config import Settings
from greenforge.forge.output import (
    candidate_rows,
    fmt_interval,
    mass_unit,
    model_card,
    summary_lines,
    write_atomic,
    write_text_atomic,
)
from greenforge.forge.plot import Box, draw_pareto, log_scale, place_labels, plot_pareto
from greenforge.forge.search import run_forge
from greenforge.forge.task import load_task

from .conftest import blobs, write_task

TASK = """
[task]
name = "blobs"
tolerance = 0.05
expected_inferences = 1000000
zone = "DE"
epochs = 3
batch_size = 32
lr = 0.01
serving_batch_size = 16
recipes = ["baseline", { recipe = "quantize", source = "baseline", mode = "int8-dynamic" }]
"""


def _umask() -> int:
    """The process umask, read without changing it (Linux); 0o022 where it cannot be read."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:  # pragma: no cover - not Linux
        pass
    return 0o022  # pragma: no cover


@pytest.fixture(scope="module")
def forged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    import numpy as np

    from greenforge.testing import FakeMeter

    root = tmp_path_factory.mktemp("forged")
    x, y = blobs()
    np.savez(root / "blobs.npz", x=x, y=y)
    task = load_task(write_task(root, TASK, root / "blobs.npz"))
    result = run_forge(
        task,
        Settings(),
        out_dir=root / "out",
        measure_kwargs={
            "meters": [FakeMeter(20.0)],
            "intensity_g_per_kwh": 300.0,
            "intensity_source": "static:test",
        },
        min_duration_s=0.02,
        threads=1,
    )
    assert result.chosen is not None
    return result, root / "out"


def test_every_output_file_has_one_permission_policy(forged: tuple[Any, Path]) -> None:
    _, out = forged
    names = {p.name for p in out.iterdir()}
    assert {"forge.json", "README.md", "pareto.png", "model.safetensors", "model.json"} <= names
    assert not [n for n in names if n.startswith(".")], "temporary files were left behind"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert set(modes.values()) == {0o666 & ~_umask()}, modes


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_are_written_atomically_with_the_umask_applied(
    tmp_path: Path, umask: int, mode: int
) -> None:
    script = (
        "import os, sys\nfrom pathlib import Path\n"
        "from greenforge.forge.output import write_json_atomic\n"
        f"os.umask({umask})\n"
        "write_json_atomic(Path(sys.argv[1]), {'a': float('nan')})\n"
    )
    path = tmp_path / "sub" / "x.json"
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert json.loads(path.read_text()) == {"a": None}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "README.md", "old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]


def test_a_writer_that_recreates_the_file_still_gets_the_policy_mode(tmp_path: Path) -> None:
    def recreate(tmp: Path) -> None:
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)

    path = write_atomic(tmp_path / "model.onnx", recreate)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()


def test_intervals_read_value_then_low_high() -> None:
    assert fmt_interval(12.34, 11.12, 13.94) == "12.3 [11.1-13.9]"
    assert fmt_interval(0.01234, 0.01112, 0.01394, per_unit=1e-3) == "12.3 [11.1-13.9]"
    assert fmt_interval(1234.0, 1111.0, 1394.0) == "1,234 [1,111-1,394]"
    assert fmt_interval(12.34, float("nan"), 13.9) == "12.3"
    assert fmt_interval(float("nan"), 1.0, 2.0) == "- [1-2]"


def test_a_column_of_masses_reads_in_the_unit_that_fits_its_median() -> None:
    assert mass_unit([2e-5, 3e-5, 9e-4]) == ("µg", 1e-6)
    assert mass_unit([0.5, 12.0, 40.0]) == ("g", 1.0)
    assert mass_unit([2500.0, 1e4, 3e4]) == ("kg", 1e3)
    assert mass_unit([float("nan"), 0.0]) == ("g", 1.0)


def _front_matter(card: str) -> dict[str, str]:
    head = card.split("---\n")[1]
    block = head.split("co2_eq_emissions:\n", 1)[1]
    out: dict[str, str] = {}
    for line in block.splitlines():
        if not line.startswith("  "):
            break
        key, _, value = line.strip().partition(": ")
        out[key] = value
    return out


def test_the_card_keeps_a_valid_co2_eq_emissions_block(forged: tuple[Any, Path]) -> None:
    result, out = forged
    card = (out / "README.md").read_text()
    meta = _front_matter(card)
    assert set(meta) == {
        "emissions",
        "source",
        "training_type",
        "geographical_location",
        "hardware_used",
    }
    assert float(meta["emissions"]) == pytest.approx(result.search.total_co2e_g, rel=1e-5)
    for key in ("source", "training_type", "geographical_location", "hardware_used"):
        assert isinstance(json.loads(meta[key]), str)
    assert json.loads(meta["geographical_location"]) == "DE"


def test_the_card_has_one_basis_per_column(forged: tuple[Any, Path]) -> None:
    result, out = forged
    card = (out / "README.md").read_text()
    header = next(line for line in card.splitlines() if line.startswith("| candidate"))
    assert re.search(r"lifetime CO2e \((t|kg|g|mg|µg|ng)\), no search share", header)
    assert re.search(r"search share \((t|kg|g|mg|µg|ng)\)", header)
    assert "runtime" in header
    rows = [line for line in card.splitlines() if line.startswith("| ") and "---" not in line]
    body = rows[1:]
    assert len(body) == len(candidate_rows(result))
    share_cells = [row.rstrip(" |").rsplit("| ", 1)[1] for row in body]
    chosen_cell = next(c for row, c in zip(body, share_cells, strict=True) if "(chosen)" in row)
    assert chosen_cell != "-"
    assert sum(c == "-" for c in share_cells) == len(body) - 1
    for row in candidate_rows(result):
        assert row.lifetime_g == pytest.approx(
            result.result(row.name).lifetime_co2e_g - result.result(row.name).search_share_co2e_g
        )
        assert (row.search_share_g is not None) == row.chosen


def _table(result: Any, out: Path) -> str:
    from greenforge.cli.forge import print_forge_summary

    buf = io.StringIO()
    console = Console(file=buf, width=220, color_system=None)
    print_forge_summary(console, result, out)
    return buf.getvalue()


def test_below_target_candidates_are_marked_in_card_and_table(forged: tuple[Any, Path]) -> None:
    result, out = forged
    changed = copy.copy(result)
    changed.results = [copy.copy(r) for r in result.results]
    other = next(r for r in changed.results if r.name != result.chosen)
    other.meets_target = False
    other.below_target = True
    card = model_card(changed)
    row = next(line for line in card.splitlines() if line.startswith(f"| {other.name} |"))
    assert "(below target)" in row
    table = _table(changed, out)
    line = next(line for line in table.splitlines() if line.strip().startswith(f"{other.name} "))
    assert "below target" in line
    assert "below the accuracy target" in " ".join(table.split())


def test_the_table_shows_runtime_threads_and_intervals(forged: tuple[Any, Path]) -> None:
    result, out = forged
    table = _table(result, out)
    for col in ("runtime, 1 thr", "life ", "search ", "g/1k"):
        assert col in table
    assert "value [low-high] = interval" in " ".join(table.split())  # not eaten as markup
    quantized = next(line for line in table.splitlines() if "int8-dynamic" in line)
    assert "onnxruntime" in quantized
    if any(r.inference_co2e_g_per_1k_low == r.inference_co2e_g_per_1k_low for r in result.results):
        assert "[" in quantized  # an interval is shown when the bounds are known


def test_noise_and_ties_are_said_in_words(forged: tuple[Any, Path]) -> None:
    from greenforge.forge.result import Decision, NoiseReport

    result, _ = forged
    changed = copy.copy(result)
    other = next(r.name for r in result.results if r.name != result.chosen)
    changed.decision = Decision(
        within_noise=True,
        tie_break="fewer FLOPs, then smaller size",
        contenders=(result.chosen, other),
    )
    changed.noise = NoiseReport(background_load=0.7, busy=True, note="another process ran")
    text = "\n".join(summary_lines(changed))
    assert "within measurement noise" in text
    assert other in text
    assert "tie-break: fewer FLOPs, then smaller size" in text
    assert "busy machine: another process ran" in text
    card = model_card(changed)
    assert "Within measurement noise" in card
    assert "Busy machine" in card


def test_the_attribution_and_a_shared_host_warning_are_said(forged: tuple[Any, Path]) -> None:
    result, _ = forged
    changed = copy.copy(result)
    changed.warnings = ["running in a container: machine attribution models the whole host"]

    text = "\n".join(summary_lines(changed))

    assert f"attribution: {result.attribution} ({result.attribution_method})" in text
    assert "warning: running in a container" in text


def test_labels_do_not_overlap_each_other_or_leave_the_plot() -> None:
    anchors = [(200.0 + 3 * i, 150.0 + 2 * (i % 3)) for i in range(12)]
    sizes = [(90.0 + 5 * i, 14.0) for i in range(12)]
    points = [Box(x - 5, y - 5, x + 5, y + 5) for x, y in anchors]
    bounds = Box(0.0, 0.0, 700.0, 400.0)

    spots = place_labels(anchors, sizes, points, bounds)

    boxes = [Box(x, y, x + w, y + h) for (x, y), (w, h) in zip(spots, sizes, strict=True)]
    for i, a in enumerate(boxes):
        assert a.outside(bounds) == 0.0
        for b in boxes[i + 1 :]:
            assert a.overlap(b) == 0.0
        for p in points:
            assert a.overlap(p) == 0.0


def test_the_co2e_axis_turns_logarithmic_beyond_one_decade() -> None:
    assert not log_scale([1.0, 2.0], [8.0, 9.5])
    assert log_scale([1.0], [12.0])


def test_the_plot_is_drawn_from_the_result(forged: tuple[Any, Path], tmp_path: Path) -> None:
    result, _ = forged
    path = plot_pareto(tmp_path, result)
    assert path is not None
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_the_drawn_figure_keeps_legend_and_labels_clear(forged: tuple[Any, Path]) -> None:
    import numpy as np
    from matplotlib.collections import PathCollection
    from matplotlib.text import Text

    result, _ = forged
    fig = draw_pareto(result)
    assert fig is not None
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    ax = fig.axes[0]
    area = ax.get_window_extent(renderer=renderer)
    legend = ax.get_legend()
    assert legend is not None
    assert not legend.get_window_extent(renderer=renderer).overlaps(area)  # outside the data
    # the text itself (an annotation's own extent also spans its leader's bounding rectangle)
    fig.canvas.draw()  # annotations place their text on draw
    labels = [Text.get_window_extent(t, renderer=renderer) for t in ax.texts]
    assert labels, "the chosen model and the baseline are labelled"
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            assert not a.overlaps(b)
    for i, t in enumerate(ax.texts):  # no leader line runs through another label
        patch = getattr(t, "arrow_patch", None)
        if patch is None or not patch.get_visible():
            continue
        box = labels[i]
        ax_, ay_ = (float(v) for v in ax.transData.transform(t.xy))  # type: ignore[attr-defined]
        cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
        line = [(cx + k / 32 * (ax_ - cx), cy + k / 32 * (ay_ - cy)) for k in range(1, 32)]
        for j, other in enumerate(labels):
            if j != i:
                hits = [other.contains(x, y) for x, y in line if not box.contains(x, y)]
                assert not any(hits), f"the leader of {t.get_text()!r} crosses a label"
    assert "CO2e" in ax.get_ylabel()
    low, high = ax.get_ylim()
    ys = [  # the plotted points (scatter collections; error bars are LineCollections)
        float(y)
        for c in ax.collections
        if isinstance(c, PathCollection)
        for y in np.asarray(c.get_offsets())[:, 1]
    ]
    assert ys
    assert low <= min(ys)  # clipped to the data, nothing cut off
    assert max(ys) <= high
    assert high / low < 10 * max(ys) / min(ys)  # and not padded far beyond it
    assert [t.get_text() for t in ax.texts if "(chosen)" in t.get_text()] == [
        f"{result.chosen} (chosen)"
    ]


def test_a_leader_line_does_not_run_across_another_point() -> None:
    anchor = (300.0, 200.0)
    own = Box(294.0, 194.0, 306.0, 206.0)
    # other points all around the anchor's upper right, where the first spots are
    others = [Box(300.0 + dx - 6, 200.0 + dy - 6, 300.0 + dx + 6, 200.0 + dy + 6)
              for dx, dy in ((14, 14), (30, 30), (14, 0), (0, 14))]  # fmt: skip
    bounds = Box(0.0, 0.0, 800.0, 500.0)

    ((x, y),) = place_labels([anchor], [(80.0, 14.0)], [own, *others], bounds)

    label = Box(x, y, x + 80.0, y + 14.0)
    cx, cy = (label.x0 + label.x1) / 2, (label.y0 + label.y1) / 2
    for k in range(1, 32):
        t = k / 32
        px, py = cx + t * (anchor[0] - cx), cy + t * (anchor[1] - cy)
        assert not any(o.contains(px, py) for o in others)
    assert label.overlap(own) == 0.0


def _sci_block(card: str) -> dict[str, str]:
    head = card.split("---\n")[1]
    block = head.split("greenforge_sci:\n", 1)[1]
    out: dict[str, str] = {}
    for line in block.splitlines():
        if not line.startswith("  "):
            break
        key, _, value = line.strip().partition(": ")
        out[key] = value
    return out


def test_sci_per_1k_predictions_is_in_the_card_the_table_and_forge_json(
    forged: tuple[Any, Path],
) -> None:
    from greenforge.report.sci import sci_for_forge

    result, out = forged
    doc = json.loads((out / "forge.json").read_text())
    scores = sci_for_forge(doc)
    assert set(doc["sci"]) == set(scores) == {r.name for r in candidate_rows(result)}
    for name, score in scores.items():
        assert doc["sci"][name] == json.loads(json.dumps(score.to_dict()))
        assert score.unit == "1k predictions"
        assert score.sci_g == pytest.approx(result.result(name).inference_co2e_g_per_1k)
    chosen = scores[result.chosen]
    card = (out / "README.md").read_text()
    meta = _sci_block(card)
    assert json.loads(meta["candidate"]) == result.chosen
    assert json.loads(meta["functional_unit"]) == "1k predictions"
    for key in ("sci_g", "low_g", "high_g", "energy_kwh", "intensity_g_per_kwh", "embodied_g"):
        assert float(meta[key]) == pytest.approx(getattr(chosen, key), rel=1e-5)
    assert float(meta["low_g"]) <= float(meta["sci_g"]) <= float(meta["high_g"])
    assert "ISO/IEC 21031" in meta["specification"]
    for name in scores:
        assert any(line.startswith("- ") and name in line and "SCI " in line
                   for line in card.splitlines())  # fmt: skip
    assert _front_matter(card)  # the co2_eq_emissions block is still read alone
    from huggingface_hub import ModelCard

    front = ModelCard.load(out / "README.md").data.to_dict()  # the Hub's own reader
    assert set(front["co2_eq_emissions"]) == set(_front_matter(card))
    assert front["greenforge_sci"]["sci_g"] == pytest.approx(chosen.sci_g, rel=1e-5)
    assert front["greenforge_sci"]["candidate"] == result.chosen
    table = _table(result, out)
    assert "chosen model's SCI" in table
    assert "per 1k predictions" in table
