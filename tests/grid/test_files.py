"""Reading Electricity Maps portal CSVs and generic timestamp,value CSVs, and their bad inputs."""

from __future__ import annotations

import datetime as dt
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenforge.config import Settings
from greenforge.errors import DataError, ProviderError, UnknownZoneError
from greenforge.grid.chain import GridFallbackWarning, intensity_for
from greenforge.grid.files import PORTAL_HEADER, load_csv
from greenforge.grid.provider import create_provider
from greenforge.grid.providers.files import FilesProvider

JAN_1_2023 = 1672531200.0


def portal_row(stamp: str, lca: str = "200.5", direct: str = "150.25", zone: str = "GB") -> str:
    return (
        f"{stamp},Great Britain,Great Britain,{zone},{direct},{lca},60.1,40.2,"
        " nationalgrideso.com; elexon.co.uk,false,"
    )


def write(path: Path, lines: list[str], compress: bool = False) -> Path:
    text = "\n".join(lines) + "\n"
    if compress:
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def hourly_portal(path: Path, hours: int = 4, start_hour: int = 0) -> Path:
    rows = [
        portal_row(f"2023-01-01 {h:02d}:00:00", lca=f"{100 + h}")
        for h in range(start_hour, start_hour + hours)
    ]
    return write(path, [PORTAL_HEADER, *rows])


def test_three_years_of_real_portal_exports_load_as_one_series(shared_data: Path) -> None:
    paths = sorted((shared_data / "grid" / "hourly").glob("GB_*_hourly.csv.gz"), reverse=True)
    series = load_csv(paths)
    assert len(series) == 3 * 8760
    assert series.source == "electricitymaps-csv:GB"
    assert (series.zone, series.basis, series.kind, series.step_s) == (
        "GB",
        "lca",
        "measured",
        3600.0,
    )
    assert series.start_s == 1609459200.0  # 2021-01-01T00:00Z
    assert series.values_g_per_kwh[:2].tolist() == [233.76, 229.73]
    direct = load_csv(paths, basis="direct")
    assert direct.values_g_per_kwh[:2].tolist() == [156.03, 152.52]
    assert direct.basis == "direct"


def test_estimated_rows_are_flagged(shared_data: Path) -> None:
    series = load_csv(shared_data / "grid" / "hourly" / "IN-WE_2021_hourly.csv.gz")
    assert series.estimated_flags.all()


def test_plain_and_gzipped_files_read_the_same(tmp_path: Path) -> None:
    rows = [PORTAL_HEADER, *(portal_row(f"2023-01-01 {h:02d}:00:00") for h in range(3))]
    plain = load_csv(write(tmp_path / "a.csv", rows))
    packed = load_csv(write(tmp_path / "a.csv.gz", rows, compress=True))
    np.testing.assert_array_equal(plain.values_g_per_kwh, packed.values_g_per_kwh)
    np.testing.assert_array_equal(plain.times_s, packed.times_s)


@pytest.mark.parametrize("minutes", [5, 15, 30])
def test_sub_hourly_portal_exports(tmp_path: Path, minutes: int) -> None:
    stamps = [f"2023-01-01 00:{m:02d}:00" for m in range(0, 60, minutes)]
    series = load_csv(write(tmp_path / "z.csv", [PORTAL_HEADER, *map(portal_row, stamps)]))
    assert series.step_s == minutes * 60
    assert len(series) == 60 // minutes


def test_quoted_fields_and_windows_line_endings(tmp_path: Path) -> None:
    rows = [
        PORTAL_HEADER,
        '2023-01-01 00:00:00,Great Britain,Great Britain,GB,1,2,3,4,"a, b",false,',
        '2023-01-01 01:00:00,Great Britain,Great Britain,GB,1,3,3,4,"a, b",true,X',
    ]
    path = tmp_path / "q.csv"
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8"))
    series = load_csv(path)
    assert series.values_g_per_kwh.tolist() == [2.0, 3.0]
    assert series.estimated_flags.tolist() == [False, True]


