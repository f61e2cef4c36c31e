"""Specification of ``greenforge forge --export-onnx`` and ``greenforge edge ...`` on a real
(tiny) forge output directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from greenforge.cli.app import main
from greenforge.edge.export import read_metadata, sha256_file


def test_forge_export_onnx_writes_every_candidate_checked_with_metadata(forge_dir: Path) -> None:
    doc = json.loads((forge_dir / "forge.json").read_text())
    edge = forge_dir / "edge"
    manifest = json.loads((edge / "edge.json").read_text())
    sha = sha256_file(forge_dir / "forge.json")

    assert manifest["forge_json_sha256"] == sha
    for c in doc["candidates"]:
        entry = manifest["candidates"][c["name"]]
        assert entry["ok"], entry
        meta = read_metadata(edge / f"{c['name']}.onnx")
        assert meta["greenforge_candidate"] == c["name"]
        assert meta["greenforge_precision"] == c["precision"]
        assert meta["greenforge_forge_json_sha256"] == sha
        assert float(meta["greenforge_accuracy"]) == pytest.approx(c["accuracy"])
        assert (edge / f"{c['name']}.safetensors").is_file()
        assert entry["check_inputs"] == "test split"
    assert (edge / "check-inputs.npy").is_file()


def test_edge_export_repeats_any_candidate_from_the_directory(
    forge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = json.loads((forge_dir / "edge" / "edge.json").read_text())["candidates"]

    code = main(["edge", "export", str(forge_dir), "-c", "all", "--out", str(tmp_path), "--json"])

    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["failures"] == []
    got = {r["candidate"]: r for r in doc["exports"]}
    assert set(got) == set(first)
    for name, r in got.items():
        assert r["max_abs_diff"] == pytest.approx(first[name]["max_abs_diff"], abs=1e-6)
        assert Path(r["path"]).is_file()


def test_a_plain_forge_directory_exports_its_chosen_model(
    forge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("forge.json", "model.safetensors", "model.json", "model.onnx"):
        if (forge_dir / name).is_file():
            shutil.copy(forge_dir / name, plain / name)
    rows = forge_dir / "edge" / "check-inputs.npy"
    chosen = json.loads((plain / "forge.json").read_text())["chosen"]

    code = main(["edge", "export", str(plain), "--inputs", str(rows), "--json"])

    assert code == 0
    (report,) = json.loads(capsys.readouterr().out)["exports"]
    assert report["candidate"] == chosen
    assert report["check_inputs"] == "given (check-inputs.npy)"
    assert read_metadata(plain / "edge" / f"{chosen}.onnx")["greenforge_candidate"] == chosen


def test_a_directory_without_a_candidates_weights_says_how_to_get_them(
    forge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(forge_dir / "forge.json", bare / "forge.json")
    doc = json.loads((bare / "forge.json").read_text())
    other = next(c["name"] for c in doc["candidates"] if c["name"] != doc["chosen"])

    code = main(["edge", "export", str(bare), "-c", other])

    assert code == 5
    err = capsys.readouterr().err
    assert other in err
    assert "--export-onnx" in err


def test_compare_prints_modelled_figures_and_a_recommendation(
    forge_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "edge",
        "compare",
        str(forge_dir),
        "--predictions-per-day",
        "5000",
        "--edge-device",
        "rpi5",
        "--edge-zone",
        "DE",
        "--cloud-region",
        "eu-north-1",
        "--budget-s",
        "0.1",
    ]

    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    table = capsys.readouterr().out

    assert doc["verdict"] in {"edge", "cloud", "within uncertainty"}
    assert doc["method"].startswith("model:")
    assert doc["edge"]["zone"] == "DE"
    assert doc["cloud"]["zone"] == "SE-SE3"
    assert doc["cloud"]["pue"] == pytest.approx(1.135)
    for side in ("edge", "cloud"):
        total = doc[side]["total_co2e_g_per_day"]
        assert 0 < total["low"] <= total["central"] <= total["high"]
    assert "model:" in table
    assert "recommendation:" in table


def test_bench_shows_the_measured_row_and_the_modelled_devices(
    forge_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["edge", "bench", str(forge_dir), "-d", "rpi4", "-d", "cloud-gpu", "--budget-s", "0.1"]
    )

    assert code == 0
    out = capsys.readouterr().out
    assert "measured" in out
    assert "model:" in out
    assert "rpi4" in out
    assert "cloud-gpu" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--edge-device", "cloud-gpu"], "--edge-device 'cloud-gpu' is a cloud profile"),
        (["--edge-device", "rpi9"], "unknown device 'rpi9'"),
        (["--edge-device", "rpi5", "--cloud-device", "rpi4"], "--cloud-device 'rpi4'"),
    ],
)
def test_compare_refuses_bad_devices_naming_them(
    forge_dir: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    args = [
        "edge",
        "compare",
        str(forge_dir),
        "--predictions-per-day",
        "10",
        "--edge-zone",
        "DE",
        "--cloud-region",
        "eu-north-1",
    ]
    if "--edge-device" not in extra:
        extra = ["--edge-device", "rpi5", *extra]

    code = main([*args, *extra])

    assert code == 2
    assert message in capsys.readouterr().err


def test_devices_lists_every_profile_with_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "devices", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)

    assert {d["name"] for d in doc} >= {"rpi4", "rpi5", "jetson-orin-nano", "cloud-cpu"}
    assert all(d["sustained_gflops_fp32"]["source"] for d in doc)
