"""Grid provider ``files``: intensity from the user's CSV files (``settings.intensity_files``).

Reads Electricity Maps portal exports or generic ``timestamp,value`` files (see
:mod:`greenforge.grid.files`), with the basis (``intensity_basis``) and gap policy
(``intensity_fill``) from the settings. A request outside the files' time span raises
:class:`~greenforge.errors.ProviderError` so a configured chain can fall back visibly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from greenforge.config import Settings
from greenforge.errors import ConfigError, ProviderError, UnknownZoneError
from greenforge.grid.files import UNKNOWN_ZONE, load_csv
from greenforge.grid.provider import register_provider
from greenforge.grid.series import IntensitySeries


class FilesProvider:
    """Intensity of one zone from CSV files, loaded once on first use."""

    name = "files"

    def __init__(
        self,
        paths: Sequence[Path],
        basis: str = "lca",
        fill: str = "none",
        zone: str | None = None,
    ) -> None:
        if not paths:
            raise ConfigError(
                "the 'files' grid provider needs CSV files: set intensity_files in "
                'greenforge.toml (e.g. intensity_files = ["GB_2023_hourly.csv.gz"]) or '
                "GREENFORGE_INTENSITY_FILES, or pass --file to `greenforge grid show`."
            )
        self.paths = tuple(Path(p) for p in paths)
        self.basis = basis
        self.fill = fill
        self.zone = zone
        self._series: IntensitySeries | None = None

    def series(self) -> IntensitySeries:
        """The whole series the files hold."""
        if self._series is None:
            self._series = load_csv(self.paths, basis=self.basis, zone=self.zone, fill=self.fill)
        return self._series

    def zones(self) -> Sequence[str]:
        return [self.series().zone]

    def _slice(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        s = self.series()
        if s.zone == UNKNOWN_ZONE:
            # generic timestamp,value files name no zone: they are the user's data for
            # wherever they run; the source keeps the file names
            s = s.replace(zone=zone)
        elif zone.upper() != s.zone.upper():
            raise UnknownZoneError(zone, [s.zone], source="the intensity files")
        if start_s < s.start_s or end_s > s.end_s:
            raise ProviderError(
                f"the intensity files ({s.source}) cover {_iso(s.start_s)} to {_iso(s.end_s)}, "
                f"not the requested {_iso(start_s)} to {_iso(end_s)}. Add the files for that "
                "period or configure a fallback provider."
            )
        return s.between(start_s, end_s)

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        return self._slice(zone, start_s, end_s)

    def forecast(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        """The files' values for a future period, when the files cover it (e.g. a forecast
        export); otherwise a ProviderError."""
        return self._slice(zone, start_s, end_s)


def _iso(t_s: float) -> str:
    return str(np.datetime64(round(t_s), "s")) + "Z"


def _create(settings: Settings) -> FilesProvider:
    return FilesProvider(
        tuple(settings.intensity_files),
        basis=settings.intensity_basis,
        fill=settings.intensity_fill,
    )


register_provider("files", _create)
