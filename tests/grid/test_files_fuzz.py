"""Property tests of the intensity file readers: any input gives a valid series or a GreenForge error.

Random bytes (plain and gzipped), random CSV shapes (headers, separators, quoting, field
counts), random timestamp spellings (offsets, ``Z``, years far outside the data), random
values (NaN, inf, huge) and huge fields. Whatever comes in, ``load_csv`` either returns a
series that holds only plausible numbers or raises a :class:`GreenForgeError` - never any
other exception.
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenforge.errors import GreenForgeError
from greenforge.grid import files
from greenforge.grid.files import (
    GENERIC_HEADER,
    MAX_INTENSITY_G_PER_KWH,
    PORTAL_HEADER,
    load_csv,
)
from greenforge.grid.series import IntensitySeries

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FIRST_S = dt.datetime(1990, 1, 1, tzinfo=dt.timezone.utc).timestamp()
END_S = dt.datetime(2101, 1, 1, tzinfo=dt.timezone.utc).timestamp()


def load_or_error(path: Path) -> IntensitySeries | None:
    """The series, or None after a GreenForge error; any other exception fails the test."""
    try:
        series = load_csv(path, fill="interpolate")
    except GreenForgeError as exc:
        message = str(exc)
    else:
        values = series.values_g_per_kwh
        assert np.all(np.isfinite(values))
        assert np.all((values >= 0) & (values <= MAX_INTENSITY_G_PER_KWH))
        assert np.all(np.diff(series.times_s) > 0)
        assert series.start_s >= FIRST_S
        assert series.times_s[-1] < END_S
        return series
    assert message.strip()
    return None


def write(path: Path, data: bytes, compress: bool) -> Path:
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


@FUZZ
@given(data=st.binary(max_size=4096), compress=st.booleans())
def test_random_bytes(tmp_path: Path, data: bytes, compress: bool) -> None:
    load_or_error(write(tmp_path / "r.csv", data, compress))


@FUZZ
@given(
    prefix=st.sampled_from([b"", b"timestamp,value\n", PORTAL_HEADER.encode() + b"\n"]),
    data=st.binary(max_size=2048),
    compress=st.booleans(),
)
def test_random_bytes_after_a_valid_header(
    tmp_path: Path, prefix: bytes, data: bytes, compress: bool
) -> None:
    load_or_error(write(tmp_path / "h.csv", prefix + data, compress))


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
moments = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31))


@st.composite
def stamp_texts(draw: st.DrawFn) -> str:
    """A timestamp as users write them: any year, separator, precision, offset or ``Z``."""
    moment = draw(moments)
    sep = draw(st.sampled_from(["T", " "]))
    spec = draw(st.sampled_from(["auto", "minutes", "seconds", "milliseconds"]))
    kind = draw(st.sampled_from(["naive", "offset", "Z", "z", "garbage"]))
    if kind == "offset":
        aware = moment.replace(tzinfo=draw(offsets))
        return aware.isoformat(sep=sep, timespec=spec)
    if kind == "garbage":
        return draw(st.text(max_size=30))
    text = moment.isoformat(sep=sep, timespec=spec)
    return text + ("" if kind == "naive" else kind)


values_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=0, max_value=6000).map(lambda v: f"{v:.3f}"),
    st.sampled_from(["", "nan", "-inf", "Infinity", "1e308", "1_000", "12,5", " 7 ", "-0"]),
    st.text(max_size=12),
)


@FUZZ
@given(
    rows=st.lists(st.tuples(stamp_texts(), values_text), min_size=0, max_size=40),
    portal=st.booleans(),
    compress=st.booleans(),
)
def test_random_timestamps_and_values(
    tmp_path: Path, rows: list[tuple[str, str]], portal: bool, compress: bool
) -> None:
    def quote(field: str) -> str:
        return '"' + field.replace('"', '""') + '"'

    if portal:
        lines = [PORTAL_HEADER] + [
            f"{quote(t)},Germany,Germany,DE,1,{quote(v)},1,1,src,false," for t, v in rows
        ]
    else:
        lines = [GENERIC_HEADER] + [f"{quote(t)},{quote(v)}" for t, v in rows]
    data = ("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass")
    load_or_error(write(tmp_path / "t.csv", data, compress))


@st.composite
def csv_shapes(draw: st.DrawFn) -> bytes:
    """A CSV of random shape: header, separator, quoting, field counts, blank lines, line ends."""
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    header = draw(
        st.sampled_from(
            [
                GENERIC_HEADER,
                PORTAL_HEADER,
                "timestamp;value",
                "time,intensity_g_per_kwh",
                "value,timestamp",
                "Datetime (UTC),Carbon Intensity gCO₂eq/kWh (LCA)",
                "",
                "a,b,c",
            ]
        )
    )
    field = st.one_of(stamp_texts(), values_text, st.text(max_size=20), st.just('"'), st.just("\r"))
    rows = draw(st.lists(st.lists(field, max_size=12), max_size=30))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    body = ending.join(sep.join(r) for r in rows)
    return (header + ending + body).encode("utf-8", errors="surrogatepass")


@FUZZ
@given(data=csv_shapes(), compress=st.booleans())
def test_random_csv_shapes(tmp_path: Path, data: bytes, compress: bool) -> None:
    load_or_error(write(tmp_path / "s.csv", data, compress))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    length=st.integers(min_value=0, max_value=300_000),
    where=st.sampled_from(["value", "zone", "timestamp", "quoted"]),
    compress=st.booleans(),
)
def test_huge_fields(tmp_path: Path, length: int, where: str, compress: bool) -> None:
    big = "9" * length
    stamp, value, zone = "2023-01-01 00:00:00", "100", "DE"
    if where == "value":
        value = big
    elif where == "zone":
        zone = big
    elif where == "timestamp":
        stamp = big
    else:
        value = '"' + "\n".join(big[i : i + 1000] for i in range(0, length, 1000)) + '"'
    rows = [
        f"{stamp},Germany,Germany,{zone},1,{value},1,1,src,false,",
        f"2023-01-01 01:00:00,Germany,Germany,{zone},1,100,1,1,src,false,",
    ]
    data = ("\n".join([PORTAL_HEADER, *rows]) + "\n").encode()
    load_or_error(write(tmp_path / "f.csv", data, compress))


@FUZZ
@given(
    start_h=st.integers(min_value=0, max_value=(2100 - 1990) * 8760 - 100),
    zones=st.lists(offsets, min_size=2, max_size=60),
    portal=st.booleans(),
)
def test_regular_series_with_any_offsets_convert_to_utc(
    tmp_path: Path, start_h: int, zones: list[dt.timezone], portal: bool
) -> None:
    start = FIRST_S + 3600.0 * start_h
    instants = [start + 3600.0 * i for i in range(len(zones))]
    texts = [
        dt.datetime.fromtimestamp(t, tz=z).isoformat(sep=" " if portal else "T")
        for t, z in zip(instants, zones, strict=True)
    ]
    if portal:
        lines = [PORTAL_HEADER] + [f"{t},Germany,Germany,DE,1,100,1,1,src,false," for t in texts]
    else:
        lines = [GENERIC_HEADER] + [f"{t},100" for t in texts]
    path = write(tmp_path / "o.csv", ("\n".join(lines) + "\n").encode(), False)
    series = load_csv(path)
    np.testing.assert_array_equal(series.times_s, np.array(instants))
    assert series.step_s == 3600.0
    assert not any(math.isnan(v) for v in series.values_g_per_kwh.tolist())


@FUZZ
@given(
    n=st.integers(min_value=1, max_value=2500),
    zones=st.lists(offsets, min_size=1, max_size=3),
    values=st.lists(st.floats(min_value=0, max_value=5000), min_size=1, max_size=5),
    flags=st.lists(st.sampled_from(["true", "false", " TRUE", "False"]), min_size=1, max_size=3),
    portal=st.booleans(),
)
def test_the_block_and_row_by_row_paths_agree(
    tmp_path: Path,
    n: int,
    zones: list[dt.timezone],
    values: list[float],
    flags: list[str],
    portal: bool,
) -> None:
    start = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
    texts = [
        (start + dt.timedelta(hours=i)).astimezone(zones[i % len(zones)]).isoformat()
        for i in range(n)
    ]
    vals = [repr(values[i % len(values)]) for i in range(n)]
    if portal:
        lines = [PORTAL_HEADER] + [
            f"{t},Germany,Germany,DE,1,{v},1,1,src,{flags[i % len(flags)]},"
            for i, (t, v) in enumerate(zip(texts, vals, strict=True))
        ]
    else:
        lines = [GENERIC_HEADER] + [f"{t},{v}" for t, v in zip(texts, vals, strict=True)]
    path = write(tmp_path / "b.csv", ("\n".join(lines) + "\n").encode(), False)
    fast = files._parse_file(path, "lca")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files, "_block_fast", lambda *args: False)
        patch.setattr(files, "_rows_fast", lambda *args: False)
        slow = files._parse_file(path, "lca")
    for name in ("times_s", "values", "estimated", "lines"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)
    assert (fast.zone, fast.naive, fast.portal) == (slow.zone, slow.naive, slow.portal)


def parse_both(path: Path) -> tuple[object, object]:
    """What ``_parse_file`` gives (a part, or the error message) with and without fast paths."""

    def outcome() -> object:
        try:
            part = files._parse_file(path, "lca")
        except GreenForgeError as exc:
            return str(exc)
        arrays = (part.times_s, part.values, part.estimated, part.lines)
        return [a.tolist() for a in arrays], part.zone, part.naive, part.portal

    fast = outcome()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files, "_block_fast", lambda *args: False)
        patch.setattr(files, "_rows_fast", lambda *args: False)
        slow = outcome()
    return fast, slow


def unquoted(text: str) -> bool:
    return not any(c in text for c in '",;\n\r')


plausible_moments = st.datetimes(
    min_value=dt.datetime(1989, 12, 30), max_value=dt.datetime(2101, 1, 2)
)


@st.composite
def plain_stamps(draw: st.DrawFn) -> str:
    """Mostly the shapes the arithmetic parser takes (seconds, ``Z`` or ``+HH:MM``), some others."""
    moment = draw(plausible_moments)
    sep = draw(st.sampled_from(["T", " "]))
    kind = draw(st.sampled_from(["naive", "offset", "Z", "z", "minutes", "other"]))
    if kind == "other":
        return draw(stamp_texts().filter(unquoted))
    if kind == "minutes":
        return moment.isoformat(sep=sep, timespec="minutes")
    if kind == "offset":
        return moment.replace(tzinfo=draw(offsets)).isoformat(sep=sep, timespec="seconds")
    text = moment.isoformat(sep=sep, timespec="seconds")
    return text + ("" if kind == "naive" else kind)


plain_values = st.one_of(
    st.integers(min_value=0, max_value=10**16).map(str),
    st.tuples(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 9)).map(
        lambda t: f"{t[0]}.{str(t[1]).zfill(t[2])}"
    ),
    st.floats(min_value=0, max_value=5001).map(repr),
    st.sampled_from([".5", "5.", ".", "007.50", "1e3", " 7 ", "-0", "1_0", "0x1", "５"]),
    values_text.filter(unquoted),
)


@FUZZ
@given(
    rows=st.lists(st.tuples(plain_stamps(), plain_values), min_size=1, max_size=30),
    flags=st.lists(st.sampled_from(["true", "false", " True", "x", ""]), min_size=1, max_size=3),
    portal=st.booleans(),
)
def test_the_array_parser_agrees_with_the_row_by_row_path(
    tmp_path: Path, rows: list[tuple[str, str]], flags: list[str], portal: bool
) -> None:
    # unquoted fields: the rows take the array path (timestamps and values computed
    # arithmetically) wherever they can; the outcome must be the row-by-row one, errors included
    if portal:
        lines = [PORTAL_HEADER] + [
            f"{t},Germany,Germany,DE,1,{v},1,1,src,{flags[i % len(flags)]},"
            for i, (t, v) in enumerate(rows)
        ]
    else:
        lines = [GENERIC_HEADER] + [f"{t},{v}" for t, v in rows]
    path = write(tmp_path / "a.csv", ("\n".join(lines) + "\n").encode(), False)
    fast, slow = parse_both(path)
    assert fast == slow


EDGE_STAMPS = {  # timestamp: whether the array path takes it (else row by row explains it)
    "2024-02-29 23:59:59": True,  # leap day
    "2000-02-29T12:00:00Z": True,
    "2023-06-30T23:00:00-23:59": True,
    "2023-06-30T23:00:00+00:00": True,
    "1990-01-01T00:30:00-01:00": True,
    "2023-02-29 00:00:00": False,  # not a leap year
    "2100-02-29 00:00:00": False,  # not a leap year (century)
    "2023-04-31 00:00:00": False,
    "2023-13-01 00:00:00": False,
    "2023-00-10 00:00:00": False,
    "2023-01-01 24:00:00": False,
    "2023-01-01 23:60:00": False,
    "2023-01-01 23:59:60": False,
    "2023-06-30T23:00:00+24:00": False,
    "2023-06-30T23:00:00+05:60": False,
    "1990-01-01T00:30:00+01:00": False,  # before 1990 in UTC
    "2100-12-31T23:30:00-01:00": False,  # after 2100 in UTC
    "2023-01-01x00:00:00": False,
    "\uff12023-01-01 00:00:00": False,  # a full-width digit
}


@pytest.mark.parametrize("stamp", list(EDGE_STAMPS))
def test_edge_timestamps_agree(tmp_path: Path, stamp: str) -> None:
    rows = [stamp] + [f"2050-01-01T{h:02}:00:00Z" for h in range(3)]
    lines = [PORTAL_HEADER] + [f"{t},Germany,Germany,DE,1,1.5,1,1,src,false," for t in rows]
    path = write(tmp_path / "e.csv", ("\n".join(lines) + "\n").encode(), False)
    fast, slow = parse_both(path)
    assert fast == slow
    if EDGE_STAMPS[stamp]:  # and no row was read one by one
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(files, "_rows_fast", None)
            patch.setattr(files, "_block_slow", None)
            assert files._parse_file(path, "lca").times_s.tolist() == fast[0][0]  # type: ignore[index]


def test_a_chunk_mixing_offsets_and_none_is_explained(tmp_path: Path) -> None:
    lines = [GENERIC_HEADER, "2000-01-01T00:00:00Z,1", "2000-01-01T01:00:00,2"]
    path = write(tmp_path / "m.csv", ("\n".join(lines) + "\n").encode(), False)
    with pytest.raises(GreenForgeError, match=r"m\.csv:3: timestamp .* mixes timestamps"):
        files._parse_file(path, "lca")


@st.composite
def iso_seconds(draw: st.DrawFn) -> str:
    """A timestamp in one of the shapes the array path computes (seconds; none, Z or +HH:MM)."""
    moment = draw(plausible_moments)
    kind = draw(st.sampled_from(["naive", "offset", "Z"]))
    if kind == "offset":
        moment = moment.replace(tzinfo=draw(offsets))
    text = moment.isoformat(sep=draw(st.sampled_from(["T", " "])), timespec="seconds")
    return text + ("Z" if kind == "Z" else "")


decimals = st.one_of(
    st.integers(min_value=0, max_value=5000).map(str),
    st.decimals(min_value=0, max_value=5000, places=6).map(str),
    st.floats(min_value=0, max_value=5000).map(lambda v: f"{v:.{int(v) % 13}f}"),
)


@FUZZ
@given(rows=st.lists(st.tuples(iso_seconds(), decimals), min_size=1, max_size=40))
def test_the_array_parser_computes_times_and_values_exactly(
    tmp_path: Path, rows: list[tuple[str, str]]
) -> None:
    lines = [PORTAL_HEADER] + [f"{t},Germany,Germany,DE,1,{v},1,1,src,false," for t, v in rows]
    path = write(tmp_path / "x.csv", ("\n".join(lines) + "\n").encode(), False)
    fast, slow = parse_both(path)
    assert fast == slow


def test_every_day_of_the_plausible_years_converts_as_fromisoformat(tmp_path: Path) -> None:
    # one row a day at 23:59:59 with cycling offsets, 1990-2100: leap years, month ends, offsets
    first, last = dt.date(1990, 1, 2), dt.date(2100, 12, 30)
    suffixes = ["", "Z", "+00:00", "-23:59", "+14:00", "+05:30"]
    texts = [
        f"{first + dt.timedelta(days=i)}T23:59:59{suffixes[i % len(suffixes)]}"
        for i in range((last - first).days + 1)
    ]
    lines = [PORTAL_HEADER] + [f"{t},Germany,Germany,DE,1,1,1,1,src,false," for t in texts]
    path = write(tmp_path / "days.csv", ("\n".join(lines) + "\n").encode(), False)
    with pytest.MonkeyPatch.context() as patch:  # the array path only
        patch.setattr(files, "_rows_fast", None)
        patch.setattr(files, "_block_slow", None)
        times = files._parse_file(path, "lca").times_s.tolist()

    def utc_seconds(text: str) -> float:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)).timestamp()

    assert times == [utc_seconds(t) for t in texts]