def test_generic_csv_with_offsets_is_converted_to_utc(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mine.csv",
        [
            "timestamp,value",
            "2023-01-01T01:00:00+01:00,100",
            "2023-01-01T01:00:00Z,110",
            "2023-01-01T03:00:00+01:00,120",
        ],
    )
    series = load_csv(path, zone="DE")
    assert series.times_s.tolist() == [JAN_1_2023, JAN_1_2023 + 3600, JAN_1_2023 + 7200]
    assert series.source == "csv:mine.csv"
    assert series.zone == "DE"


def test_local_times_with_offsets_cross_daylight_saving_cleanly(tmp_path: Path) -> None:
    rows = ["timestamp,value", "2023-03-26T01:00:00+01:00,1", "2023-03-26T03:00:00+02:00,2"]
    rows += ["2023-10-29T02:00:00+02:00,3", "2023-10-29T02:00:00+01:00,4"]
    spring = load_csv(write(tmp_path / "spring.csv", rows[:3]))
    assert np.diff(spring.times_s).tolist() == [3600.0]
    autumn = load_csv(write(tmp_path / "autumn.csv", [rows[0], *rows[3:]]))
    assert np.diff(autumn.times_s).tolist() == [3600.0]


def test_generic_csv_without_offsets_is_read_as_utc(tmp_path: Path) -> None:
    path = write(
        tmp_path / "g.csv", ["timestamp,value", "2023-01-01 00:00,1", "2023-01-01 01:00,2"]
    )
    assert load_csv(path).times_s[0] == JAN_1_2023


def test_files_are_concatenated_in_time_order(tmp_path: Path) -> None:
    late = hourly_portal(tmp_path / "late.csv", hours=2, start_hour=2)
    early = hourly_portal(tmp_path / "early.csv", hours=2, start_hour=0)
    series = load_csv([late, early])
    assert series.values_g_per_kwh.tolist() == [100.0, 101.0, 102.0, 103.0]


