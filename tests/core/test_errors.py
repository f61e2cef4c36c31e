"""Errors name the bad value and what to do."""

from __future__ import annotations

from greenforge.errors import (
    ConfigError,
    GreenForgeError,
    MissingExtraError,
    UnknownNameError,
    UnknownZoneError,
)


def test_unknown_name_lists_valid_and_close_matches() -> None:
    err = UnknownNameError("recipe", "prunee", ["prune", "distill", "quantize"])
    text = str(err)
    assert "'prunee'" in text
    assert "Did you mean 'prune'" in text
    assert "distill, prune, quantize" in text
    assert isinstance(err, KeyError)
    assert isinstance(err, GreenForgeError)


def test_unknown_zone_suggests_close_matches() -> None:
    err = UnknownZoneError("US-CAL-CIS", ["US-CAL-CISO", "US-NY-NYIS", "DE"])
    assert "US-CAL-CISO" in str(err)
    assert isinstance(err, ConfigError)
    assert err.exit_code == 2


def test_unknown_zone_without_matches_points_to_list_command() -> None:
    err = UnknownZoneError("QQQ", ["DE", "FR"])
    assert "greenforge grid zones" in str(err)


def test_missing_extra_names_the_install_command() -> None:
    err = MissingExtraError("torch", "torch", "model shrinking")
    assert "pip install 'greenforge[torch]'" in str(err)
    assert err.exit_code == 3
