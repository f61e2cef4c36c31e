"""PUE over time outside Python: ``greenforge run --pue SPEC``, ``GREENFORGE_PUE`` / ``pue = "..."``
as a series spec, and the run's energy-weighted PUE in ``runs show`` and the HTML report."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from greenforge.cli.app import main
from greenforge.config import Settings, load_settings
from greenforge.errors import ConfigError
from greenforge.report.html import run_report
from greenforge.report.store import RunStore

PY = sys.executable


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GREENFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "400")  # rich tables on one line each
    for var in ("GREENFORGE_ZONE", "GREENFORGE_PUE", "GREENFORGE_PUE_SERIES", "GREENFORGE_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


@pytest.fixture
def temps(tmp_path: Path) -> Path:
    """Hourly outdoor temperatures around now: 30 deg C (chiller on) then 5 deg C."""
    now_h = int(time.time() // 3600 * 3600)
    path = tmp_path / "temps.csv"
    rows = [f"{now_h + h * 3600},{30.0 if h < 0 else 5.0}" for h in range(-3, 4)]
    path.write_text("timestamp,temperature_c\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_pue_that_is_not_a_number_is_a_series_spec(temps: Path, tmp_path: Path) -> None:
    spec = f"model:free-cooled:{temps}:0.5"
    s = load_settings(env={"GREENFORGE_PUE": spec}, config_file=None)
    assert (s.pue, s.pue_series) == (None, spec)
    assert load_settings(env={"GREENFORGE_PUE": "1.3"}, config_file=None).pue == 1.3
    # in the config file, a relative path is next to the file; the environment's number wins
    cfg = tmp_path / "sub" / "greenforge.toml"
    cfg.parent.mkdir()
    (cfg.parent / "t.csv").write_text(temps.read_text(), encoding="utf-8")
    cfg.write_text('pue = "model:air-cooled:t.csv"\n', encoding="utf-8")
    from_file = load_settings(env={}, config_file=cfg)
    assert from_file.pue_series == f"model:air-cooled:{cfg.parent / 't.csv'}"
    both = load_settings(env={"GREENFORGE_PUE": "1.2"}, config_file=cfg)
    assert (both.pue, both.pue_series) == (1.2, None)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("missing.csv", r"PUE series spec 'missing.csv'.*GREENFORGE_PUE.*not found"),
        ("model:free-cooled", r"model:<design>:<temperature.csv>"),
        ("model:free-cooled:{temps}:1.5", r"IT load '1.5'"),
    ],
)
def test_bad_pue_specs_say_what_to_give(spec: str, match: str, temps: Path) -> None:
    with pytest.raises(ConfigError, match=match):
        load_settings(env={"GREENFORGE_PUE": spec.format(temps=temps)}, config_file=None)


def test_pue_and_pue_series_together_are_refused(temps: Path) -> None:
    with pytest.raises(ConfigError, match="give one"):
        Settings(pue=1.2, pue_series=str(temps))


def test_run_with_a_pue_series_shows_the_energy_weighted_pue(
    temps: Path, home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--zone", "DE", "--interval", "0.05", "--pue", f"model:free-cooled:{temps}"]
    assert main([*argv, "--", PY, "-c", "sum(range(10**6))"]) == 0
    err = capfd.readouterr().err
    assert "energy-weighted over the run" in err
    with RunStore.for_settings(load_settings(config_file=None)) as store:
        [record] = store.list()
    e = record.emissions
    assert e is not None
    assert e.pue_source.startswith("PUE(t) model:free-cooled")
    series = record.metadata["pue_series"]
    assert series["kind"] == "model"
    assert series["min"] < series["max"]
    assert series["min"] - 1e-9 <= e.pue <= series["max"] + 1e-9  # (a mean: a few ulps)
    assert main(["runs", "show", record.id]) == 0
    assert "energy-weighted over the run" in capfd.readouterr().out
    page = run_report([record])
    assert "energy-weighted over the run, PUE(t) from model:free-cooled" in page


def test_the_environment_spec_drives_a_plain_run(
    temps: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREENFORGE_PUE", f"model:air-cooled:{temps}:0.4")
    assert main(["run", "--zone", "DE", "--interval", "0.05", "--", PY, "-c", "pass"]) == 0
    assert "PUE(t) from model:air-cooled(IT load 0.4)" in capfd.readouterr().err


def test_run_with_a_bad_pue_fails_before_the_command(
    home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--zone", "DE", "--pue", "model:hot:x.csv", "--", PY, "-c", "print(1)"])
    out, err = capfd.readouterr()
    assert code != 0
    assert "1" not in out
    assert "not found" in err or "hot" in err


def test_doctor_s_pue_is_the_series_mean(temps: Path) -> None:
    from greenforge.hardware.catalog import default_pue

    settings = load_settings(env={"GREENFORGE_PUE": f"model:air-cooled:{temps}"}, config_file=None)
    pue, source = default_pue(settings)
    assert 1.3 < pue < 1.6
    assert source.startswith("settings.pue_series: PUE ")
