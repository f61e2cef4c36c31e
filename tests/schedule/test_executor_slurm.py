"""The Slurm executor's generated batch script and command lines (always run; the real
single-node Slurm test is tests/integration/test_slurm.py)."""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.config import load_settings
from greenforge.errors import ConfigError
from greenforge.schedule.executors import create_executor
from greenforge.schedule.executors.base import SlotSpec
from greenforge.schedule.executors.slurm import (
    SlurmError,
    SlurmExecutor,
    batch_script,
    begin_time,
    parse_job_id,
    parse_scontrol,
    sbatch_argv,
    time_limit_min,
)


def _spec(tmp_path: Path, *, end_s: float | None = 1_800_003_600.0) -> SlotSpec:
    return SlotSpec(
        job_id=7,
        name="train",
        argv=("python", "train.py", "--epochs", "3"),
        cwd=str(tmp_path),
        slot_index=1,
        n_slots=3,
        start_s=1_800_000_000.0,
        end_s=end_s,
        zone="GB",
        checkpoint_dir=str(tmp_path / "ckpt"),
        resume=True,
        grace_s=60.0,
    )


def test_the_batch_script_runs_the_measured_slot_in_the_jobs_directory(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    script = batch_script(spec, tmp_path / "s.json", tmp_path / "o.json", "/usr/bin/python3")
    lines = script.splitlines()

    assert lines[0] == "#!/bin/bash"
    assert "#SBATCH --job-name=greenforge-7-1" in lines
    assert "#SBATCH --requeue" in lines
    assert not any("--chdir" in line or "--output" in line for line in lines)  # on argv
    last = shlex.split(lines[-1])
    assert last[:5] == ["exec", "/usr/bin/python3", "-m", "greenforge.schedule.runner", "slot"]
    assert last[5:] == [str(tmp_path / "s.json"), str(tmp_path / "o.json")]


def test_sbatch_holds_the_slot_until_its_start_with_a_time_limit_as_backstop(
    tmp_path: Path,
) -> None:
    spec = _spec(tmp_path)
    argv = sbatch_argv(spec, tmp_path / "slot.sbatch", now_s=spec.start_s - 3600, partition="gpu")

    assert argv[:3] == ["sbatch", "--parsable", "--begin=now+3600"]
    assert "--time=62" in argv  # 60 min slot + 60 s grace + 1 min, in whole minutes
    assert "--partition=gpu" in argv
    assert argv[-1] == str(tmp_path / "slot.sbatch")


def test_a_final_slot_has_no_time_limit_and_a_past_start_begins_now(tmp_path: Path) -> None:
    spec = _spec(tmp_path, end_s=None)
    assert time_limit_min(spec) is None
    argv = sbatch_argv(spec, tmp_path / "x", now_s=spec.start_s + 5)
    assert "--begin=now" in argv
    assert not any(a.startswith("--time") for a in argv)


@given(st.floats(min_value=1e9, max_value=2e9), st.floats(min_value=1e-3, max_value=1e6))
def test_begin_time_is_relative_and_never_precedes_the_slot_start(
    start_s: float, lead_s: float
) -> None:
    now_s = start_s - lead_s
    text = begin_time(start_s, now_s)
    prefix, _, seconds = text.partition("+")
    assert prefix == "now"
    assert int(seconds) >= 1
    assert now_s + int(seconds) >= start_s
    assert now_s + int(seconds) < start_s + 1.0


def test_begin_time_does_not_depend_on_the_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    start_s = 1_806_000_000.0  # around a European DST change in 2027
    answers = set()
    for zone in ("UTC", "Europe/London", "America/New_York", "Australia/Sydney"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        answers.add(begin_time(start_s, start_s - 7_200.5))
    monkeypatch.delenv("TZ")
    time.tzset()
    assert answers == {"now+7201"}


def test_paths_with_spaces_and_percent_signs_are_separate_sbatch_arguments(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "my project's dir"
    spec = dataclasses.replace(
        _spec(tmp_path), cwd=str(workdir), checkpoint_dir=str(tmp_path / "ckpt 100%")
    )
    argv = sbatch_argv(spec, tmp_path / "slot.sbatch", now_s=spec.start_s)

    assert argv[argv.index("--chdir") + 1] == str(workdir)
    assert argv[argv.index("--output") + 1] == str(tmp_path / "ckpt 100%%" / "slurm-slot-1.out")
    assert argv[2] == "--begin=now"


@pytest.mark.parametrize(
    ("stdout", "job_id"),
    [("4242\n", "4242"), ("4242;cluster\n", "4242"), ("Submitted batch job 17\n", "17")],
)
def test_job_ids_are_parsed_from_sbatch_output(stdout: str, job_id: str) -> None:
    assert parse_job_id(stdout) == job_id


def test_unparseable_sbatch_output_is_an_error_that_shows_it() -> None:
    with pytest.raises(SlurmError, match="sbatch: error: oops"):
        parse_job_id("sbatch: error: oops")


def test_scontrol_one_line_output_is_read_as_fields() -> None:
    text = "JobId=12 JobName=greenforge-1-0 JobState=COMPLETED Reason=None ExitCode=99:0\n"
    fields = parse_scontrol(text)
    assert fields["JobState"] == "COMPLETED"
    assert fields["ExitCode"] == "99:0"


def test_the_slurm_executor_writes_script_and_spec_before_submitting(tmp_path: Path) -> None:
    """Without Slurm installed, submission fails clearly - after the files are written."""
    executor = SlurmExecutor(
        load_settings(zone="GB"), env={"PATH": str(tmp_path)}, command_timeout_s=5
    )
    spec = _spec(tmp_path)
    with pytest.raises(SlurmError, match="'sbatch' is not on PATH"):
        executor.submit(spec)
    ckpt = tmp_path / "ckpt"
    assert (ckpt / "slot-1.sbatch").read_text().startswith("#!/bin/bash")
    assert SlotSpec.from_json((ckpt / "slot-1.json").read_text()).argv == spec.argv


def test_unknown_slurm_options_are_rejected() -> None:
    with pytest.raises(ConfigError, match="qos"):
        create_executor("slurm", load_settings(zone="GB"), qos="high")


class _FakeSlurm(SlurmExecutor):
    """Answers sbatch/scontrol from a dict of jobs instead of a cluster."""

    def __init__(self, jobs: dict[str, dict[str, str]]) -> None:
        super().__init__(load_settings(zone="GB"), poll_s=0.0, sleep=lambda _s: None)
        self.jobs = jobs
        self.calls: list[list[str]] = []

    def _run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0] == "sbatch":
            job_id = str(100 + len(self.jobs))
            self.jobs[job_id] = {"JobState": "COMPLETED", "JobName": "?", "ExitCode": "0:0"}
            return subprocess.CompletedProcess(argv, 0, f"{job_id}\n", "")
        job = self.jobs.get(argv[-1])
        if job is None:
            return subprocess.CompletedProcess(argv, 1, "", "Invalid job id specified")
        text = " ".join(f"{k}={v}" for k, v in job.items())
        return subprocess.CompletedProcess(argv, 0, text + "\n", "")


def test_a_recovered_job_waits_for_its_slots_batch_job_instead_of_submitting_it_again(
    tmp_path: Path,
) -> None:
    """A worker died after `sbatch` but before the slot ended: the next worker must not start
    a second copy of the slot (both would run and share one checkpoint)."""
    from greenforge.schedule.queue import JobQueue, PlannedSlot, PlanSummary
    from greenforge.schedule.runner import Scheduler

    settings = load_settings(zone="GB")
    queue = JobQueue(tmp_path / "queue.sqlite")
    plan = PlanSummary((PlannedSlot(1_000.0, 4_600.0, "GB"),), 1.0, 2.0, 50.0, "test")
    job = queue.enqueue(
        name="train", argv=["true"], cwd=tmp_path, executor="slurm", job={}, plan=plan
    )
    # the dead worker's state: slot 1 submitted as Slurm job 42, now running on the cluster
    queue.update(job.id, state="running", attempts=1, owner_pid=2**22 + 12345)
    queue.append_ids(job.id, external_id="42")
    slurm = _FakeSlurm({"42": {"JobName": f"greenforge-{job.id}-0", "JobState": "COMPLETED"}})
    worker = Scheduler(queue, settings, executors={"slurm": slurm}, clock=lambda: 5_000.0)
    ckpt = worker.checkpoint_dir(job.id)
    ckpt.mkdir(parents=True)
    (ckpt / "slot-0.outcome.json").write_text('{"exit_code": 0}', encoding="utf-8")

    assert queue.recover_orphans() == [job.id]
    final = worker.run_job(job.id)

    assert final.state == "done"
    assert not any(call[0] == "sbatch" for call in slurm.calls)
    assert final.external_ids == ("42",)


def test_a_batch_job_of_another_slot_is_not_taken_for_this_one(tmp_path: Path) -> None:
    slurm = _FakeSlurm({"42": {"JobName": "greenforge-7-0", "JobState": "COMPLETED"}})
    spec = _spec(tmp_path)  # job 7, slot index 1
    assert not slurm.submitted_for(spec, "42")
    assert not slurm.submitted_for(spec, "999")  # forgotten by Slurm, no outcome file
    assert slurm.submitted_for(dataclasses.replace(spec, slot_index=0), "42")
