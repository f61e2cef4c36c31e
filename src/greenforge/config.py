"""Settings: explicit argument > ``GREENFORGE_*`` environment > ``greenforge.toml`` > default.

The config file is looked up at ``$GREENFORGE_CONFIG``, else ``./greenforge.toml``, else
``<user config dir>/greenforge/greenforge.toml``. Only the keys of :class:`Settings` are allowed;
an unknown key or a bad value raises :class:`~greenforge.errors.ConfigError` naming it.

Secrets (API keys) are read from the environment or the config file and are kept in
:class:`Secret` wrappers whose ``repr`` never shows them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs

from greenforge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

ENV_PREFIX = "GREENFORGE_"
APP_NAME = "greenforge"


class Secret:
    """A string that never shows itself in ``repr``/``str`` (API keys, passwords)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value, for building a request header only."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


_SECRET_WORDS = re.compile(r"(token|secret|passw(or)?d|api[-_]?key|auth|credential)", re.I)


def redact_argv(argv: list[str]) -> list[str]:
    """A command line safe to store: values of secret-looking options become ``***``.

    Catches ``--api-key VALUE``, ``--token=VALUE``, ``PASSWORD=VALUE`` and
    ``https://user:pass@host`` forms; everything else is kept as typed.
    """
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        name, eq, _value = arg.partition("=")
        if eq and _SECRET_WORDS.search(name):
            out.append(f"{name}=***")
        elif arg.startswith("-") and _SECRET_WORDS.search(arg):
            out.append(arg)
            hide_next = True
        else:
            out.append(re.sub(r"(://[^/\s:@]+):[^/\s@]+@", r"\1:***@", arg))
    return out


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every user-facing setting, with its default."""

    zone: str | None = None
    """Grid zone (e.g. ``GB``, ``DE``, ``US-CAL-CISO``). No silent default location."""
    cloud_provider: str | None = None
    """``aws`` | ``gcp`` | ``azure``: with ``cloud_region`` resolves a zone and a PUE."""
    cloud_region: str | None = None
    cloud_instance_type: str | None = None
    """e.g. ``m5.large``: selects measured power curves and embodied figures when known."""
    embodied_kg: float | None = None
    """Embodied emissions of the machine (kgCO2e); overrides the cloud catalog figure."""
    device_lifetime_years: float = 4.0
    """Amortisation period for embodied emissions."""
    home: Path | None = None
    """Where the run store and caches live (``GREENFORGE_HOME``)."""
    pue: float | None = None
    """Power usage effectiveness; ``None`` = 1.0 locally, provider default in a cloud."""
    interval_s: float = 1.0
    """Sampling interval of the monitor."""
    flush_interval_s: float = 5.0
    """How often running records are flushed to the store."""
    intensity_providers: tuple[str, ...] = ("embedded",)
    """Fallback chain of grid providers, tried in order (visible in every result's source)."""
    offline: bool = False
    cache_ttl_s: float = 3600.0
    http_timeout_s: float = 10.0
    ram_w_per_gb: float = 0.375
    """Modelled RAM power per GB (low/high: 0.25-0.5 W/GB)."""
    cpu_tdp_w: float | None = None
    """Override the CPU TDP used by the modelled CPU meter."""
    attribution: str = "machine"
    """``machine`` (whole machine) or ``process`` (share of CPU time of the tracked tree)."""
    intensity_files: tuple[Path, ...] = ()
    """CSV files (Electricity Maps portal export or ``timestamp,value``) for the ``files``
    grid provider; several allowed (one per year). Env: paths joined by ``os.pathsep``."""
    intensity_basis: str = "lca"
    """``lca`` (life-cycle) or ``direct`` (combustion only): the column read from portal CSV
    files and the emission-factor type asked of the Electricity Maps API."""
    intensity_fill: str = "none"
    """Gap policy for intensity files: ``none`` (error listing the gaps), ``ffill``,
    ``interpolate`` or ``profile`` (embedded typical profile)."""
    electricitymaps_token: Secret | None = None
    watttime_username: str | None = None
    watttime_password: Secret | None = None
    watttime_region: str | None = None
    """WattTime region (e.g. ``CAISO_NORTH``) used for every zone given to ``watttime``."""
    neso_region: str | None = None
    """UK NESO region (id 1-17 or name, e.g. ``13`` / ``London``) used for zone ``GB``."""

    def resolved_home(self) -> Path:
        """The data directory (created on demand by the store)."""
        if self.home is not None:
            return self.home
        return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


_SECRET_FIELDS = {"electricitymaps_token", "watttime_password"}
_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, raw: Any, origin: str) -> Any:
    """Convert a raw value (str from env, or TOML value) to the field's type."""
    field_type = str(_FIELDS[name].type)
    try:
        if name in _SECRET_FIELDS:
            return Secret(str(raw))
        if name == "home":
            return Path(str(raw)).expanduser()
        if name == "intensity_providers":
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            names = tuple(str(s).strip() for s in items if str(s).strip())
            if not names:
                raise ValueError("empty list")
            return names
        if name == "intensity_files":
            parts = raw.split(os.pathsep) if isinstance(raw, str) else list(raw)
            return tuple(Path(str(x)).expanduser() for x in parts if str(x).strip())
        if name == "offline":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError("expected true/false")
        if field_type.startswith("float"):
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError("not a finite number")
            return value
        return str(raw)
    except (TypeError, ValueError) as exc:
        shown = "***" if name in _SECRET_FIELDS else repr(raw)
        raise ConfigError(
            f"bad value {shown} for setting {name!r} (from {origin}): {exc}. "
            f"Expected {field_type.replace(' | None', '')}."
        ) from None


