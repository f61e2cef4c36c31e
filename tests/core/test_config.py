"""Settings precedence and bad values give clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenforge.config import Secret, load_settings
from greenforge.errors import ConfigError


def test_defaults_have_no_location() -> None:
    settings = load_settings(env={}, config_file=None)
    assert settings.zone is None
    assert settings.interval_s == 1.0
    assert settings.intensity_providers == ("embedded",)


def test_precedence_argument_over_env_over_file(tmp_path: Path) -> None:
    cfg = tmp_path / "greenforge.toml"
    cfg.write_text('[greenforge]\nzone = "FR"\npue = 1.2\ninterval_s = 2\n', encoding="utf-8")
    env = {"GREENFORGE_ZONE": "DE", "GREENFORGE_PUE": "1.3"}
    from_file_and_env = load_settings(env=env, config_file=cfg)
    assert from_file_and_env.zone == "DE"
    assert from_file_and_env.pue == 1.3
    assert from_file_and_env.interval_s == 2.0
    explicit = load_settings(env=env, config_file=cfg, zone="GB", pue=None)
    assert explicit.zone == "GB"
    assert explicit.pue == 1.3


def test_bad_env_value_names_setting_and_value() -> None:
    with pytest.raises(ConfigError, match=r"'abc'.*interval_s.*GREENFORGE_INTERVAL_S"):
        load_settings(env={"GREENFORGE_INTERVAL_S": "abc"}, config_file=None)


def test_out_of_range_pue_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"PUE 0\.5"):
        load_settings(env={"GREENFORGE_PUE": "0.5"}, config_file=None)


def test_unknown_key_in_file_lists_valid(tmp_path: Path) -> None:
    cfg = tmp_path / "greenforge.toml"
    cfg.write_text('zonee = "DE"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown setting 'zonee'.*zone"):
        load_settings(env={}, config_file=cfg)


def test_invalid_toml_names_file(tmp_path: Path) -> None:
    cfg = tmp_path / "greenforge.toml"
    cfg.write_text("zone = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(env={}, config_file=cfg)


def test_config_env_var_pointing_nowhere(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GREENFORGE_CONFIG"):
        load_settings(env={"GREENFORGE_CONFIG": str(tmp_path / "missing.toml")})


def test_secrets_never_show() -> None:
    settings = load_settings(env={"ELECTRICITYMAPS_API_KEY": "sk-very-secret"}, config_file=None)
    assert isinstance(settings.electricitymaps_token, Secret)
    assert settings.electricitymaps_token.reveal() == "sk-very-secret"
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in str(settings.electricitymaps_token)


def test_provider_chain_from_env() -> None:
    settings = load_settings(
        env={"GREENFORGE_INTENSITY_PROVIDERS": "electricitymaps, embedded"}, config_file=None
    )
    assert settings.intensity_providers == ("electricitymaps", "embedded")


def test_bad_attribution() -> None:
    with pytest.raises(ConfigError, match="'thread'"):
        load_settings(env={"GREENFORGE_ATTRIBUTION": "thread"}, config_file=None)


def test_home_override(tmp_path: Path) -> None:
    settings = load_settings(env={"GREENFORGE_HOME": str(tmp_path)}, config_file=None)
    assert settings.resolved_home() == tmp_path


def test_secret_looking_arguments_are_redacted_for_storage() -> None:
    from greenforge.config import redact_argv

    argv = [
        "python",
        "train.py",
        "--api-key",
        "sk-1",
        "--token=sk-2",
        "WANDB_API_KEY=sk-3",
        "https://user:sk-4@example.org/data",
        "--epochs",
        "3",
    ]
    safe = redact_argv(argv)
    assert safe == [
        "python",
        "train.py",
        "--api-key",
        "***",
        "--token=***",
        "WANDB_API_KEY=***",
        "https://user:***@example.org/data",
        "--epochs",
        "3",
    ]
    assert not any("sk-" in a for a in safe)


@pytest.mark.parametrize(
    ("xdg", "home"),
    [(None, "/home/ada"), ("", "/home/ada"), ("/srv/xdg", "/home/ada"), ("relative", "/h/")],
)
def test_user_dirs_are_platformdirs_answers_without_importing_it(
    monkeypatch: pytest.MonkeyPatch, xdg: str | None, home: str
) -> None:
    import platformdirs

    from greenforge.config import user_dir

    monkeypatch.setenv("HOME", home)
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        if xdg is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, xdg)
    assert user_dir("data") == Path(platformdirs.user_data_dir("greenforge", appauthor=False))
    assert user_dir("config") == Path(platformdirs.user_config_dir("greenforge", appauthor=False))
