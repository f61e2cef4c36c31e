"""The ``slurm`` executor: one ``sbatch --begin=now+<seconds>`` batch job per clean slot.

Slurm holds each batch job until its slot starts (``--begin``), so the cluster, not the
scheduler, does the waiting. The batch script runs the slot measured
(``python -m greenforge.schedule.runner slot SPEC OUTCOME``); inside it the supervisor sends the
pause signal at the end of the slot and the job checkpoints and exits 99. The next slot is a
new batch job with ``GREENFORGE_RESUME=1``. ``--time`` (slot length + grace + 1 min) is a
backstop should the supervisor itself hang, and ``--requeue`` lets Slurm re-run a slot whose
node failed. Jobs can also be held and released (``scontrol hold/release``) while they wait.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from greenforge.config import Settings
from greenforge.errors import ConfigError, GreenForgeError
from greenforge.schedule.executors.base import (
    SlotOutcome,
    SlotSpec,
    register_executor,
    write_spec,
)

FINAL_SLURM_STATES: Final[frozenset[str]] = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "BOOT_FAIL",
        "DEADLINE",
        "PREEMPTED",
    }
)
_JOB_ID = re.compile(r"(?:Submitted batch job\s+)?(\d+)(?:;\S+)?\s*$")


class SlurmError(GreenForgeError):
    """A Slurm command failed (the message includes its stderr)."""

    exit_code = 1


def begin_time(start_s: float, now_s: float) -> str:
    """``--begin`` value relative to submission: ``now+<seconds>`` (whole seconds, rounded up),
    or ``now`` for a start that has come.

    A relative value means the same instant whatever the time zone or DST rules of the
    Slurm controller, unlike a wall-clock ``YYYY-MM-DDTHH:MM:SS`` (``sbatch --begin=now+60``
    is 60 seconds from submission: seconds are Slurm's default unit). ``now_s`` must be the
    time of submission.
    """
    lead_s = math.ceil(start_s - now_s)
    if lead_s <= 0:
        return "now"
    return f"now+{lead_s}"


def time_limit_min(spec: SlotSpec) -> int | None:
    """``--time`` in minutes for a slot that will be paused; ``None`` for a final slot."""
    if spec.end_s is None:
        return None
    return max(1, math.ceil((spec.end_s - spec.start_s + spec.grace_s + 60.0) / 60.0))


def output_path(spec: SlotSpec) -> Path:
    """Where Slurm writes the slot's stdout and stderr."""
    return Path(spec.checkpoint_dir) / f"slurm-slot-{spec.slot_index}.out"


def escape_filename_pattern(path: str) -> str:
    """``path`` with ``%`` doubled, so sbatch's ``--output`` patterns (``%j``...) leave it as is."""
    return path.replace("%", "%%")


def batch_script(spec: SlotSpec, spec_path: Path, outcome_path: Path, python: str) -> str:
    """The batch script of one slot.

    Paths (``--chdir``, ``--output``) and timing are not ``#SBATCH`` lines: they go on the
    sbatch command line as separate arguments (see :func:`sbatch_argv`), so a path with spaces
    or quotes needs no escaping rules of Slurm's directive parser.
    """
    job_name = f"greenforge-{spec.job_id}-{spec.slot_index}"
    command = shlex.join([python, "-m", "greenforge.schedule.runner", "slot"])
    return "\n".join(
        [
            "#!/bin/bash",
            f"#SBATCH --job-name={job_name}",
            "#SBATCH --requeue",
            f"# GreenForge job {spec.job_id}, slot {spec.slot_index + 1} of {spec.n_slots}"
            f" in zone {spec.zone}",
            f"exec {command} {shlex.quote(str(spec_path))} {shlex.quote(str(outcome_path))}",
            "",
        ]
    )


def sbatch_argv(
    spec: SlotSpec,
    script_path: Path,
    *,
    now_s: float,
    partition: str | None = None,
    extra_args: Sequence[str] = (),
    sbatch: str = "sbatch",
) -> list[str]:
    """The ``sbatch`` command line of one slot (``now_s``: the time of submission)."""
    argv = [
        sbatch,
        "--parsable",
        f"--begin={begin_time(spec.start_s, now_s)}",
        "--chdir",
        str(spec.cwd),
        "--output",
        escape_filename_pattern(str(output_path(spec))),
    ]
    limit = time_limit_min(spec)
    if limit is not None:
        argv.append(f"--time={limit}")
    if partition:
        argv.append(f"--partition={partition}")
    argv.extend(extra_args)
    argv.append(str(script_path))
    return argv


def parse_job_id(stdout: str) -> str:
    """The job id from ``sbatch --parsable`` (``123`` or ``123;cluster``) or plain output."""
    for line in reversed(stdout.strip().splitlines()):
        match = _JOB_ID.search(line.strip())
        if match:
            return match.group(1)
    raise SlurmError(f"cannot find a job id in sbatch output {stdout.strip()!r}.")


def parse_scontrol(text: str) -> dict[str, str]:
    """``Key=Value`` pairs of ``scontrol show job -o`` output."""
    out: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep and key not in out:
            out[key] = value
    return out


class SlurmExecutor:
    """Submit each slot with ``sbatch --begin`` and wait for it to end."""

    name = "slurm"
    waits_for_start = True

    def __init__(
        self,
        settings: Settings,
        *,
        partition: str | None = None,
        extra_args: Sequence[str] = (),
        poll_s: float = 2.0,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        command_timeout_s: float = 60.0,
    ) -> None:
        self.settings = settings
        self.partition = partition
        self.extra_args = tuple(extra_args)
        self.poll_s = poll_s
        self.python = python
        self.env = dict(os.environ if env is None else env)
        self.clock = clock
        self.sleep = sleep
        self.command_timeout_s = command_timeout_s

    def _run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                env=self.env,
                timeout=self.command_timeout_s,
                check=False,
            )
        except FileNotFoundError:
            raise SlurmError(
                f"{argv[0]!r} is not on PATH: the slurm executor needs Slurm's client commands "
                "(sbatch, scontrol, scancel). Run on a cluster login node or install them "
                "(Debian/Ubuntu: apt-get install slurm-client)."
            ) from None
        except subprocess.TimeoutExpired:
            raise SlurmError(
                f"{argv[0]} did not answer within {self.command_timeout_s:g} s; "
                "is slurmctld running?"
            ) from None
        return result

    def submit(self, spec: SlotSpec) -> str:
        """Write the spec and batch script, ``sbatch`` it; returns the Slurm job id."""
        if spec.home is None:
            spec = _with_home(spec, str(self.settings.resolved_home()))
        spec_path = write_spec(spec)
        directory = Path(spec.checkpoint_dir)
        outcome_path = directory / f"slot-{spec.slot_index}.outcome.json"
        outcome_path.unlink(missing_ok=True)
        script_path = directory / f"slot-{spec.slot_index}.sbatch"
        script_path.write_text(
            batch_script(spec, spec_path, outcome_path, self.python), encoding="utf-8"
        )
        argv = sbatch_argv(
            spec,
            script_path,
            now_s=self.clock(),
            partition=self.partition,
            extra_args=self.extra_args,
        )
        result = self._run(argv)
        if result.returncode != 0:
            raise SlurmError(
                f"sbatch failed (exit {result.returncode}): {result.stderr.strip()}. "
                f"Command: {shlex.join(argv)}"
            )
        return parse_job_id(result.stdout)

    def job_info(self, job_id: str) -> dict[str, str] | None:
        """``scontrol show job`` fields, or ``None`` once Slurm has forgotten the job."""
        result = self._run(["scontrol", "show", "job", "-o", job_id])
        if result.returncode != 0:
            if "Invalid job id" in result.stderr:
                return None
            raise SlurmError(f"scontrol show job {job_id} failed: {result.stderr.strip()}")
        return parse_scontrol(result.stdout)

    def wait(self, job_id: str, outcome_path: Path) -> SlotOutcome:
        """Poll until the job ends; its outcome comes from the file the slot wrote."""
        while True:
            info = self.job_info(job_id)
            state = None if info is None else info.get("JobState", "")
            if info is None or state in FINAL_SLURM_STATES:
                break
            self.sleep(self.poll_s)
        if outcome_path.is_file():
            outcome = SlotOutcome.from_json(outcome_path.read_text(encoding="utf-8"))
            return SlotOutcome(
                exit_code=outcome.exit_code,
                run_id=outcome.run_id,
                external_id=job_id,
                energy_j=outcome.energy_j,
                co2e_g=outcome.co2e_g,
                message=outcome.message,
            )
        exit_text = "" if info is None else info.get("ExitCode", "")
        code_text, _, signal_text = exit_text.partition(":")
        code = int(code_text) if code_text.isdigit() else 1
        if signal_text.isdigit() and int(signal_text) > 0:
            code = 128 + int(signal_text)
        return SlotOutcome(
            exit_code=code if code != 0 else 1,
            external_id=job_id,
            message=f"Slurm job {job_id} ended {state or 'unknown'} without an outcome file",
        )

    def submitted_for(self, spec: SlotSpec, external_id: str) -> bool:
        """Whether ``external_id`` is this very slot's batch job (still known to Slurm with the
        slot's job name), or its outcome file is already there: a scheduler that took over a
        job whose worker died then waits for that batch job instead of submitting the slot a
        second time (two copies would run at once and share one checkpoint)."""
        outcome_path = Path(spec.checkpoint_dir) / f"slot-{spec.slot_index}.outcome.json"
        info = self.job_info(external_id)
        if info is None:
            return outcome_path.is_file()
        return info.get("JobName") == f"greenforge-{spec.job_id}-{spec.slot_index}"

    def wait_for(self, spec: SlotSpec, external_id: str) -> SlotOutcome:
        """Wait for the submitted slot ``external_id`` (a Slurm job id) to end."""
        outcome_path = Path(spec.checkpoint_dir) / f"slot-{spec.slot_index}.outcome.json"
        return self.wait(external_id, outcome_path)

    def run_slot(self, spec: SlotSpec) -> SlotOutcome:
        return self.wait_for(spec, self.submit(spec))

    def cancel(self, external_id: str) -> None:
        self._run(["scancel", external_id])

    def hold(self, job_id: str) -> None:
        """Keep a waiting slot from starting (``scontrol hold``)."""
        self._checked(["scontrol", "hold", job_id])

    def release(self, job_id: str) -> None:
        """Let a held slot start again (``scontrol release``)."""
        self._checked(["scontrol", "release", job_id])

    def requeue(self, job_id: str) -> None:
        """Put a running or finished slot back in the queue (``scontrol requeue``)."""
        self._checked(["scontrol", "requeue", job_id])

    def _checked(self, argv: Sequence[str]) -> None:
        result = self._run(argv)
        if result.returncode != 0:
            raise SlurmError(f"{shlex.join(argv)} failed: {result.stderr.strip()}")


def _with_home(spec: SlotSpec, home: str) -> SlotSpec:
    from dataclasses import replace

    return replace(spec, home=home)


def _factory(settings: Settings, **options: Any) -> SlurmExecutor:
    unknown = set(options) - {
        "partition",
        "extra_args",
        "poll_s",
        "python",
        "env",
        "clock",
        "sleep",
        "command_timeout_s",
    }
    if unknown:
        raise ConfigError(f"unknown slurm executor option(s) {sorted(unknown)}.")
    return SlurmExecutor(settings, **options)


register_executor("slurm", _factory)
