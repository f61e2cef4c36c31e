"""`greenforge schedule` and `greenforge queue list|cancel|run`, through the real CLI."""

from __future__ import annotations

import json
import sys

import pytest

from greenforge.cli.app import main
from greenforge.grid.chain import GridFallbackWarning
from greenforge.schedule.executors.base import METADATA_KEY


def _json_out(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_a_dry_run_prints_the_plan_and_queues_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["schedule", "--zone", "GB", "--duration", "2h", "--deadline", "+24h"]
    code = main([*argv, "--dry-run", "--json", "--", "python", "train.py"])

    assert code == 0
    plan = _json_out(capsys)
    assert isinstance(plan, dict)
    assert plan["forecast_source"].startswith("embedded:")
    assert plan["saving_pct"] >= 0.0
    assert plan["expected_co2e_g"] <= plan["run_now_co2e_g"]
    assert len(plan["slots"]) == 1
    assert plan["slots"][0]["end_s"] - plan["slots"][0]["start_s"] == pytest.approx(7200)
    assert main(["queue", "list", "--json"]) == 0
    assert _json_out(capsys) == []


@pytest.mark.parametrize(
    ("options", "exit_code", "message"),
    [
        (["--duration", "2h", "--deadline", "2020-01-01T00:00Z"], 8, "in the past"),
        (["--duration", "0"], 2, "duration"),
        (["--duration", "4 parsecs"], 2, "bad duration '4 parsecs'"),
        (["--duration", "4h", "--deadline", "+2h"], 8, "move the deadline"),
        (["--duration", "1h", "--deadline", "tomorrow-ish"], 2, "bad time 'tomorrow-ish'"),
        (["--duration", "1h", "--zone", "XX"], 2, "unknown grid zone 'XX'"),
        (["--duration", "1h", "--executor", "kubernetes"], 2, "Valid executors: local, ray"),
        (["--duration", "1h", "--pause-signal", "SIGNOPE"], 2, "unknown pause signal"),
        (["--duration", "1h", "--replan-every", "soon"], 2, "bad duration 'soon'"),
    ],
)
def test_bad_input_is_a_clear_error_with_its_exit_code(
    options: list[str], exit_code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["schedule", *options]
    if "--zone" not in options:
        argv += ["--zone", "GB"]
    code = main([*argv, "--", "true"])

    assert code == exit_code
    assert message in capsys.readouterr().err.replace("\n", " ")


def test_deadlines_count_from_the_earliest_start_when_one_is_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import time

    before = time.time()
    base = ["schedule", "--zone", "GB", "--duration", "2h", "--start", "+30h", "--dry-run"]
    # no --deadline: 24 h of slack after the duration, from the start (not from now)
    assert main([*base, "--json", "--", "true"]) == 0
    plan = _json_out(capsys)
    assert isinstance(plan, dict)
    assert plan["slots"][0]["start_s"] >= before + 30 * 3600 - 1
    assert plan["slots"][-1]["end_s"] <= time.time() + (30 + 2 + 24) * 3600 + 1
    # a relative deadline counts from --start as well (as in `greenforge plan`)
    assert main([*base, "--deadline", "+3h", "--json", "--", "true"]) == 0
    plan = _json_out(capsys)
    assert isinstance(plan, dict)
    assert plan["slots"][-1]["end_s"] <= time.time() + 33 * 3600 + 1


def test_a_bad_pause_signal_is_refused_even_in_a_dry_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["schedule", "--zone", "GB", "--duration", "1h", "--pause-signal", "SIGNOPE"]
    assert main([*argv, "--dry-run", "--", "true"]) == 2
    captured = capsys.readouterr()
    assert "unknown pause signal 'SIGNOPE'" in captured.err.replace("\n", " ")
    assert "clean slots" not in captured.err


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "--zone", "GB", "--duration", "1h"]) == 2
    assert "no command to schedule" in capsys.readouterr().err


