"""Settings: explicit argument > ``GREENFORGE_*`` environment > ``greenforge.toml`` > default.

The config file is looked up at ``$GREENFORGE_CONFIG``, else ``./greenforge.toml``, else
``<user config dir>/greenforge/greenforge.toml``. Only the keys of :class:`Settings` are allowed,
under ``[greenforge]`` (or at the top level of a file without tables); an unknown key or table, a
key above ``[greenforge]``, a value of the wrong type (``pue = true``, ``home = 5``) or out of its
plausible range raises :class:`~greenforge.errors.ConfigError` naming it, its origin and a close
match. The same check runs in ``Settings.__post_init__``, so ``Settings(pue=0)`` built in Python
(or through ``dataclasses.replace``) is refused exactly as the file would be.

Secrets (API keys) are read from the environment or the config file and are kept in
:class:`Secret` wrappers whose ``repr`` never shows them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from greenforge.errors import ConfigError
from greenforge.redact import redact_argv as redact_argv  # re-exported: one place for redaction
from greenforge.redact import redact_url

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
    pue_series: str | None = None
    """PUE over time, a :func:`greenforge.pue.load_pue` spec: a ``timestamp,pue`` CSV or
    ``model:<design>:<temperature.csv>[:it_load]``. ``GREENFORGE_PUE`` (or ``pue = "..."`` in the
    config file, or ``greenforge run --pue``) that is not a number lands here; the tracker
    charges each interval PUE(t). At most one of ``pue`` and ``pue_series``."""
    interval_s: float = 1.0
    """Sampling interval of the monitor."""
    flush_interval_s: float = 5.0
    """How often running records are flushed to the store."""
    intensity_providers: tuple[str, ...] = ("embedded",)
    """Fallback chain of grid providers, tried in order (visible in every result's source)."""
    offline: bool = False
    cache_ttl_s: float = 3600.0
    http_timeout_s: float = 10.0
    """Deadline of one request to a grid API: connecting, headers and the whole answer (s)."""
    http_budget_s: float = 10.0
    """Network time one command may spend on grid APIs in all (requests and waits between
    retries); once spent, the provider chain falls back, visibly, to the next provider."""
    ram_w_per_gb: float = 0.375
    """Modelled RAM power per GB (low/high: 0.25-0.5 W/GB)."""
    cpu_tdp_w: float | None = None
    """Override the CPU TDP used by the modelled CPU meter."""
    attribution: str = "process"
    """``process`` (default: the tracked tree's share of busy CPU time, so a shared or
    containerised host charges a run its own work) or ``machine`` (the whole machine)."""
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
    electricitymaps_base_url: str | None = None
    """Base URL of the Electricity Maps API, for a proxy or mirror (default: the public API)."""
    watttime_base_url: str | None = None
    """Base URL of the WattTime API, for a proxy or mirror (default: the public API)."""
    ukneso_base_url: str | None = None
    """Base URL of the UK NESO carbon-intensity API, for a proxy or mirror."""
    energidataservice_base_url: str | None = None
    """Base URL of Energi Data Service, for a proxy or mirror (default: the public API)."""

    def __post_init__(self) -> None:
        # One validation for every way a Settings is built: load_settings, Settings(...) in
        # Python and dataclasses.replace. A few isinstance checks per field (microseconds).
        for name in _KINDS:
            value = getattr(self, name)
            try:
                fixed = _normalise(name, value)
            except ValueError as exc:
                raise ConfigError(_bad_message(name, value, "Settings(...)", str(exc))) from None
            if fixed is not value:
                object.__setattr__(self, name, fixed)
        if self.pue is not None and self.pue_series is not None:
            raise ConfigError(
                f"both pue={self.pue!r} and pue_series={self.pue_series!r} are set: give one "
                "(a number is a constant PUE, a spec a PUE series)."
            )

    def resolved_home(self) -> Path:
        """The data directory (created on demand by the store)."""
        if self.home is not None:
            return self.home
        return user_dir("data")


_XDG = {"data": ("XDG_DATA_HOME", ".local/share"), "config": ("XDG_CONFIG_HOME", ".config")}


def user_dir(kind: str) -> Path:
    """Returns greenforge's per-user ``"data"`` or ``"config"`` directory (not created).

    On Linux with an absolute ``HOME`` this is the XDG location (``$XDG_DATA_HOME`` /
    ``$XDG_CONFIG_HOME`` when absolute, else ``~/.local/share`` / ``~/.config``, plus
    ``greenforge``), which is platformdirs' answer there, without importing platformdirs
    (~6 ms) on every tracker start; elsewhere platformdirs answers.
    """
    var, default = _XDG[kind]
    home = os.environ.get("HOME", "")
    if sys.platform.startswith("linux") and home.startswith("/"):
        base = os.environ.get(var, "")
        return (Path(base) if base.startswith("/") else Path(home) / default) / APP_NAME
    import platformdirs

    if kind == "data":
        return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


_SECRET_FIELDS = {"electricitymaps_token", "watttime_password"}
_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _kind(type_text: str) -> tuple[str, bool]:
    """``("float", True)`` for ``"float | None"``: the base type of a field and if it may be
    ``None``."""
    optional = type_text.endswith(" | None")
    return type_text.removesuffix(" | None"), optional


_KINDS: dict[str, tuple[str, bool]] = {name: _kind(str(f.type)) for name, f in _FIELDS.items()}
_CHOICES: dict[str, tuple[str, ...]] = {
    "attribution": ("machine", "process"),
    "cloud_provider": ("aws", "gcp", "azure"),
    "intensity_basis": ("lca", "direct"),
    "intensity_fill": ("none", "ffill", "interpolate", "profile"),
}
# (low, high, inclusive low, what the number is): every float setting has a plausible range
_BOUNDS: dict[str, tuple[float, float, bool, str]] = {
    "pue": (1.0, 3.0, True, "a PUE is between 1.0 and 3.0 (1.0 = no overhead)"),
    "interval_s": (0.01, 3600.0, True, "use a sampling interval between 0.01 and 3600 s"),
    "flush_interval_s": (0.0, 86400.0, False, "use a flush interval > 0 and <= 86400 s"),
    "ram_w_per_gb": (0.0, 5.0, True, "expected 0-5 W per GB"),
    "cpu_tdp_w": (1.0, 2000.0, True, "expected a TDP between 1 and 2000 W"),
    "embodied_kg": (0.0, 1e6, True, "embodied emissions are >= 0 kgCO2e"),
    "device_lifetime_years": (0.1, 30.0, True, "expected 0.1-30 years"),
    "cache_ttl_s": (0.0, 10 * 365.25 * 86400, True, "a cache lifetime is >= 0 s"),
    "http_timeout_s": (0.0, 3600.0, False, "a timeout is > 0 and <= 3600 s"),
    "http_budget_s": (0.0, 3600.0, True, "a network budget is >= 0 and <= 3600 s"),
}
_LABELS = {"pue": "PUE", "pue_series": "PUE series spec"}


def _bad_message(name: str, value: Any, origin: str, why: str) -> str:
    """The one wording of a bad setting: label, value (secrets hidden), origin, reason."""
    shown = "***" if name in _SECRET_FIELDS and value is not None else repr(value)
    if name.endswith("_base_url") and isinstance(value, str):
        shown = repr(redact_url(value))  # a URL may carry a password
    label = _LABELS.get(name, "value")
    return f"bad {label} {shown} for setting {name!r} (from {origin}): {why}."


def _check_base_url(url: str) -> None:
    """Raise ``ValueError`` unless ``url`` is an http(s) URL with a host and no credentials."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http(s) URL such as 'https://proxy.example.org/v3'")
    if parts.username or parts.password:
        raise ValueError("credentials in a base URL would end up in logs; leave them out")
    if parts.query or parts.fragment:
        raise ValueError("a base URL has no query (?...) or fragment (#...)")


def _check_pue_spec(spec: str) -> None:
    """Raise ``ValueError`` unless ``spec`` reads as a PUE series spec whose file exists (the
    series itself is read when a tracker starts: settings load on every command and stay
    cheap)."""
    text = spec.strip()
    usage = (
        "give a number (1.2), a CSV path (timestamp,pue) or "
        "model:<design>:<temperature.csv>[:it_load] (designs: air-cooled, free-cooled)"
    )
    if _is_number(text):
        raise ValueError("a number is a constant PUE: set pue, not pue_series")
    if not text:
        raise ValueError(usage)
    if text.startswith("model:"):
        parts = text.split(":")
        if len(parts) not in (3, 4) or not parts[1] or not parts[2]:
            raise ValueError(usage)
        if len(parts) == 4 and not (_is_number(parts[3]) and 0 < float(parts[3]) <= 1):
            raise ValueError(f"IT load {parts[3]!r} must be a fraction in (0, 1]")
        path = parts[2]
    else:
        path = text
    if not Path(path).expanduser().is_file():
        raise ValueError(f"file {path!r} not found ({usage})")


def _normalise(name: str, value: Any) -> Any:
    """``value`` as setting ``name`` stores it (int -> float, list -> tuple, str -> Path or
    Secret); raises ``ValueError`` saying what is wrong with its type or range."""
    kind, optional = _KINDS[name]
    if value is None:
        if optional:
            return None
        raise ValueError("a value is required")
    if kind == "float":
        # bool is an int in Python, but `pue = true` is a mistake, not 1.0
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {type(value).__name__}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        bounds = _BOUNDS.get(name)
        if bounds is not None:
            low, high, closed, why = bounds
            if not ((low <= number) if closed else (low < number)) or number > high:
                raise ValueError(why)
        return value if type(value) is float else number
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {type(value).__name__}")
        choices = _CHOICES.get(name)
        if choices is not None and value not in choices:
            raise ValueError("use " + " or ".join(repr(c) for c in choices))
        if name.endswith("_base_url"):
            _check_base_url(value)
        if name == "pue_series":
            _check_pue_spec(value)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {type(value).__name__}")
        return value
    if kind == "Path":
        if isinstance(value, Path):
            return value
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise ValueError(f"expected a path (a string), got {type(value).__name__}")
        return Path(os.fspath(value))
    if kind == "Secret":
        if isinstance(value, Secret):
            return value
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {type(value).__name__}")
        return Secret(value)
    if kind == "tuple[str, ...]":
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list of names, got {type(value).__name__}")
        if not value:
            raise ValueError("empty list")
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise ValueError("every entry must be a non-empty string")
        return value if isinstance(value, tuple) else tuple(value)
    if kind == "tuple[Path, ...]":
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list of paths, got {type(value).__name__}")
        if not all(isinstance(v, (str, os.PathLike)) for v in value):
            raise ValueError("every entry must be a path (a string)")
        if isinstance(value, tuple) and all(isinstance(v, Path) for v in value):
            return value
        return tuple(Path(os.fspath(v)) for v in value)
    raise AssertionError(f"setting {name!r} has no validation for type {kind!r}")


def validate_settings(settings: Settings) -> Settings:
    """The same ``settings``, checked again (types and plausible ranges); raises
    :class:`~greenforge.errors.ConfigError`. Construction already validates, so this only
    matters for objects changed behind the dataclass's back."""
    for name in _KINDS:
        value = getattr(settings, name)
        try:
            _normalise(name, value)
        except ValueError as exc:
            raise ConfigError(_bad_message(name, value, "Settings(...)", str(exc))) from None
    return settings


def _coerce(name: str, raw: Any, origin: str) -> Any:
    """A raw value (text from the environment or an argument, or a TOML value) in the field's
    type, checked; raises :class:`ConfigError` naming the setting, the value and the origin."""
    kind, _optional = _KINDS[name]
    value: Any = raw  # once parsed, a range error shows the number, not its text
    try:
        if isinstance(raw, str):
            # text (environment, CLI argument, TOML string): parse into the field's type
            if kind == "float":
                try:
                    value = float(raw)
                except ValueError:
                    raise ValueError("expected a number") from None
            elif kind == "bool":
                text = raw.strip().lower()
                if text in {"1", "true", "yes", "on"}:
                    value = True
                elif text in {"0", "false", "no", "off", ""}:
                    value = False
                else:
                    raise ValueError("expected true/false")
            elif kind == "Path":
                value = Path(raw).expanduser()
            elif kind == "tuple[str, ...]":
                value = tuple(s.strip() for s in raw.split(",") if s.strip())
            elif kind == "tuple[Path, ...]":
                value = tuple(Path(x).expanduser() for x in raw.split(os.pathsep) if x.strip())
        elif kind == "tuple[Path, ...]" and isinstance(raw, (list, tuple)):
            if not all(isinstance(x, (str, os.PathLike)) for x in raw):
                raise ValueError("expected a list of paths (strings)")
            value = tuple(Path(x).expanduser() for x in raw if str(x).strip())
        return _normalise(name, value)
    except ValueError as exc:
        raise ConfigError(_bad_message(name, value, origin, str(exc))) from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _validate(s: Settings) -> Settings:
    """Kept for callers of the old name: construction validates; see :func:`validate_settings`."""
    return validate_settings(s)


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
    user = user_dir("config") / "greenforge.toml"
    return user if user.is_file() else None


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` Did you mean 'zone'?`` for a close match of ``word`` among ``options``, else ``''``."""
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _read_file(path: Path) -> dict[str, Any]:
    """The settings table of a config file; raises :class:`ConfigError` naming the file for
    bytes that are not UTF-8, invalid TOML (with its line), unknown tables and unknown keys."""
    shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {shown!r}: {exc.strerror or exc}.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"config file {shown!r} is not UTF-8 text (byte {raw[exc.start]:#04x} on line "
            f"{line}): save it as UTF-8."
        ) from None
    if sys.version_info >= (3, 11):  # imported here: most starts read no config file
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # the message ends with "(at line N, column M)"
        raise ConfigError(f"config file {shown!r} is not valid TOML: {exc}.") from None
    if "greenforge" in data:
        section = data["greenforge"]
        if not isinstance(section, dict):
            raise ConfigError(
                f"config file {shown!r}: greenforge must be a table: write [greenforge] on a "
                "line of its own and the settings below it."
            )
        for key, value in data.items():
            if key == "greenforge":
                continue
            if isinstance(value, dict):
                raise ConfigError(
                    f"unknown table [{key}] in config file {shown!r}: only [greenforge] is "
                    f"read.{_did_you_mean(key, ['greenforge'])}"
                )
            raise ConfigError(
                f"setting {key!r} is above the [greenforge] header in config file {shown!r}, "
                "so it belongs to no table and would be ignored: move it below [greenforge]."
            )
        prefix = "greenforge."
    else:  # a flat file: the settings at the top level
        section, prefix = data, ""
    for key, value in section.items():
        if isinstance(value, dict):
            hint = _did_you_mean(key, ["greenforge"] if not prefix else _FIELDS)
            raise ConfigError(
                f"unknown table [{prefix}{key}] in config file {shown!r}: settings are plain "
                f"`name = value` lines under [greenforge].{hint}"
            )
        if key not in _FIELDS:
            raise ConfigError(
                f"unknown setting {key!r} in config file {shown!r}.{_did_you_mean(key, _FIELDS)} "
                f"Valid settings: {', '.join(sorted(_FIELDS))}."
            )
    return dict(section)


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

    def put(key: str, raw: Any, origin: str, base: Path | None = None) -> None:
        # a PUE that is not a number is a series spec; the later origin wins, so setting one
        # of pue/pue_series drops the other
        if key in ("pue", "pue_series") and isinstance(raw, str) and not _is_number(raw):
            key = "pue_series"
            if base is not None and not raw.strip().startswith("model:"):
                raw = str(base / Path(raw.strip()).expanduser())
            elif base is not None:  # model:<design>:<file>[:load], the file next to the config
                parts = raw.strip().split(":")
                if len(parts) >= 3 and parts[2]:
                    parts[2] = str(base / Path(parts[2]).expanduser())
                raw = ":".join(parts)
        elif key == "pue_series" and raw is not None:
            key = "pue"  # a number given as pue_series: a constant PUE
        if key in ("pue", "pue_series"):
            values.pop("pue_series" if key == "pue" else "pue", None)
        values[key] = _coerce(key, raw, origin)

    path = config_file if config_file is not None else config_file_path(env)
    if path is not None:
        for key, raw in _read_file(path).items():
            put(key, raw, str(path), base=path.parent)
            if key == "intensity_files":  # relative to the config file, not the cwd
                values[key] = tuple(path.parent / f for f in values[key])
    for name in _FIELDS:
        env_key = ENV_PREFIX + name.upper()
        if env_key in env and env[env_key] != "":
            put(name, env[env_key], env_key)
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
            raise ConfigError(
                f"unknown setting {key!r}.{_did_you_mean(key, _FIELDS)} "
                f"Valid: {', '.join(sorted(_FIELDS))}."
            )
        if raw is not None:
            put(key, raw, "argument")
    return Settings(**values)  # validated in Settings.__post_init__
