"""Energy of moving model updates over the Internet: a cited kWh/GB coefficient range.

Network energy is an estimate, never a measurement, so it always comes with a low/high bound:

- **high, 0.06 kWh/GB**: Aslan, Mayers, Koomey & France (2018), "Electricity Intensity of
  Internet Data Transmission: Untangling the Estimates", J. Industrial Ecology 22(4):785-798,
  doi:10.1111/jiec.12630 - their estimate for 2015 (core + fixed-line access networks). Used
  as the upper bound: it assumes no efficiency gain since 2015.
- **central, 0.0075 kWh/GB**: the same study's trend (intensity halving about every 2 years
  since 2000, developed countries) extrapolated to 2021, the first year of the embedded grid
  data: 0.06 x 2^-3.
- **low, 0.00375 kWh/GB**: that trend extrapolated to 2023 (0.06 x 2^-4). Coroama & Hilty
  (2014), Environmental Impact Assessment Review 45:63-68, review published figures from
  0.0064 to 136 kWh/GB; the spread is mostly reference year and system boundary.

Scope: transmission networks only (no end devices, no data centres); mobile access networks
are several times more energy-intensive than fixed lines, so a deployment over 4G/5G should
raise the coefficients (:class:`NetworkCoefficient` is a plain value: pass your own).
"""

from __future__ import annotations

import dataclasses
import math

from greenforge.errors import ConfigError
from greenforge.units import J_PER_KWH

BYTES_PER_GB = 1e9
"""Decimal gigabyte, as the cited studies use."""


@dataclasses.dataclass(frozen=True)
class NetworkCoefficient:
    """Electricity intensity of data transfer (kWh per decimal GB), with bounds and source."""

    kwh_per_gb: float = 0.0075
    low_kwh_per_gb: float = 0.00375
    high_kwh_per_gb: float = 0.06
    source: str = (
        "Aslan et al. 2018 (J. Ind. Ecol. 22(4):785-798): 0.06 kWh/GB for 2015 (high), "
        "halving every ~2 years, extrapolated to 2021 (central 0.0075) and 2023 (low 0.00375)"
    )

    def __post_init__(self) -> None:
        values = (self.low_kwh_per_gb, self.kwh_per_gb, self.high_kwh_per_gb)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values):
            raise ConfigError(f"bad network coefficient {values!r} kWh/GB: use finite values >= 0.")
        if not self.low_kwh_per_gb <= self.kwh_per_gb <= self.high_kwh_per_gb:
            raise ConfigError(
                f"bad network coefficient: low {self.low_kwh_per_gb} <= central "
                f"{self.kwh_per_gb} <= high {self.high_kwh_per_gb} kWh/GB must hold."
            )

    def energy_j(self, n_bytes: float) -> tuple[float, float, float]:
        """Returns (central, low, high) energy in J of moving ``n_bytes`` bytes."""
        if not (math.isfinite(n_bytes) and n_bytes >= 0):
            raise ConfigError(f"bad byte count {n_bytes!r}: must be finite and >= 0.")
        gb = n_bytes / BYTES_PER_GB
        return (
            gb * self.kwh_per_gb * J_PER_KWH,
            gb * self.low_kwh_per_gb * J_PER_KWH,
            gb * self.high_kwh_per_gb * J_PER_KWH,
        )