@given(
    st.lists(st.floats(min_value=0.0, max_value=2000.0), min_size=2, max_size=50),
    st.sampled_from([300, 900, 1800, 3600]),
    st.integers(min_value=1_500_000_000 // 3600, max_value=1_800_000_000 // 3600),
    st.booleans(),
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_portal_files_round_trip(
    tmp_path: Path, values: list[float], step_s: int, start_h: int, compress: bool
) -> None:
    start = start_h * 3600
    stamps = [
        dt.datetime.fromtimestamp(start + i * step_s, tz=dt.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        for i in range(len(values))
    ]
    rows = [portal_row(t, lca=f"{v:.2f}") for t, v in zip(stamps, values, strict=True)]
    path = write(
        tmp_path / ("rt.csv.gz" if compress else "rt.csv"), [PORTAL_HEADER, *rows], compress
    )
    series = load_csv(path)
    assert series.step_s == step_s
    np.testing.assert_array_equal(series.times_s, start + step_s * np.arange(len(values)))
    assert series.values_g_per_kwh.tolist() == [float(f"{v:.2f}") for v in values]


# --- bad input: each gives a DataError naming file:line and what to do ---------------------


def test_renamed_column_is_named_with_the_expected_header(tmp_path: Path) -> None:
    header = PORTAL_HEADER.replace("gCO₂eq/kWh (LCA)", "gCO2eq/kWh (LCA)")
    path = write(tmp_path / "r.csv", [header, portal_row("2023-01-01 00:00:00")])
    with pytest.raises(DataError, match=r"r\.csv:1: missing column .*\(LCA\)'.*renamed\?") as info:
        load_csv(path)
    assert "Restore the original header" in str(info.value)


def test_missing_value_column_in_generic_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "g.csv", ["timestamp,grams", "2023-01-01T00:00Z,1"])
    with pytest.raises(DataError, match=r"g\.csv:1: missing column 'value'.*'timestamp,value'"):
        load_csv(path)


def test_non_numeric_value_names_the_line(tmp_path: Path) -> None:
    rows = [
        PORTAL_HEADER,
        portal_row("2023-01-01 00:00:00"),
        portal_row("2023-01-01 01:00:00", lca="n/a"),
    ]
    with pytest.raises(DataError, match=r"x\.csv:3: .*'n/a' is not a number"):
        load_csv(write(tmp_path / "x.csv", rows))


def test_negative_value_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "n.csv", ["timestamp,value", "2023-01-01T00:00Z,5", "2023-01-01T01:00Z,-3"]
    )
    with pytest.raises(DataError, match=r"n\.csv:3: value '-3' is not a non-negative"):
        load_csv(path)


def test_unsorted_rows_name_the_line(tmp_path: Path) -> None:
    rows = [PORTAL_HEADER, *(portal_row(f"2023-01-01 {h:02d}:00:00") for h in (0, 2, 1))]
    with pytest.raises(DataError, match=r"u\.csv:4: .* not sorted by time\. Sort the file"):
        load_csv(write(tmp_path / "u.csv", rows))


def test_duplicate_timestamp_names_both_lines(tmp_path: Path) -> None:
    rows = [PORTAL_HEADER, *(portal_row(f"2023-01-01 {h:02d}:00:00") for h in (0, 1, 1))]
    with pytest.raises(
        DataError, match=r"d\.csv:4: duplicate timestamp 2023-01-01T01:00:00Z \(also on line 3\)"
    ):
        load_csv(write(tmp_path / "d.csv", rows))


def test_gaps_are_reported_not_filled(tmp_path: Path) -> None:
    rows = [PORTAL_HEADER, *(portal_row(f"2023-01-01 {h:02d}:00:00") for h in (0, 1, 4, 5))]
    path = write(tmp_path / "gap.csv", rows)
    with pytest.raises(
        DataError, match=r"gap\.csv:4: 2 missing point\(s\) from 2023-01-01T02:00:00Z"
    ) as info:
        load_csv(path)
    assert "fill policy" in str(info.value)


def test_gaps_are_filled_only_under_an_explicit_policy(tmp_path: Path) -> None:
    rows = [
        PORTAL_HEADER,
        *(portal_row(f"2023-01-01 {h:02d}:00:00", lca=str(10 * h)) for h in (0, 1, 4)),
    ]
    path = write(tmp_path / "gap.csv", rows)
    filled = load_csv(path, fill="interpolate")
    assert filled.values_g_per_kwh.tolist() == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert filled.estimated_flags.tolist() == [False, False, True, True, False]
    assert "filled: interpolate" in filled.source
    assert load_csv(path, fill="ffill").values_g_per_kwh.tolist() == [0, 10, 10, 10, 40]
    assert len(load_csv(path, fill="profile")) == 5


def test_gap_between_yearly_files_is_reported(tmp_path: Path) -> None:
    a = hourly_portal(tmp_path / "a.csv", hours=2)
    b = hourly_portal(tmp_path / "b.csv", hours=2, start_hour=5)
    with pytest.raises(DataError, match=r"b\.csv:2: 3 missing point"):
        load_csv([a, b])


def test_overlapping_files_are_refused(tmp_path: Path) -> None:
    a = hourly_portal(tmp_path / "a.csv", hours=3)
    b = hourly_portal(tmp_path / "b.csv", hours=3, start_hour=2)
    with pytest.raises(DataError, match=r"b\.csv:2: .* overlaps"):
        load_csv([a, b])


def test_repeated_local_hour_is_recognised_as_daylight_saving(tmp_path: Path) -> None:
    rows = [
        "timestamp,value",
        "2023-10-29 01:00,5",
        "2023-10-29 02:00,5",
        "2023-10-29 02:00,6",
        "2023-10-29 03:00,7",
    ]
    with pytest.raises(DataError, match=r"dst\.csv:4: duplicate .*daylight-saving") as info:
        load_csv(write(tmp_path / "dst.csv", rows))
    assert "offset" in str(info.value)


def test_skipped_local_hour_is_recognised_as_daylight_saving(tmp_path: Path) -> None:
    rows = ["timestamp,value", "2023-03-26 01:00,5", "2023-03-26 03:00,5", "2023-03-26 04:00,6"]
    with pytest.raises(DataError, match=r"spring\.csv:3: one hour is missing .*daylight-saving"):
        load_csv(write(tmp_path / "spring.csv", rows))


def test_empty_file_and_header_only_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"empty\.csv:1: empty file"):
        load_csv(write(tmp_path / "empty.csv", []))
    with pytest.raises(DataError, match=r"head\.csv:2: no data rows"):
        load_csv(write(tmp_path / "head.csv", [PORTAL_HEADER]))


