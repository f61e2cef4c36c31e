"""`greenforge grid zones|show|forecast|compare`: readable tables and stable JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenforge.cli.app import main
from greenforge.grid.files import PORTAL_HEADER


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_zones_lists_annual_values_and_marks_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, ["grid", "zones", "--json"])
    assert isinstance(rows, list)
    by_zone = {r["zone"]: r for r in rows}
    assert by_zone["DE"]["hourly_profile"] is True
    assert by_zone["FR"]["hourly_profile"] is False
    assert by_zone["FR"]["dataset"] == "electricitymaps-yearly"
    assert main(["grid", "zones"]) == 0
    assert "US-CAL-CISO*" in capsys.readouterr().out


def test_zones_cloud_lists_region_mapping(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, ["grid", "zones", "--cloud", "--json"])
    assert isinstance(rows, list)
    assert {"provider": "aws", "region": "us-west-1", "zone": "US-CAL-CISO"}.items() <= next(
        r for r in rows if r["region"] == "us-west-1"
    ).items()


def test_show_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(
        capsys,
        [
            "grid",
            "show",
            "de",
            "--from",
            "2024-06-01T00:00Z",
            "--to",
            "2024-06-01T06:00Z",
            "--json",
        ],
    )
    assert isinstance(out, dict)
    assert {"zone", "source", "signal", "points"} <= set(out)
    assert out["zone"] == "DE"
    assert out["source"] == "embedded:profile-2021-2023:DE"
    assert out["signal"] == "average"
    assert len(out["points"]) == 6
    first = out["points"][0]
    assert first["time"] == "2024-06-01T00:00:00Z"
    assert isinstance(first["intensity_g_per_kwh"], float)


def test_show_at_one_time_with_an_offset(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, ["grid", "show", "GB", "--at", "2024-06-01T12:30+02:00", "--json"])
    assert isinstance(out, dict)
    assert [p["time"] for p in out["points"]] == ["2024-06-01T10:00:00Z"]


def test_show_reads_portal_files_instead_of_the_provider(
    capsys: pytest.CaptureFixture[str], shared_data: Path
) -> None:
    hourly = shared_data / "grid" / "hourly"
    argv = ["grid", "show", "GB", "--file", str(hourly / "GB_2021_hourly.csv.gz")]
    argv += ["--file", str(hourly / "GB_2022_hourly.csv.gz")]
    out = run_json(
        capsys, [*argv, "--from", "2021-12-31T23:00Z", "--to", "2022-01-01T01:00Z", "--json"]
    )
    assert isinstance(out, dict)
    assert out["source"] == "electricitymaps-csv:GB"
    assert [p["time"] for p in out["points"]] == ["2021-12-31T23:00:00Z", "2022-01-01T00:00:00Z"]
    assert main(argv) == 0  # whole files, readable table
    assert "more points (use --json for all)" in capsys.readouterr().out


def test_show_reports_gaps_with_exit_code_5_and_fills_on_request(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "gap.csv"
    rows = [f"2023-01-01T0{h}:00:00Z,{100 + h}" for h in (0, 1, 3)]
    path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    assert main(["grid", "show", "GB", "--file", str(path)]) == 5
    assert "gap.csv:4: 1 missing point" in capsys.readouterr().err.replace("\n", "")
    out = run_json(capsys, ["grid", "show", "GB", "--file", str(path), "--fill", "ffill", "--json"])
    assert isinstance(out, dict)
    assert [p["intensity_g_per_kwh"] for p in out["points"]] == [100.0, 101.0, 101.0, 103.0]
    assert [p["estimated"] for p in out["points"]] == [False, False, True, False]


def test_providers_option_overrides_the_chain(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["grid", "show", "DE", "--at", "2024-06-01T12:00Z", "--providers", "embedded-annual"]
    out = run_json(capsys, [*argv, "--json"])
    assert isinstance(out, dict)
    assert out["source"] == "embedded:electricitymaps-yearly-2024:DE"
    assert out["kind"] == "annual"


def test_forecast_is_the_profile_labelled_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, ["grid", "forecast", "GB", "--hours", "48", "--json"])
    assert isinstance(out, dict)
    assert out["kind"] == "profile"
    assert len(out["points"]) in (48, 49)
    assert all(p["forecast"] for p in out["points"])
    assert main(["grid", "forecast", "GB", "--hours", "6"]) == 0
    assert "not a measurement" in capsys.readouterr().out


def test_compare_sorts_cleanest_first(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, ["grid", "compare", "PL", "FR", "DE", "--json"])
    assert isinstance(rows, list)
    assert [r["zone"] for r in rows] == ["FR", "DE", "PL"]
    assert main(["grid", "compare", "SE", "GB"]) == 0
    assert "Zones compared" in capsys.readouterr().out


def test_unknown_zone_and_bad_time_exit_with_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", "show", "DEX"]) == 2
    assert "Close matches" in capsys.readouterr().err
    assert main(["grid", "show", "DE", "--at", "teatime"]) == 2
    assert "bad time 'teatime'" in capsys.readouterr().err
    assert main(["grid", "show", "DE", "--at", "now", "--from", "now"]) == 2
    assert main(["grid", "forecast", "DE", "--hours", "0"]) == 2


def test_portal_header_constant_is_the_real_one(shared_data: Path) -> None:
    import gzip

    with gzip.open(
        shared_data / "grid" / "hourly" / "DE_2023_hourly.csv.gz", "rt", encoding="utf-8"
    ) as fh:
        assert fh.readline().rstrip("\n") == PORTAL_HEADER


def test_sources_are_printed_verbatim_and_fallbacks_as_one_warning_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a file name with brackets must not be read as rich markup (the source would lose it)
    mine = tmp_path / "mine[red].csv"
    mine.write_text("timestamp,value\n2024-03-01T00:00:00Z,310\n2024-03-01T01:00:00Z,300\n")
    capsys.readouterr()
    assert main(["grid", "show", "DE", "--file", str(mine)]) == 0
    assert "csv:mine[red].csv" in capsys.readouterr().out

    monkeypatch.setenv("GREENFORGE_INTENSITY_FILES", str(mine))
    argv = ["grid", "show", "DE", "--providers", "files,embedded"]
    assert main([*argv, "--from", "2025-01-01T00:00Z", "--to", "2025-01-01T02:00Z"]) == 0
    captured = capsys.readouterr()
    assert "fallback after files" in captured.out
    assert "csv:mine[red].csv" in captured.out
    assert "warning: grid provider(s) 'files' failed for zone 'DE'" in captured.err
    assert "GridFallbackWarning" not in captured.err  # not Python's warning format


def test_a_range_of_thousands_of_years_is_refused_before_building_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--from", "2020-01-01T00:00Z", "--to", "9000-01-01T00:00Z"]
    assert main(["grid", "show", "DE", *argv]) == 2
    assert "at most 100 years" in capsys.readouterr().err
    assert main(["grid", "compare", "DE", "FR", *argv]) == 2
    assert "at most 100 years" in capsys.readouterr().err
