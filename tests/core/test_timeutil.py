"""One parser and formatter for the times users type (grid, plan, schedule, queue)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.errors import ConfigError
from greenforge.timeutil import parse_duration_s, parse_time_s, utc_iso, utc_iso_seconds

NOW_S = 1_780_000_000.0  # 2026-05-28T20:26:40Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW_S),
        ("+24h", NOW_S + 86400.0),
        ("+1h30m", NOW_S + 5400.0),
        ("1700000000", 1_700_000_000.0),
        ("2026-11-30T06:00Z", 1_796_018_400.0),
        ("2026-11-30T06:00", 1_796_018_400.0),  # naive = UTC
        ("2026-11-30T08:00+02:00", 1_796_018_400.0),
    ],
)
def test_parse_time_s_reads_every_accepted_form(text: str, expected: float) -> None:
    assert parse_time_s(text, NOW_S) == expected


def test_a_bad_time_names_the_value_and_the_accepted_forms() -> None:
    with pytest.raises(ConfigError, match=r"bad time 'teatime'.*ISO 8601.*\+12h.*unix seconds"):
        parse_time_s("teatime", NOW_S)


@pytest.mark.parametrize("text", ["1e20", "-99999999999", "1780000000000", "1900-01-01T00:00Z"])
def test_a_time_outside_the_printable_range_is_a_clear_error(text: str) -> None:
    # e.g. milliseconds given as seconds: refused by name, not a traceback when printed later
    with pytest.raises(ConfigError, match=r"bad time .*outside 1970-01-01 \.\. 9999-12-31"):
        parse_time_s(text, NOW_S)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4h", 14400.0), ("90m", 5400.0), ("1h30m", 5400.0), ("2d", 172800.0), ("45", 45.0)],
)
def test_parse_duration_s(text: str, expected: float) -> None:
    assert parse_duration_s(text) == expected


@pytest.mark.parametrize("text", ["soon", "0", "-5m", "4 parsecs"])
def test_a_bad_duration_is_refused_by_name(text: str) -> None:
    with pytest.raises(ConfigError, match=f"bad duration '{text}'"):
        parse_duration_s(text)


def test_formats() -> None:
    assert utc_iso(0.25) == "1970-01-01T00:00:00.250Z"
    assert utc_iso_seconds(0.25) == "1970-01-01T00:00:00Z"
    assert utc_iso(60.0, timespec="minutes") == "1970-01-01T00:01Z"


@given(st.integers(min_value=0, max_value=4_000_000_000))
def test_formatted_seconds_parse_back(t: int) -> None:
    assert parse_time_s(utc_iso_seconds(float(t)), NOW_S) == float(t)
