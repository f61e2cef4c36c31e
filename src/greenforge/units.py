"""Exact unit constants and conversions. Every conversion in GreenForge goes through here.

SI inside: joules, seconds, watts, grams. Names carry their unit (``energy_j``, ``co2e_g``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:  # numpy only for the annotations: `import greenforge` stays fast
    import numpy as np
    import numpy.typing as npt

J_PER_KWH: Final[float] = 3.6e6
J_PER_WH: Final[float] = 3600.0
UJ_PER_J: Final[float] = 1e6
MJ_PER_J: Final[float] = 1e3  # millijoules per joule (NVML reports mJ)
G_PER_KG: Final[float] = 1000.0
G_PER_LB: Final[float] = 453.59237  # exact, by the international yard and pound agreement
MWH_PER_KWH: Final[float] = 1e-3
S_PER_HOUR: Final[float] = 3600.0
S_PER_YEAR: Final[float] = 365.25 * 24 * 3600.0
BYTES_PER_GIB: Final[float] = 1024.0**3

_N = TypeVar("_N", float, "npt.NDArray[np.float64]")


def j_to_kwh(energy_j: _N) -> _N:
    """Joules to kilowatt-hours."""
    return energy_j / J_PER_KWH


def kwh_to_j(energy_kwh: _N) -> _N:
    """Kilowatt-hours to joules."""
    return energy_kwh * J_PER_KWH


def uj_to_j(energy_uj: _N) -> _N:
    """Microjoules (RAPL counters) to joules."""
    return energy_uj / UJ_PER_J


def mj_to_j(energy_mj: _N) -> _N:
    """Millijoules (NVML total-energy counter) to joules."""
    return energy_mj / MJ_PER_J


def lb_per_mwh_to_g_per_kwh(intensity_lb_per_mwh: _N) -> _N:
    """Pounds CO2 per MWh (WattTime) to grams per kWh, exactly: x 453.59237 / 1000."""
    return intensity_lb_per_mwh * G_PER_LB * MWH_PER_KWH


def g_per_kwh_to_lb_per_mwh(intensity_g_per_kwh: _N) -> _N:
    """Inverse of :func:`lb_per_mwh_to_g_per_kwh`."""
    return intensity_g_per_kwh / (G_PER_LB * MWH_PER_KWH)


def co2e_g(energy_j: _N, intensity_g_per_kwh: _N, pue: float = 1.0) -> _N:
    """Operational emissions in grams: energy (J) x PUE x intensity (g/kWh)."""
    return energy_j / J_PER_KWH * pue * intensity_g_per_kwh


def mw_to_w(power_mw: _N) -> _N:
    """Milliwatts (NVML power reading) to watts."""
    return power_mw / 1000.0
