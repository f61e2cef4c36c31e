"""A real-looking year of hourly outdoor temperatures, generated deterministically.

Frankfurt am Main climate normals (DWD, 1991-2020): annual mean 10.6 deg C, January 1.6 and
July 20.2 deg C (a seasonal sine of amplitude 9.3 K, coldest around 15 January); a daily cycle
peaking at 13:00 UTC (14:00-15:00 local) whose amplitude grows from 2.5 K in winter to 5 K in
summer; and weather noise, an AR(1) process with hourly persistence 0.97 and a stationary
standard deviation of 3 K (seeded). 2023, the year of the real DE grid data in ../shared/data.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

YEAR = 2023
MEAN_C = 10.6
SEASONAL_K = 9.3
COLDEST_DAY = 15
DAILY_K = (2.5, 5.0)
PEAK_HOUR_UTC = 13.0
AR_PHI = 0.97
NOISE_SD_K = 3.0


def climate_normal_year(
    year: int = YEAR, seed: int = 0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Returns (unix seconds of each hour of ``year``, temperature in deg C)."""
    start = dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    hours = 8760 + 24 * (year % 4 == 0)
    t = start + 3600.0 * np.arange(hours, dtype=np.float64)
    day = np.arange(hours) / 24.0
    season = -np.cos(2 * np.pi * (day - COLDEST_DAY) / 365.25)  # -1 mid-January, +1 mid-July
    daily_amp = DAILY_K[0] + (DAILY_K[1] - DAILY_K[0]) * (season + 1) / 2
    hour = np.arange(hours) % 24
    daily = daily_amp * np.cos(2 * np.pi * (hour - PEAK_HOUR_UTC) / 24.0)
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, NOISE_SD_K * np.sqrt(1 - AR_PHI**2), hours)
    noise = np.empty(hours)
    noise[0] = rng.normal(0.0, NOISE_SD_K)
    for i in range(1, hours):
        noise[i] = AR_PHI * noise[i - 1] + shocks[i]
    return t, MEAN_C + SEASONAL_K * season + daily + noise


def write_temperatures(
    path: Path, times_s: npt.NDArray[np.float64], temps: npt.NDArray[np.float64]
) -> Path:
    """Writes a ``timestamp,temperature_c`` CSV (ISO 8601 UTC) and returns its path."""
    lines = ["timestamp,temperature_c"]
    for t, c in zip(times_s, temps, strict=True):
        stamp = dt.datetime.fromtimestamp(float(t), dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
        lines.append(f"{stamp},{c:.2f}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def temperature_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The year's hourly temperatures as a CSV file."""
    t, c = climate_normal_year()
    return write_temperatures(tmp_path_factory.mktemp("pue") / "frankfurt-2023.csv", t, c)
