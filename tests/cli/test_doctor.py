"""`greenforge doctor`: what is measurable here and how to enable the rest."""

from __future__ import annotations

import json

import pytest

from greenforge.cli.app import main


def test_doctor_prints_meters_cpu_and_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0

    out = capsys.readouterr().out
    for text in ("rapl", "model-cpu", "nvidia", "amd", "model-ram", "catalog match", "PUE"):
        assert text in out
    assert "greenforge[nvidia]" in out  # how to enable, not swallowed as rich markup


def test_doctor_json_is_one_object_with_the_documented_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["doctor", "--json"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert {"meters", "chosen", "reasons", "cpu", "zone", "pue", "embodied"} <= set(report)
    names = {m["name"] for m in report["meters"]}
    assert {"rapl", "model-cpu", "nvidia", "amd", "model-ram"} <= names
    assert all(m["available"] or m["how_to_enable"] for m in report["meters"])
    assert report["cpu"]["logical_cpus"] >= 1
    assert report["pue"] == {"pue": 1.0, "source": "default:local-machine"}
    assert not report["zone"]["ok"]  # no zone configured: said, not guessed
    assert "GREENFORGE_ZONE" in report["zone"]["status"]


def test_doctor_reports_a_given_zone_and_cloud_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREENFORGE_CLOUD_PROVIDER", "aws")
    monkeypatch.setenv("GREENFORGE_CLOUD_INSTANCE_TYPE", "m5.large")

    assert main(["doctor", "--json", "--zone", "DE"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert report["zone"]["ok"]
    assert report["zone"]["zone"] == "DE"
    assert report["pue"]["pue"] == 1.135
    assert report["embodied"]["kgco2e"] > 0
    assert report["cpu"]["power_model"]["method"] == "model:cpu-ccf-vcpu"


def test_doctor_turns_bad_settings_into_findings_and_still_exits_0(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREENFORGE_CLOUD_INSTANCE_TYPE", "m5.larg")

    assert main(["doctor", "--json"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert any("m5.large" in p for p in report["problems"])


def test_doctor_shows_process_attribution_in_the_chosen_meters(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREENFORGE_ATTRIBUTION", "process")

    assert main(["doctor", "--json"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["attribution"] == "process"
    cpu = [r for r in report["reasons"] if r.startswith("model-cpu")]
    if cpu:  # machines with readable RAPL use it instead (scoped as rapl+process-share)
        assert all("process-tree" in r for r in cpu), cpu
        assert not any("attribution: machine" in r for r in report["reasons"])