def _validate(s: Settings) -> Settings:
    if s.pue is not None and not (1.0 <= s.pue <= 3.0):
        raise ConfigError(f"bad PUE {s.pue!r}: a PUE is between 1.0 and 3.0 (1.0 = no overhead).")
    if not (0.01 <= s.interval_s <= 3600):
        raise ConfigError(
            f"bad interval_s {s.interval_s!r}: use a sampling interval between 0.01 and 3600 s."
        )
    if s.flush_interval_s <= 0:
        raise ConfigError(f"bad flush_interval_s {s.flush_interval_s!r}: must be > 0 seconds.")
    if s.ram_w_per_gb < 0 or s.ram_w_per_gb > 5:
        raise ConfigError(f"bad ram_w_per_gb {s.ram_w_per_gb!r}: expected 0-5 W per GB.")
    if s.cpu_tdp_w is not None and not (1 <= s.cpu_tdp_w <= 2000):
        raise ConfigError(f"bad cpu_tdp_w {s.cpu_tdp_w!r}: expected a TDP between 1 and 2000 W.")
    if s.attribution not in {"machine", "process"}:
        raise ConfigError(f"bad attribution {s.attribution!r}: use 'machine' or 'process'.")
    if s.cloud_provider is not None and s.cloud_provider not in {"aws", "gcp", "azure"}:
        raise ConfigError(f"bad cloud_provider {s.cloud_provider!r}: use 'aws', 'gcp' or 'azure'.")
    if s.embodied_kg is not None and s.embodied_kg < 0:
        raise ConfigError(f"bad embodied_kg {s.embodied_kg!r}: must be >= 0 kgCO2e.")
    if not (0.1 <= s.device_lifetime_years <= 30):
        raise ConfigError(
            f"bad device_lifetime_years {s.device_lifetime_years!r}: expected 0.1-30 years."
        )
    if s.intensity_basis not in {"lca", "direct"}:
        raise ConfigError(
            f"bad intensity_basis {s.intensity_basis!r}: use 'lca' (life-cycle) or 'direct'."
        )
    if s.intensity_fill not in {"none", "ffill", "interpolate", "profile"}:
        raise ConfigError(
            f"bad intensity_fill {s.intensity_fill!r}: use 'none', 'ffill', 'interpolate' "
            "or 'profile'."
        )
    if s.cache_ttl_s < 0 or s.http_timeout_s <= 0:
        raise ConfigError("cache_ttl_s must be >= 0 and http_timeout_s > 0.")
    return s


def config_file_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The config file that applies, or ``None`` when there is none."""
    env = os.environ if env is None else env
    explicit = env.get(ENV_PREFIX + "CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"GREENFORGE_CONFIG points to {str(path)!r}, which is not a file. "
                "Fix the path or unset the variable."
            )
        return path
    local = Path.cwd() / "greenforge.toml"
    if local.is_file():
        return local
    user = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "greenforge.toml"
    return user if user.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    section = data.get("greenforge", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {str(path)!r}: [greenforge] must be a table.")
    return {k: v for k, v in section.items() if not isinstance(v, dict)}


def load_settings(
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings` from defaults, the config file, the environment and arguments.

    ``overrides`` whose value is ``None`` are ignored, so CLI options can be passed straight in.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_file if config_file is not None else config_file_path(env)
    if path is not None:
        for key, raw in _read_file(path).items():
            if key not in _FIELDS:
                raise ConfigError(
                    f"unknown setting {key!r} in {str(path)!r}. "
                    f"Valid settings: {', '.join(sorted(_FIELDS))}."
                )
            values[key] = _coerce(key, raw, str(path))
            if key == "intensity_files":  # relative to the config file, not the cwd
                values[key] = tuple(path.parent / f for f in values[key])
    for name in _FIELDS:
        env_key = ENV_PREFIX + name.upper()
        if env_key in env and env[env_key] != "":
            values[name] = _coerce(name, env[env_key], env_key)
    # Conventional names for API keys, as the providers document them.
    for env_key, name in (
        ("ELECTRICITYMAPS_API_KEY", "electricitymaps_token"),
        ("WATTTIME_USERNAME", "watttime_username"),
        ("WATTTIME_PASSWORD", "watttime_password"),
    ):
        if name not in values and env.get(env_key):
            values[name] = _coerce(name, env[env_key], env_key)
    for key, raw in overrides.items():
        if key not in _FIELDS:
            raise ConfigError(f"unknown setting {key!r}. Valid: {', '.join(sorted(_FIELDS))}.")
        if raw is not None:
            values[key] = raw if not isinstance(raw, str) else _coerce(key, raw, "argument")
    return _validate(Settings(**values))
