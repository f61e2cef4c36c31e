"""What every executor shares: the slot spec, the slot outcome, the supervisor, the registry.

An executor runs one *slot* of a job (a clean window ``[start_s, end_s)`` in one zone) and
reports how it ended. The work inside a slot is the same everywhere (this module):

1. :func:`run_measured_slot` measures the slot through the tracker
   (``greenforge.tracker.run_command``), recording the planned saving in the run's metadata;
2. the measured process is the *supervisor* (:func:`supervise`, run as
   ``python -m greenforge.schedule.runner supervise SPEC``), which starts the user's command
   with the protocol environment (see :mod:`greenforge.schedule.checkpoint`), sends the pause
   signal at the end of the slot (interruptible jobs only, never in the last slot), kills the
   command if it does not exit within the grace period, and exits with the command's code.

Executors differ only in *where* step 1 runs: in the scheduler process (``local``), in a Slurm
batch job submitted with ``sbatch --begin`` (``slurm``) or in a Ray task pinned to a
zone-labelled node (``ray``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Final, Protocol, runtime_checkable

from greenforge.config import Settings, load_settings
from greenforge.errors import MeterError, UnknownNameError
from greenforge.records import RunRecord
from greenforge.redact import redact_argv
from greenforge.schedule.checkpoint import (
    ENV_CHECKPOINT_DIR,
    ENV_JOB_ID,
    ENV_PAUSE_SIGNAL,
    ENV_RESUME,
    ENV_SLOT_END_S,
    ENV_SLOT_INDEX,
    PAUSE_EXIT_CODE,
    signal_from_name,
)

log = logging.getLogger(__name__)

KILLED_EXIT_CODE: Final[int] = 137
"""Exit code reported when the command ignored the pause signal and was killed."""
METADATA_KEY: Final[str] = "greenforge.schedule"
"""Key of the schedule metadata (planned saving, slot, job id) in a measured run."""


@dataclasses.dataclass(frozen=True)
class SlotSpec:
    """Everything needed to run one slot of a job, anywhere (JSON round-trip)."""

    job_id: int
    name: str
    argv: tuple[str, ...]
    cwd: str
    slot_index: int
    n_slots: int
    start_s: float
    end_s: float | None
    """When the pause signal is due; ``None`` = run to completion (last slot, or not
    interruptible)."""
    zone: str
    checkpoint_dir: str
    resume: bool
    pause_signal: str = "SIGTERM"
    grace_s: float = 60.0
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Extra environment for the command."""
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Recorded with the measured run under :data:`METADATA_KEY`."""
    home: str | None = None
    """GreenForge home where the run is stored (the scheduler's, by default)."""

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["argv"] = list(self.argv)
        data["env"] = dict(self.env)
        data["metadata"] = dict(self.metadata)
        return json.dumps(data)

    @staticmethod
    def from_json(text: str) -> SlotSpec:
        data = json.loads(text)
        data["argv"] = tuple(data["argv"])
        return SlotSpec(**data)

    def protocol_env(self) -> dict[str, str]:
        """The pause/resume protocol variables the command sees."""
        env = {
            ENV_CHECKPOINT_DIR: self.checkpoint_dir,
            ENV_RESUME: "1" if self.resume else "0",
            ENV_PAUSE_SIGNAL: signal_from_name(self.pause_signal).name,
            ENV_JOB_ID: str(self.job_id),
            ENV_SLOT_INDEX: str(self.slot_index),
        }
        if self.end_s is not None:
            env[ENV_SLOT_END_S] = f"{self.end_s:.3f}"
        return env


@dataclasses.dataclass(frozen=True)
class SlotOutcome:
    """How a slot ended."""

    exit_code: int
    run_id: str | None = None
    external_id: str | None = None
    """Executor-side id (Slurm job id, Ray task id)."""
    energy_j: float | None = None
    co2e_g: float | None = None
    message: str = ""

    @property
    def paused(self) -> bool:
        """The command saved its state and asked to be resumed (exit code 99)."""
        return self.exit_code == PAUSE_EXIT_CODE

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @staticmethod
    def from_json(text: str) -> SlotOutcome:
        return SlotOutcome(**json.loads(text))


@runtime_checkable
class Executor(Protocol):
    """Runs one slot of a job somewhere and waits for it to end."""

    name: str
    waits_for_start: bool
    """True when the executor itself holds the slot until its start (Slurm ``--begin``);
    otherwise the scheduler waits and starts the slot on time."""

    def run_slot(self, spec: SlotSpec) -> SlotOutcome:
        """Run the slot (blocking) and report how it ended."""

    def cancel(self, external_id: str) -> None:
        """Stop a slot that the executor is holding or running (no-op if it has ended)."""


@runtime_checkable
class SubmittingExecutor(Executor, Protocol):
    """An executor that hands slots to a batch system: the scheduler records the external id
    as soon as the slot is submitted (so ``greenforge queue cancel`` can reach it), then waits."""

    def submit(self, spec: SlotSpec) -> str:
        """Hand the slot over; returns the external id (e.g. the Slurm job id)."""

    def wait_for(self, spec: SlotSpec, external_id: str) -> SlotOutcome:
        """Block until the submitted slot has ended; report how."""


ExecutorFactory = Callable[..., Executor]
_FACTORIES: dict[str, ExecutorFactory] = {}


def register_executor(name: str, factory: ExecutorFactory) -> None:
    """Register an executor factory ``factory(settings, **options)`` under ``name``."""
    _FACTORIES[name] = factory


def executor_names() -> list[str]:
    _load_builtin()
    return sorted(_FACTORIES)


def create_executor(name: str, settings: Settings, **options: Any) -> Executor:
    """Create a registered executor; an unknown name lists the valid ones."""
    _load_builtin()
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UnknownNameError("executor", name, _FACTORIES) from None
    return factory(settings, **options)


def _load_builtin() -> None:
    import greenforge.schedule.executors  # noqa: F401  (registers local, slurm, ray)


# -- measuring ---------------------------------------------------------------------------------
Measure = Callable[
    [Sequence[str], Settings, str | None, Mapping[str, Any] | None],
    tuple[int, RunRecord | None],
]
"""``measure(argv, settings, name, metadata) -> (exit_code, record)``."""


def tracker_measure(
    argv: Sequence[str],
    settings: Settings,
    name: str | None,
    metadata: Mapping[str, Any] | None,
) -> tuple[int, RunRecord | None]:
    """Measure through ``greenforge.tracker.run_command``; run unmeasured if it is missing."""
    try:
        from greenforge.tracker import run_command
    except ImportError as exc:  # the tracker is part of the package; guard anyway
        log.warning("tracker unavailable (%s); running the slot without measurement", exc)
        return subprocess.call(list(argv)), None
    try:
        code, record = run_command(list(argv), settings, name=name, metadata=metadata)
    except MeterError as exc:  # raised before the command starts: run it unmeasured
        log.warning("cannot measure this slot (%s); running it unmeasured", exc)
        return subprocess.call(list(argv)), None
    return int(code), record


def supervisor_argv(spec_path: Path) -> list[str]:
    """The command that runs :func:`supervise` on a spec file."""
    return [sys.executable, "-m", "greenforge.schedule.runner", "supervise", str(spec_path)]


def write_spec(spec: SlotSpec) -> Path:
    """Write the spec next to the job's checkpoints; returns its path."""
    directory = Path(spec.checkpoint_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"slot-{spec.slot_index}.json"
    path.write_text(spec.to_json(), encoding="utf-8")
    return path


def run_measured_slot(
    spec: SlotSpec, *, measure: Measure | None = None, settings: Settings | None = None
) -> SlotOutcome:
    """Run one slot under the tracker (in this process); used by every executor."""
    spec_path = write_spec(spec)
    if settings is None:
        settings = load_settings(zone=spec.zone, home=Path(spec.home) if spec.home else None)
    metadata = {
        METADATA_KEY: {
            **dict(spec.metadata),
            "job_id": spec.job_id,
            "slot_index": spec.slot_index,
            "n_slots": spec.n_slots,
            "zone": spec.zone,
            "command": redact_argv(spec.argv),  # stored with the run: no secrets
        }
    }
    name = spec.name if spec.n_slots == 1 else f"{spec.name} [slot {spec.slot_index + 1}]"
    code, record = (measure or tracker_measure)(
        supervisor_argv(spec_path), settings, name, metadata
    )
    return SlotOutcome(
        exit_code=code,
        run_id=None if record is None else record.id,
        energy_j=None if record is None else record.energy_j,
        co2e_g=None if record is None else record.co2e_g,
    )


# -- the supervisor ----------------------------------------------------------------------------
def min_slot_left_s(spec: SlotSpec) -> float:
    """Time that must be left in a slot to start the command at all: a quarter of the slot,
    at most 5 s. A slot started later than that (a busy cluster) is skipped rather than
    signalled before the job could even install its handler."""
    if spec.end_s is None:
        return 0.0
    return min(5.0, 0.25 * max(spec.end_s - spec.start_s, 0.0))


def supervise(
    spec: SlotSpec,
    *,
    clock: Callable[[], float] = time.time,
    poll_s: float = 0.2,
) -> int:
    """Run the command for one slot; pause it at ``spec.end_s``; return its exit code.

    Signals the supervisor itself receives (SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP) are
    forwarded to the command, so a scheduler or batch system that signals the slot reaches the
    job. Meant to run as its own process (``python -m greenforge.schedule.runner supervise``).
    """
    pause = signal_from_name(spec.pause_signal)
    env = {**os.environ, **dict(spec.env), **spec.protocol_env()}
    Path(spec.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    if spec.end_s is not None and spec.end_s - clock() < min_slot_left_s(spec):
        print(
            "greenforge: this slot started too late to do useful work before its end (the "
            "executor was late); skipping it, the job resumes at its next slot.",
            file=sys.stderr,
        )
        return PAUSE_EXIT_CODE
    try:
        proc = subprocess.Popen(list(spec.argv), cwd=spec.cwd, env=env)
    except OSError as exc:
        print(f"greenforge: cannot start {spec.argv[0]!r}: {exc}", file=sys.stderr)
        return 127

    def _forward(signum: int, frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP)
    previous = {s: signal.signal(s, _forward) for s in forwarded}
    try:
        signalled_at: float | None = None
        while True:
            code = proc.poll()
            if code is not None:
                return _shell_code(code)
            now = clock()
            if signalled_at is None and spec.end_s is not None and now >= spec.end_s:
                proc.send_signal(pause)
                signalled_at = now
            if signalled_at is not None and now - signalled_at > spec.grace_s:
                print(
                    f"greenforge: the job did not exit within {spec.grace_s:g} s of "
                    f"{pause.name}; killing it.",
                    file=sys.stderr,
                )
                proc.kill()
                proc.wait()
                return KILLED_EXIT_CODE
            wait_s = poll_s
            if signalled_at is None and spec.end_s is not None:
                wait_s = max(0.01, min(poll_s, spec.end_s - now))
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait_s)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _shell_code(returncode: int) -> int:
    """Negative Popen codes (killed by signal N) as a shell reports them: 128 + N."""
    return 128 - returncode if returncode < 0 else returncode