def test_a_failing_forecast_source_falls_back_only_along_the_configured_chain(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GREENFORGE_INTENSITY_PROVIDERS", "files,embedded")
    argv = ["schedule", "--zone", "DE", "--duration", "1h", "--dry-run", "--json", "--", "x"]
    with pytest.warns(GridFallbackWarning, match="files"):
        assert main(argv) == 0
    plan = _json_out(capsys)
    assert isinstance(plan, dict)
    assert "fallback after files" in plan["forecast_source"]

    monkeypatch.setenv("GREENFORGE_INTENSITY_PROVIDERS", "files")
    assert main(argv) == 6
    assert "no grid provider answered" in capsys.readouterr().err


def test_schedule_runs_the_command_keeps_its_exit_code_and_records_the_saving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "schedule",
            "--zone",
            "GB",
            "--duration",
            "1s",
            "--deadline",
            "+2s",
            "--name",
            "exit3",
            "--",
            sys.executable,
            "-c",
            "raise SystemExit(3)",
        ]
    )

    assert code == 3
    capsys.readouterr()
    assert main(["queue", "list", "--json"]) == 0
    jobs = _json_out(capsys)
    assert isinstance(jobs, list)
    assert [(j["name"], j["state"], j["exit_code"]) for j in jobs] == [("exit3", "failed", 3)]
    assert main(["runs", "show", jobs[0]["run_ids"][0], "--json"]) == 0
    record = _json_out(capsys)
    assert isinstance(record, dict)
    saved = record["metadata"][METADATA_KEY]
    assert saved["saving_pct"] == jobs[0]["plan"]["saving_pct"]
    assert saved["forecast_source"].startswith("embedded:")
    assert saved["command"] == [sys.executable, "-c", "raise SystemExit(3)"]


def test_detached_jobs_are_listed_cancelled_and_run_by_the_worker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["schedule", "--zone", "GB", "--duration", "1s", "--deadline", "+2s", "--detach"]
    assert main([*base, "--name", "keep", "--", sys.executable, "-c", "pass"]) == 0
    assert main([*base, "--name", "drop", "--", sys.executable, "-c", "pass"]) == 0
    capsys.readouterr()

    assert main(["queue", "list", "--json"]) == 0
    jobs = _json_out(capsys)
    assert isinstance(jobs, list)
    assert [j["state"] for j in jobs] == ["queued", "queued"]
    drop = jobs[1]["id"]

    assert main(["queue", "cancel", str(drop)]) == 0
    assert main(["queue", "cancel", str(drop)]) == 2
    assert "already cancelled" in capsys.readouterr().err
    assert main(["queue", "cancel", "999"]) == 2

    assert main(["queue", "run"]) == 0
    capsys.readouterr()
    assert main(["queue", "list", "--json", "--state", "done"]) == 0
    done = _json_out(capsys)
    assert isinstance(done, list)
    assert [j["name"] for j in done] == ["keep"]
    assert main(["queue", "list"]) == 0
    assert "cancelled" in capsys.readouterr().out


def test_executor_options_are_kept_with_a_detached_job_for_a_later_worker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from greenforge.config import load_settings
    from greenforge.schedule.executors.slurm import SlurmExecutor
    from greenforge.schedule.queue import JobQueue
    from greenforge.schedule.runner import Scheduler

    argv = ["schedule", "--zone", "GB", "--duration", "1h", "--executor", "slurm"]
    assert main([*argv, "--partition", "gpu-night", "--detach", "--", "true"]) == 0
    capsys.readouterr()
    settings = load_settings()
    queue = JobQueue.for_home(settings.resolved_home())
    (job,) = queue.list()
    assert job.options["executor_options"] == {"partition": "gpu-night"}

    # a fresh scheduler (`greenforge queue run` after a restart) submits with that partition
    worker = Scheduler(queue, settings)
    executor = worker.executor(job.executor, job.options["executor_options"])
    assert isinstance(executor, SlurmExecutor)
    assert executor.partition == "gpu-night"
    plain = worker.executor("slurm")
    assert isinstance(plain, SlurmExecutor)
    assert plain.partition is None


def test_names_and_messages_are_printed_verbatim_not_as_rich_markup(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["schedule", "--zone", "GB", "--duration", "1s", "--deadline", "+2s"]
    code = main([*argv, "--name", "train[v2]", "--", sys.executable, "-c", "raise SystemExit(4)"])

    assert code == 4
    capsys.readouterr()
    assert main(["queue", "list"]) == 0
    listed = capsys.readouterr().out
    assert "train[v2]" in listed  # rich would have swallowed "[v2]" as a style tag
