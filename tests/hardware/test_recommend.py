"""greenforge recommend: the ranking against a hand computation, the hourly planner, FLOPs and
stored-run inputs, the market-based column and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenforge.cli.app import main
from greenforge.config import Settings, load_settings
from greenforge.errors import ConfigError, InfeasibleError
from greenforge.grid.chain import intensity_for
from greenforge.hardware.recommend import Constraints, Workload, accelerator_name, recommend
from greenforge.records import ComponentTotal, RunRecord, WindowRecord
from greenforge.report.store import RunStore
from greenforge.schedule.job import Job
from greenforge.schedule.planner import plan_job

GIB_IN_GB = 2**30 / 1e9
HOURS_PER_YEAR = 365.25 * 24
THREE = ("europe-north1", "us-central1", "asia-south1")


def hand_total_kg(intensity_g_per_kwh: float) -> tuple[float, float, float]:
    """100 H100-hours on gcp a3-highgpu-8g, by hand from the published figures:
    8 x 700 W x 0.8 + 208 vCPUs x (0.81401 + (4.381679 - 0.81401) x 0.5) W (CCF, Emerald Rapids)
    + 1872 GiB x 0.375 W/GB, for 100 / 8 = 12.5 h, x PUE 1.1 x intensity; embodied 4,776.17 kg
    (CCF method) x 12.5 h / 4 years."""
    hours = 100 / 8
    power_w = 8 * 700 * 0.8 + 208 * (0.81401 + (4.381679 - 0.81401) * 0.5)
    power_w += 1872 * GIB_IN_GB * 0.375
    kwh = power_w * hours / 1000
    operational = kwh * 1.1 * intensity_g_per_kwh / 1000
    embodied = 4776.17 * hours / (4 * HOURS_PER_YEAR)
    return operational, embodied, kwh


def test_the_ranking_of_three_regions_matches_a_hand_computation() -> None:
    rec = recommend(
        Workload.gpu_hours(100, "H100"),
        Constraints(providers=("gcp",), regions=THREE, accelerators=("H100",), all_sizes=True),
    )
    rows = [o for o in rec.options if o.instance == "a3-highgpu-8g"]

    # embedded Electricity Maps 2025 annual: FI 68, US-MIDW-MISO 501, IN-WE 653 g/kWh
    expected = {"europe-north1": 68.0, "us-central1": 501.0, "asia-south1": 653.0}
    assert [o.region for o in rows] == ["europe-north1", "us-central1", "asia-south1"]
    for o in rows:
        op, emb, kwh = hand_total_kg(expected[o.region])
        assert o.intensity_g_per_kwh == expected[o.region]
        assert o.intensity_kind == "annual"
        assert o.duration_s == pytest.approx(12.5 * 3600)
        assert o.energy_kwh == pytest.approx(kwh, rel=1e-9)
        assert o.operational_kg == pytest.approx(op, rel=1e-9)
        assert o.embodied_kg == pytest.approx(emb, rel=1e-9)
        assert o.total_kg == pytest.approx(op + emb, rel=1e-9)
        assert o.total_low_kg < o.total_kg < o.total_high_kg
    fi = rows[0]
    assert fi.total_kg == pytest.approx(7.10, abs=0.01)
    # Google reports 98 % CFE for europe-north1 (2024): the market-based indicator, kept apart
    assert fi.cfe_share == 0.98
    assert fi.market_co2e_kg == pytest.approx(fi.operational_kg * 0.02 + fi.embodied_kg)


def test_by_default_one_size_per_region_and_accelerator_is_kept() -> None:
    rec = recommend(
        Workload.gpu_hours(100, "H100"),
        Constraints(providers=("gcp",), regions=THREE, accelerators=("H100", "TPU-v5e")),
    )
    keys = [(o.region, o.accelerator) for o in rec.options]
    assert len(keys) == len(set(keys)) == 6
    totals = [o.total_kg for o in rec.options]
    assert totals == sorted(totals)


def test_other_accelerators_scale_hours_by_peak_throughput() -> None:
    rec = recommend(
        Workload.gpu_hours(100, "h100"),
        Constraints(providers=("aws",), regions=("eu-west-1",), accelerators=("A100",)),
    )
    (a100,) = rec.options
    # 100 h x 989.4 TFLOPS / (8 x 312 TFLOPS) on p4d/p4de
    assert a100.duration_s / 3600 == pytest.approx(100 * 989.4 / (8 * 312))


def test_flops_give_run_time_bounds_from_the_published_utilisation() -> None:
    rec = recommend(
        Workload.flops(1e21, "bf16"),
        Constraints(providers=("gcp",), regions=("europe-west4",), accelerators=("TPU-v6e",)),
    )
    (o,) = rec.options
    rate = o.count * 918e12
    assert o.duration_s == pytest.approx(1e21 / (rate * 0.40))
    assert o.duration_low_s == pytest.approx(1e21 / (rate * 0.55))
    assert o.duration_high_s == pytest.approx(1e21 / (rate * 0.30))
    assert any("MFU" in a for a in rec.assumptions)


def test_with_a_deadline_the_planner_s_best_start_sets_the_intensity() -> None:
    start_s = 1_735_689_600.0  # 2025-01-01T00:00Z
    deadline_s = start_s + 2 * 86400
    rec = recommend(
        Workload.gpu_hours(8, "H100"),
        Constraints(
            providers=("gcp",),
            regions=("europe-west2",),
            accelerators=("H100",),
            start_s=start_s,
            deadline_s=deadline_s,
            all_sizes=True,
        ),
    )
    o = next(o for o in rec.options if o.instance == "a3-highgpu-8g")
    assert o.intensity_kind == "hourly profile"  # GB has an embedded hourly profile
    # the same plan, straight from the planner, on the same series
    series = intensity_for(Settings(), "GB", start_s, deadline_s, forecast=True)
    job = Job(
        duration_s=o.duration_s,
        earliest_start_s=start_s,
        deadline_s=deadline_s,
        zones=("GB",),
        power_w=1000.0,
    )
    plan = plan_job(job, {"GB": series})
    assert o.start_s == plan.start_s
    assert o.intensity_g_per_kwh == pytest.approx(plan.expected_co2e_g / (plan.energy_j / 3.6e6))
    assert o.intensity_g_per_kwh <= plan.run_now_co2e_g / (plan.energy_j / 3.6e6) + 1e-9


def test_options_that_cannot_meet_the_deadline_are_left_out_with_a_note() -> None:
    start_s = 1_735_689_600.0
    rec = recommend(
        Workload.gpu_hours(16, "H100"),
        Constraints(
            providers=("gcp",),
            regions=("europe-west2",),
            accelerators=("H100",),
            start_s=start_s,
            deadline_s=start_s + 4 * 3600,
            all_sizes=True,
        ),
    )
    assert {o.instance for o in rec.options} >= {"a3-highgpu-8g", "a3-highgpu-4g"}
    assert "a3-highgpu-1g" not in {o.instance for o in rec.options}  # 16 h > 4 h
    assert any("cannot finish before the deadline" in n for n in rec.notes)
    with pytest.raises(InfeasibleError, match="later --deadline"):
        recommend(
            Workload.gpu_hours(1000, "H100"),
            Constraints(
                providers=("gcp",),
                accelerators=("H100",),
                start_s=start_s,
                deadline_s=start_s + 3600,
            ),
        )


def test_inference_chips_are_offered_only_when_named() -> None:
    rec = recommend(Workload.gpu_hours(10, "H100"), Constraints(providers=("aws",)))
    assert "Inferentia2" not in {o.accelerator for o in rec.options}
    rec = recommend(
        Workload.gpu_hours(10, "H100"),
        Constraints(providers=("aws",), accelerators=("Inferentia2",), regions=("us-east-1",)),
    )
    assert {o.accelerator for o in rec.options} == {"Inferentia2"}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Workload.gpu_hours(0, "H100"), "--gpu-hours must be a number > 0"),
        (lambda: Workload.gpu_hours(1, "H1000"), "unknown accelerator 'H1000': known ones"),
        (lambda: Workload.gpu_hours(1, "A100", "fp8"), "no fp8 throughput is published for A100"),
        (lambda: Workload.flops(1e20, "int4"), "unknown precision 'int4'"),
        (
            lambda: recommend(Workload.flops(1e20), Constraints(max_price_per_h=10.0)),
            "embeds no cloud prices",
        ),
        (
            lambda: recommend(Workload.flops(1e20), Constraints(providers=("ibm",))),
            "unknown provider 'ibm'",
        ),
        (
            lambda: recommend(Workload.flops(1e20), Constraints(regions=("europe-nort1",))),
            "Close matches: europe-north1",
        ),
        (
            lambda: recommend(
                Workload.flops(1e20), Constraints(providers=("aws",), regions=("europe-north1",))
            ),
            "add its provider to --provider",
        ),
    ],
)
def test_bad_input_names_the_value_and_what_to_do(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()  # type: ignore[operator]


def test_accelerator_names_are_forgiving() -> None:
    assert accelerator_name("v5e") == "TPU-v5e"
    assert accelerator_name("tpu v6e") == "TPU-v6e"
    assert accelerator_name("mi300x") == "MI300X"


@pytest.fixture
def stored_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunRecord:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GREENFORGE_HOME", str(tmp_path / "home"))
    record = RunRecord(
        id="rec0001",
        name="train",
        status="completed",
        started_s=1_700_000_000.0,
        ended_s=1_700_010_800.0,
        duration_s=10_800.0,
        components=(ComponentTotal("gpu", 3.6e7, 3.2e7, 4.0e7, "nvml-energy"),),
        emissions=None,
        windows=(
            WindowRecord("load", "load", 1_700_000_000.0, 1_700_003_600.0, 0.6e7),
            WindowRecord("train", "train", 1_700_003_600.0, 1_700_010_800.0, 3.0e7),
        ),
        metadata={"cloud_instance_type": "g6.xlarge"},
    )
    with RunStore.for_settings(load_settings()) as store:
        store.save(record)
    return record


def test_a_stored_run_is_moved_to_each_region_as_measured(
    stored_run: RunRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["recommend", "--run", "rec0", "--provider", "gcp", "--region", ",".join(THREE)]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)

    assert out["workload"]["kind"] == "run"
    regions = [o["region"] for o in out["options"]]
    assert regions == ["europe-north1", "us-central1", "asia-south1"]
    fi = out["options"][0]
    assert fi["energy_kwh"] == pytest.approx(10.0)
    assert fi["energy_low_kwh"] == pytest.approx(3.2e7 / 3.6e6)
    assert fi["operational_kg"] == pytest.approx(10.0 * 1.1 * 68.0 / 1000)
    assert fi["instance"] == "as measured (g6.xlarge)"
    assert fi["market_co2e_kg"] == pytest.approx(fi["operational_kg"] * 0.02)
    assert "location-based" in out["basis"]["ranking"]


def test_a_stored_run_s_windows_give_the_planner_its_power_profile(stored_run: RunRecord) -> None:
    workload = Workload.from_run(stored_run)
    # hour 1: 6e6 J, hours 2-3: 1.5e7 J each
    assert workload.power_profile_w == pytest.approx((6e6 / 3600, 1.5e7 / 3600, 1.5e7 / 3600))


def test_the_table_prints_both_bases_apart_with_sources(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["recommend", "--gpu-hours", "100", "--accelerator", "H100", "--provider", "gcp"]
    assert main([*argv, "--region", ",".join(THREE), "--accelerators", "H100"]) == 0
    out = capsys.readouterr().out
    assert "ranked by total CO2e (location-based)" in out
    assert "gcp europe-north1 (FI)" in out
    assert "Market-based indicator" in out
    assert "98%" in out
    assert "H100 power: https://www.nvidia.com/en-us/data-center/h100/" in out
    assert "embedded:electricitymaps-yearly-2025:FI" in out


def test_the_command_refuses_two_job_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "--gpu-hours", "1", "--flops", "1e20"]) == 2
    assert "describe the job one way" in capsys.readouterr().err
    assert main(["recommend", "--gpu-hours", "1"]) == 2
    assert "--gpu-hours needs --accelerator" in capsys.readouterr().err


def test_a_run_keeps_its_embodied_share_and_names_its_instance(stored_run: RunRecord) -> None:
    import dataclasses

    from greenforge.records import EmbodiedEmissions

    emb = EmbodiedEmissions(120.0, "g6.xlarge", 3000.0, 4 * 365.25 * 86400, 1.0, "ccf")
    run = dataclasses.replace(stored_run, metadata={}, embodied=emb)
    rec = recommend(Workload.from_run(run), Constraints(providers=("gcp",), regions=THREE[:1]))
    (o,) = rec.options
    assert o.instance == "as measured (g6.xlarge)"
    assert o.embodied_kg == pytest.approx(0.12)
    assert o.total_kg == pytest.approx(10.0 * 1.1 * 68.0 / 1000 + 0.12)