def test_unreadable_path_and_wrong_field_count(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read intensity file"):
        load_csv(tmp_path / "nope.csv")
    rows = [PORTAL_HEADER, portal_row("2023-01-01 00:00:00"), "2023-01-01 01:00:00,GB,1"]
    with pytest.raises(DataError, match=r"short\.csv:3: 3 field\(s\), but the header has 11"):
        load_csv(write(tmp_path / "short.csv", rows))


def test_bad_timestamp_names_the_line(tmp_path: Path) -> None:
    rows = [PORTAL_HEADER, portal_row("2023-01-01 00:00:00"), portal_row("yesterday")]
    with pytest.raises(DataError, match=r"t\.csv:3: bad timestamp 'yesterday'"):
        load_csv(write(tmp_path / "t.csv", rows))


def test_wrong_zone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is for zone 'GB', not 'DE'"):
        load_csv(hourly_portal(tmp_path / "gb.csv"), zone="DE")


# --- the files provider ----------------------------------------------------------------------


def test_files_provider_serves_the_requested_slice(tmp_path: Path) -> None:
    path = hourly_portal(tmp_path / "gb.csv", hours=6)
    provider = create_provider("files", Settings(intensity_files=(path,)))
    series = provider.history("GB", JAN_1_2023 + 3600 + 60, JAN_1_2023 + 3 * 3600)
    assert series.values_g_per_kwh.tolist() == [101.0, 102.0]
    assert provider.zones() == ["GB"]
    with pytest.raises(UnknownZoneError):
        provider.history("DE", JAN_1_2023, JAN_1_2023 + 60)
    with pytest.raises(ProviderError, match="cover 2023-01-01T00:00:00Z to 2023-01-01T06:00:00Z"):
        provider.history("GB", JAN_1_2023, JAN_1_2023 + 7 * 3600)


def test_chain_falls_back_from_files_to_embedded_outside_their_span(tmp_path: Path) -> None:
    path = hourly_portal(tmp_path / "gb.csv", hours=6)
    settings = Settings(intensity_providers=("files", "embedded"), intensity_files=(path,))
    inside = intensity_for(settings, "GB", JAN_1_2023, JAN_1_2023 + 3600)
    assert inside.source == "electricitymaps-csv:GB"
    with pytest.warns(GridFallbackWarning):
        later = intensity_for(settings, "GB", JAN_1_2023 + 86400, JAN_1_2023 + 90000)
    assert later.source.startswith("embedded:profile-2021-2023:GB (fallback after files:")


def test_generic_files_without_a_zone_serve_the_requested_zone(tmp_path: Path) -> None:
    path = write(
        tmp_path / "g.csv", ["timestamp,value", "2023-01-01T00:00Z,7", "2023-01-01T01:00Z,8"]
    )
    provider = FilesProvider((path,))
    series = provider.history("SE", JAN_1_2023, JAN_1_2023 + 7200)
    assert (series.zone, series.source) == ("SE", "csv:g.csv")
    assert series.values_g_per_kwh.tolist() == [7.0, 8.0]


def test_files_setting_from_the_environment(tmp_path: Path) -> None:
    from greenforge.config import load_settings

    a, b = hourly_portal(tmp_path / "a.csv", 2), hourly_portal(tmp_path / "b.csv", 2, 2)
    settings = load_settings(
        env={
            "GREENFORGE_INTENSITY_FILES": f"{a}{os.pathsep}{b}",
            "GREENFORGE_INTENSITY_FILL": "ffill",
        }
    )
    assert settings.intensity_files == (a, b)
    provider = FilesProvider(settings.intensity_files, fill=settings.intensity_fill)
    assert len(provider.series()) == 4


def test_config_file_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    from greenforge.config import load_settings

    (tmp_path / "data").mkdir()
    hourly_portal(tmp_path / "data" / "gb.csv")
    config = tmp_path / "greenforge.toml"
    config.write_text('intensity_providers = ["files"]\nintensity_files = ["data/gb.csv"]\n')
    settings = load_settings(env={}, config_file=config)
    assert settings.intensity_files == (tmp_path / "data" / "gb.csv",)
    series = intensity_for(settings, "GB", JAN_1_2023, JAN_1_2023 + 3600)
    assert series.source == "electricitymaps-csv:GB"
