"""CLI polish: zones resolved the same way everywhere, searchable zone list, tables that never
cut the columns that matter at 80 columns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from greenforge.cli.app import main


@pytest.fixture(autouse=True)
def _eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_grid_show_and_forecast_take_the_zone_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREENFORGE_ZONE", "de")
    out = _json(capsys, ["grid", "show", "--at", "2024-06-01T12:00Z", "--json"])
    assert isinstance(out, dict)
    assert out["zone"] == "DE"
    out = _json(capsys, ["grid", "forecast", "--hours", "2", "--json"])
    assert isinstance(out, dict)
    assert out["zone"] == "DE"


def test_grid_show_takes_the_zone_from_the_config_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "greenforge.toml"
    cfg.write_text('[greenforge]\nzone = "FR"\n', encoding="utf-8")
    monkeypatch.setenv("GREENFORGE_CONFIG", str(cfg))
    out = _json(capsys, ["grid", "show", "--json"])
    assert isinstance(out, dict)
    assert out["zone"] == "FR"
    out = _json(capsys, ["grid", "show", "PL", "--json"])  # explicit wins
    assert isinstance(out, dict)
    assert out["zone"] == "PL"


def test_grid_show_without_any_zone_explains_where_to_set_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["grid", "forecast"]) == 2
    err = capsys.readouterr().err
    assert "GREENFORGE_ZONE" in err
    assert "Traceback" not in err


def test_grid_zones_filters_by_code_or_name(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(capsys, ["grid", "zones", "zimbabwe", "--json"])
    assert isinstance(rows, list)
    assert {r["zone"] for r in rows} == {"ZW", "ZWE"}
    by_zone = {r["zone"]: r for r in rows}
    assert by_zone["ZWE"]["same_country_as"] == "ZW"
    assert by_zone["ZW"]["basis"] == "lca"
    assert by_zone["ZWE"]["basis"] == "direct"
    rows = _json(capsys, ["grid", "zones", "US-CAL-*", "--json"])
    assert isinstance(rows, list)
    assert rows
    assert all(r["zone"].startswith("US-CAL-") for r in rows)


def test_grid_zones_table_folds_the_ember_alias_into_its_country(
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    assert main(["grid", "zones", "zimbabwe"]) == 0
    out = capsys.readouterr().out
    assert "Grid zones (1;" in out
    assert "ZWE 298 (2023)" in out  # the alias, with its own figure and year
    assert "differ by design" in out
    assert main(["grid", "zones", "zimbabwe", "--all"]) == 0
    assert "Grid zones (2;" in capsys.readouterr().out


def test_grid_zones_without_a_match_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", "zones", "atlantis"]) == 2
    assert "no zone matches 'atlantis'" in capsys.readouterr().err


def test_grid_compare_never_splits_a_source_name(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["grid", "compare", "FR", "US-CAL-CISO", "DE"]) == 0
    out = capsys.readouterr().out
    assert "[1] embedded:electricitymaps-yearly-2025" in out
    assert "[2] embedded:profile-2021-2023" in out
    assert all(len(line) <= 80 for line in out.splitlines())


def test_errors_are_one_unbroken_line_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["grid", "forecast"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no grid zone")
    assert err.count("\n") == 1  # not hard-wrapped at 80 columns


def test_python_warnings_print_once_as_plain_lines() -> None:
    # a child process: pytest records warnings in-process, so they would never print here
    code = (
        "import warnings\n"
        "from greenforge.cli.app import _plain_warnings\n"
        "before = warnings.formatwarning\n"
        "with _plain_warnings():\n"
        "    for _ in range(3):\n"
        "        warnings.warn('the disk is slow', UserWarning, stacklevel=1)\n"
        "assert warnings.formatwarning is before\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stderr == "warning: the disk is slow\n"


@pytest.mark.parametrize(
    ("argv", "present"),
    [
        (["schedule", "--help"], ["ZONE...", "TEXT", "FLOAT"]),
        (["grid", "show", "--help"], ["FILE...", "TEXT"]),
        (["runs", "list", "--help"], ["INTEGER"]),
        (["--help"], ["--version"]),
    ],
)
def test_help_uses_conventional_types(
    capsys: pytest.CaptureFixture[str], argv: list[str], present: list[str]
) -> None:
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    for word in present:
        assert word in out
    for odd in ("<bool>", "<str>", "<list[", "<int>", "<float>"):
        assert odd not in out


def test_meter_summary_is_one_line_with_used_meters_first() -> None:
    from greenforge.records import meter_summary

    notes = [
        "rapl: skipped - no RAPL zones; `greenforge doctor` says how to enable it",
        "model-cpu: using - no CPU energy counter; a long provenance",
        "nvidia: skipped - no NVIDIA driver found",
        "model-ram: using - no memory energy counter",
        "fake: injected",
    ]
    assert meter_summary(notes) == (
        "using: model-cpu, model-ram; skipped: rapl, nvidia; injected: fake"
    )
    assert meter_summary([]) == ""


def test_runs_list_fits_80_columns_and_the_run_says_its_meters_once(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["runs", "list"]) == 0
    assert "no runs stored yet" in capfd.readouterr().err
    name = "a-very-long-run-name-that-goes-on-and-on"
    assert main(["run", "--zone", "DE", "--name", name, "--", sys.executable, "-c", "pass"]) == 0
    err = capfd.readouterr().err
    assert err.count("meters:") == 1
    assert "To enable" not in err
    assert main(["runs", "list"]) == 0
    out = capfd.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines())
    row = next(line for line in out.splitlines() if "completed" in line)
    assert row.split()[0].isalnum()  # the id, whole
    assert any(len(p) == 10 and p[4] == "-" for p in row.split())  # the date, whole
    assert main(["runs", "export", "--format", "csv"]) == 0
    meters = out_csv_meters(capfd.readouterr().out)
    assert meters.startswith("using: ")
    assert "To enable" not in meters
    assert "\n" not in meters


def out_csv_meters(text: str) -> str:
    import csv
    import io

    [row] = list(csv.DictReader(io.StringIO(text)))
    return str(row["meters"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--pause-signal", "SIGKILL"], "SIGKILL cannot be caught"),
        (["--pause-signal", "STOP"], "SIGSTOP cannot be caught"),
        (["--dry-run", "--detach"], "use one of them"),
        (["--partition", "gpu"], "add --executor slurm or drop --partition"),
        (["--executor", "ray", "--partition", "gpu"], "executor is 'ray'"),
        (["--ray-address", "127.0.0.1:6379"], "add --executor ray"),
    ],
)
def test_contradictory_schedule_flags_are_usage_errors(
    capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    capsys.readouterr()
    argv = ["schedule", "--zone", "DE", "--duration", "1h", *flags, "--", "true"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert message in err
    assert out == ""  # refused before any plan is printed
    assert main(["queue", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # nothing queued


def test_plan_resolves_zones_like_every_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ["plan", "--duration", "1h", "--deadline", "+6h", "--json"]
    plan = _json(capsys, [*base, "--zone", "de"])
    assert isinstance(plan, dict)
    assert plan["job"]["zones"] == ["DE"]
    monkeypatch.setenv("GREENFORGE_ZONE", "pl")
    plan = _json(capsys, base)
    assert isinstance(plan, dict)
    assert plan["job"]["zones"] == ["PL"]


def test_queue_list_keeps_state_and_slot_whole_at_80_columns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "nightly-finetune-of-the-big-model"
    argv = ["schedule", "--zone", "DE", "--duration", "1h", "--detach", "--name", name]
    assert main([*argv, "--", "true"]) == 0
    capsys.readouterr()
    assert main(["queue", "list"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines())
    row = next(line for line in out.splitlines() if " queued " in line)
    parts = row.split()
    assert "local" in parts
    assert any(len(p) == 10 and p[4] == "-" for p in parts)  # the slot's date, whole
    assert "\u2026" not in out  # nothing cut with an ellipsis: the name folds
    assert "big-model" in out


def test_a_fallback_warning_is_one_line_when_piped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREENFORGE_INTENSITY_PROVIDERS", "files,embedded")
    capsys.readouterr()
    assert main(["grid", "show", "DE", "--json"]) == 0
    [line] = [x for x in capsys.readouterr().err.splitlines() if x]
    assert line.startswith("warning: grid provider(s) 'files' failed")
    assert line.endswith("names the error.")
