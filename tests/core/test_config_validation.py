"""Config validation: one check for load_settings and Settings(...), types, ranges, file shape."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from greenforge.config import Secret, Settings, load_settings, validate_settings
from greenforge.errors import ConfigError


def _cfg(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "greenforge.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"pue": -1.0}, r"bad PUE -1\.0 .*'pue'.*between 1\.0 and 3\.0"),
        ({"pue": 0.0}, r"bad PUE 0\.0 .*between 1\.0 and 3\.0"),
        ({"pue": 3.5}, r"bad PUE 3\.5"),
        ({"pue": True}, r"bad PUE True .*expected a number, got bool"),
        ({"pue": float("nan")}, r"not a finite number"),
        ({"home": 5}, r"bad value 5 for setting 'home'.*expected a path"),
        ({"interval_s": 0.0}, r"'interval_s'.*0\.01 and 3600"),
        ({"flush_interval_s": 0.0}, r"'flush_interval_s'.*> 0"),
        ({"flush_interval_s": -5.0}, r"'flush_interval_s'"),
        ({"http_timeout_s": 0.0}, r"'http_timeout_s'"),
        ({"cache_ttl_s": -1.0}, r"'cache_ttl_s'"),
        ({"embodied_kg": -1.0}, r"'embodied_kg'"),
        ({"attribution": "thread"}, r"'thread'.*'machine' or 'process'"),
        ({"zone": 49}, r"'zone'.*expected a string, got int"),
        ({"offline": "yes"}, r"'offline'.*expected true or false"),
        ({"intensity_providers": "embedded"}, r"'intensity_providers'.*list of names"),
        ({"intensity_providers": ()}, r"'intensity_providers'.*empty list"),
        ({"intensity_files": "a.csv"}, r"'intensity_files'.*list of paths"),
    ],
)
def test_settings_built_in_python_are_validated(kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_replace_validates_too() -> None:
    with pytest.raises(ConfigError, match="bad PUE 0"):
        dataclasses.replace(Settings(), pue=0.0)


def test_python_values_are_normalised() -> None:
    s = Settings(
        pue=1,
        home="/tmp/gf",  # type: ignore[arg-type]
        intensity_providers=["static", "embedded"],  # type: ignore[arg-type]
        intensity_files=["a.csv"],  # type: ignore[arg-type]
        electricitymaps_token="sk-1",  # type: ignore[arg-type]
    )
    assert s.pue == 1.0
    assert type(s.pue) is float
    assert s.home == Path("/tmp/gf")
    assert s.intensity_providers == ("static", "embedded")
    assert s.intensity_files == (Path("a.csv"),)
    assert s.electricitymaps_token == Secret("sk-1")
    assert hash(s) == hash(dataclasses.replace(s))
    assert validate_settings(s) is s


def test_secret_values_never_show_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        Settings(watttime_password=12345)  # type: ignore[arg-type]
    assert "12345" not in str(info.value)


@pytest.mark.parametrize(
    ("toml", "pattern"),
    [
        ("[greenforge]\npue = true\n", r"bad PUE True .*greenforge\.toml.*expected a number"),
        ("[greenforge]\nhome = 5\n", r"'home'.*expected a path.*int"),
        ("[greenforge]\npue = 0\n", r"bad PUE 0 .*between 1\.0 and 3\.0"),
        ("[greenforge]\nflush_interval_s = 0\n", r"flush_interval_s"),
        ("[greenforge]\noffline = 1\n", r"'offline'.*true or false"),
        ("[greenforge]\nintensity_providers = [1]\n", r"non-empty string"),
    ],
)
def test_file_values_have_strict_types(tmp_path: Path, toml: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_settings(env={}, config_file=_cfg(tmp_path, toml))


def test_misspelt_section_is_reported_with_suggestion(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown table \[greenforg\].*Did you mean 'greenforge'"
    ):
        load_settings(env={}, config_file=_cfg(tmp_path, '[greenforg]\nzone = "DE"\n'))


def test_keys_above_the_section_are_reported(tmp_path: Path) -> None:
    path = _cfg(tmp_path, 'zone = "DE"\n[greenforge]\npue = 1.2\n')
    with pytest.raises(ConfigError, match=r"'zone' is above the \[greenforge\] header"):
        load_settings(env={}, config_file=path)


def test_other_tables_beside_the_section_are_reported(tmp_path: Path) -> None:
    path = _cfg(tmp_path, '[greenforge]\nzone = "DE"\n[grid]\nfoo = 1\n')
    with pytest.raises(ConfigError, match=r"unknown table \[grid\].*only \[greenforge\]"):
        load_settings(env={}, config_file=path)


def test_unknown_sub_table_is_reported(tmp_path: Path) -> None:
    path = _cfg(tmp_path, '[greenforge]\nzone = "DE"\n[greenforge.zones]\nfoo = 1\n')
    with pytest.raises(ConfigError, match=r"unknown table \[greenforge\.zones\].*'zone'"):
        load_settings(env={}, config_file=path)


def test_unknown_key_gets_a_suggestion(tmp_path: Path) -> None:
    path = _cfg(tmp_path, "[greenforge]\nflush_interval = 2\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'flush_interval'.*'flush_interval_s'"):
        load_settings(env={}, config_file=path)


def test_non_utf8_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = _cfg(tmp_path, b'[greenforge]\nzone = "D\xe9"\n')
    with pytest.raises(ConfigError, match=r"greenforge\.toml.*not UTF-8.*line 2"):
        load_settings(env={}, config_file=path)


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = _cfg(tmp_path, '[greenforge]\nzone = "DE"\npue = \n')
    with pytest.raises(ConfigError, match=r"greenforge\.toml.*not valid TOML.*line 3"):
        load_settings(env={}, config_file=path)


def test_flat_file_still_works(tmp_path: Path) -> None:
    settings = load_settings(env={}, config_file=_cfg(tmp_path, 'zone = "FR"\npue = 1.1\n'))
    assert settings.zone == "FR"
    assert settings.pue == 1.1


def test_argument_overrides_are_checked_with_their_origin() -> None:
    with pytest.raises(ConfigError, match=r"'interval_s' \(from argument\)"):
        load_settings(env={}, config_file=None, interval_s=-1.0)
    with pytest.raises(ConfigError, match=r"unknown setting 'zonne'.*Did you mean 'zone'"):
        load_settings(env={}, config_file=None, zonne="DE")


@pytest.mark.parametrize("value", [-1.0, 0, True, float("inf"), "5"])
def test_budgets_must_be_positive_numbers(value: object) -> None:
    from greenforge.budget import Budget

    with pytest.raises(ConfigError, match=r"bad budget co2e_g=.*finite number > 0"):
        Budget(co2e_g=value)  # type: ignore[arg-type]


def test_path_lists_from_python_or_the_file_become_paths(tmp_path: Path) -> None:
    settings = load_settings(env={}, config_file=None, intensity_files=[tmp_path / "a.csv"])
    assert settings.intensity_files == (tmp_path / "a.csv",)
    path = _cfg(tmp_path, '[greenforge]\nintensity_files = ["b.csv"]\n')
    assert load_settings(env={}, config_file=path).intensity_files == (tmp_path / "b.csv",)
    with pytest.raises(ConfigError, match="list of paths"):
        load_settings(env={}, config_file=_cfg(tmp_path, "[greenforge]\nintensity_files = [1]\n"))
