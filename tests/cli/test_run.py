"""``greenforge run`` and ``greenforge runs``: exit codes, the JSON contract, show and export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from greenforge.cli.app import main
from greenforge.config import load_settings
from greenforge.report.store import RunStore

PY = sys.executable


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GREENFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GREENFORGE_ZONE", raising=False)
    for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "GREENFORGE_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


def runs_json(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["runs", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, list)
    return data


def test_run_measures_a_command_and_prints_a_summary(
    capfd: pytest.CaptureFixture[str],
) -> None:
    code = main(["run", "--zone", "DE", "--interval", "0.05", "--", PY, "-c", "print('hi')"])
    out, err = capfd.readouterr()
    assert code == 0
    assert out.strip() == "hi"  # the command's stdout stays clean
    assert "GreenForge run" in err
    assert "model:cpu" in err
    assert "zone DE" in err


def test_the_childs_exit_code_is_preserved_and_the_run_marked_failed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["run", "--zone", "DE", "--name", "doomed", "--", PY, "-c", "exit(3)"])
    assert code == 3
    [run] = runs_json(capsys)
    assert run["status"] == "failed"
    assert run["name"] == "doomed"


def test_runs_list_json_is_the_stable_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--zone", "GB", "--", PY, "-c", "pass"]) == 0
    [run] = runs_json(capsys)
    assert {"id", "status", "started_at", "duration_s", "energy_j", "co2e_g"} <= set(run)
    assert run["status"] in {"running", "completed", "incomplete", "failed"}
    started = str(run["started_at"])
    assert started.endswith("Z")
    parsed = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    assert parsed.utcoffset() == dt.timedelta(0)
    assert isinstance(run["duration_s"], float)
    assert isinstance(run["energy_j"], float)
    assert float(run["energy_j"]) > 0
    assert isinstance(run["co2e_g"], float)


def test_runs_list_on_an_empty_store_is_an_empty_array(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert runs_json(capsys) == []
    assert main(["runs", "list"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""  # a hint, not an empty table
    assert "no runs stored yet" in captured.err


def test_runs_show_accepts_an_id_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--zone", "DE", "--name", "shown", "--", PY, "-c", "pass"]) == 0
    [run] = runs_json(capsys)
    prefix = str(run["id"])[:6]
    assert main(["runs", "show", prefix, "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["id"] == run["id"]
    assert full["emissions"]["intensity"]["zone"] == "DE"
    assert full["metadata"]["exit_code"] == 0
    assert full["metadata"]["argv"][0] == PY
    assert main(["runs", "show", prefix]) == 0
    assert "shown" in capsys.readouterr().out


def test_runs_show_unknown_id_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "show", "nope"]) == 7
    assert "no run with id or prefix 'nope'" in capsys.readouterr().err


def test_runs_export_json_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--zone", "DE", "--", PY, "-c", "pass"]) == 0
    assert main(["runs", "export", "--format", "csv", "--out", str(tmp_path / "r.csv")]) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert len(rows) == 1
    assert rows[0]["zone"] == "DE"
    capsys.readouterr()
    assert main(["runs", "export", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["id"] == rows[0]["id"]
    assert main(["runs", "export", "--format", "xml"]) == 2


def test_an_unknown_zone_is_reported_before_the_command_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    code = main(["run", "--zone", "GERMANY", "--", PY, "-c", f"open({str(marker)!r}, 'w')"])
    assert code == 2
    assert "unknown grid zone 'GERMANY'" in capsys.readouterr().err
    assert not marker.exists()


def test_no_zone_is_an_error_with_guidance(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--", PY, "-c", "pass"]) == 2
    assert "--zone" in capsys.readouterr().err


def test_bad_interval_and_missing_command_are_usage_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--zone", "DE", "--interval", "0", "--", PY, "-c", "pass"]) == 2
    assert "interval_s" in capsys.readouterr().err
    assert main(["run", "--zone", "DE"]) == 2
    assert "no command to run" in capsys.readouterr().err
    assert main(["run", "--zone", "DE", "--", "no-such-command-xyz"]) == 127  # like a shell
    assert "command not found: 'no-such-command-xyz'" in capsys.readouterr().err


def test_a_bad_setting_in_the_environment_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GREENFORGE_FLUSH_INTERVAL_S", "often")
    assert main(["run", "--zone", "DE", "--", PY, "-c", "pass"]) == 2
    assert "'often'" in capsys.readouterr().err


def test_the_child_sees_the_zone_and_its_parent_run(
    capfd: pytest.CaptureFixture[str],
) -> None:
    script = (
        "import os; print(os.environ['GREENFORGE_ZONE'], os.environ['GREENFORGE_PARENT_RUN_ID'])"
    )
    assert main(["run", "--zone", "de", "--", PY, "-c", script]) == 0
    zone, parent = capfd.readouterr().out.split()
    assert zone == "DE"
    assert len(parent) == 12


def test_a_child_killed_by_a_signal_exits_like_a_shell_reports_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    assert main(["run", "--zone", "DE", "--", PY, "-c", script]) == 128 + 9
    [run] = runs_json(capsys)
    assert run["status"] == "failed"


def test_runs_list_limit_keeps_the_newest(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("first", "second"):
        assert main(["run", "--zone", "DE", "--name", name, "--", PY, "-c", "pass"]) == 0
    capsys.readouterr()
    assert main(["runs", "list", "--json", "--limit", "1"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["second"]


def test_sigterm_to_greenforge_run_stops_the_command_and_keeps_the_run(home: Path) -> None:
    env = {**os.environ, "GREENFORGE_HOME": str(home)}
    sleeper = [PY, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    with subprocess.Popen(
        [PY, "-m", "greenforge", "run", "--zone", "DE", "--", *sleeper],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "up"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    with RunStore.for_settings(load_settings(env={"GREENFORGE_HOME": str(home)})) as store:
        [run] = store.list()
    assert run.status == "failed"
    assert run.metadata["exit_code"] == 128 + signal.SIGTERM


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--interval", "abc", "--", PY, "-c", "pass"], "--interval"),
        (["run", "--zone", "DE", "--no-such-option", "--", PY, "-c", "pass"], "--no-such-option"),
        (["grid", "forecast", "DE", "--hours", "abc"], "--hours"),
        (["no-such-command"], "no-such-command"),
    ],
)
def test_usage_errors_are_a_message_and_exit_code_2_not_a_traceback(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_process_attribution_charges_a_command_that_ends_before_the_first_sample(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The final sample must still read the child's CPU time (it is reaped only afterwards).
    monkeypatch.setenv("GREENFORGE_ATTRIBUTION", "process")
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    argv = ["run", "--zone", "DE", "--interval", "30", "--", PY, "-c", burn]
    assert main(argv) == 0
    [run] = runs_json(capsys)
    with RunStore.for_settings(load_settings()) as store:
        record = store.get(str(run["id"]))
    cpu = {c.component: c.energy_j for c in record.components}["cpu"]
    assert cpu > 0.0
    assert any("process-tree" in m for m in record.meters)


def test_a_profile_intensity_is_labelled_as_such_in_the_record_and_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--zone", "DE", "--", PY, "-c", "pass"]) == 0
    assert "typical profile, not measured" in capsys.readouterr().err
    [run] = runs_json(capsys)
    assert main(["runs", "show", str(run["id"]), "--json"]) == 0
    intensity = json.loads(capsys.readouterr().out)["emissions"]["intensity"]
    assert intensity["kind"] == "profile"
    assert intensity["source"].startswith("embedded:profile-")


def test_a_zone_taken_from_a_cloud_variable_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # AWS_REGION is often set on laptops too: the run must show which variable chose the grid
    for var in ("AWS_DEFAULT_REGION", "GOOGLE_CLOUD_REGION", "GREENFORGE_CLOUD_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert main(["run", "--", PY, "-c", "pass"]) == 0
    assert "(from AWS_REGION=eu-central-1)" in capsys.readouterr().err
    [run] = runs_json(capsys)
    with RunStore.for_settings(load_settings()) as store:
        record = store.get(str(run["id"]))
    assert record.metadata["zone"] == "DE"
    assert record.metadata["zone_source"] == "AWS_REGION=eu-central-1"
