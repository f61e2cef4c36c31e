"""The pause/resume protocol for interruptible jobs, and a checkpoint helper for PyTorch loops.

The protocol (the same for every executor: local, Slurm, Ray)::

    executor                                   job
    ────────                                   ───
    start slot k: env GREENFORGE_CHECKPOINT_DIR=<dir>, GREENFORGE_RESUME=0|1,
                  GREENFORGE_SLOT_END_S=<unix s>, GREENFORGE_PAUSE_SIGNAL=SIGTERM
                                               if GREENFORGE_RESUME=1: load state from <dir>
                                               ... work ...
    slot ends: send SIGTERM (configurable) ──▶ finish the current step, save state to <dir>,
                                               exit with code 99 (PAUSE_EXIT_CODE)
    exit 99 ⇒ job "paused"; at slot k+1 the job is started again with GREENFORGE_RESUME=1
    exit 0  ⇒ job "done";  any other code ⇒ job "failed" (the code is kept)

If the job does not exit within the grace period after the signal, it is killed (SIGKILL) and
the slot counts as failed. A job that is not interruptible is never signalled.

:class:`Checkpointer` implements the job side for plain PyTorch loops. It installs a signal
handler **only** inside its ``with`` block (or between :meth:`Checkpointer.install` and
:meth:`Checkpointer.uninstall`), restoring the previous handler afterwards: importing this
module changes nothing in the process. Checkpoints are written with ``torch.save`` atomically
and durably (write to a temporary file, fsync, rename, fsync the directory) and read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Final, NoReturn

from greenforge.errors import ConfigError, DataError, MissingExtraError

if TYPE_CHECKING:
    import torch

PAUSE_EXIT_CODE: Final[int] = 99
"""Exit code of a job that saved its state and wants to be resumed at its next slot."""
ENV_CHECKPOINT_DIR: Final[str] = "GREENFORGE_CHECKPOINT_DIR"
"""Directory where the job keeps its state between slots (created by the executor)."""
ENV_RESUME: Final[str] = "GREENFORGE_RESUME"
"""``1`` when the job was paused before and should load its state; ``0`` on a fresh start."""
ENV_SLOT_END_S: Final[str] = "GREENFORGE_SLOT_END_S"
"""Unix time (s) at which the current clean slot ends and the pause signal will come."""
ENV_PAUSE_SIGNAL: Final[str] = "GREENFORGE_PAUSE_SIGNAL"
"""Name of the signal the executor sends at the end of a slot (default ``SIGTERM``)."""
ENV_JOB_ID: Final[str] = "GREENFORGE_JOB_ID"
ENV_SLOT_INDEX: Final[str] = "GREENFORGE_SLOT_INDEX"
DEFAULT_PAUSE_SIGNAL: Final[str] = "SIGTERM"
CHECKPOINT_FILE: Final[str] = "greenforge-checkpoint.pt"


def signal_from_name(name: str) -> signal.Signals:
    """``"SIGTERM"``/``"TERM"``/``"15"`` -> ``signal.SIGTERM``; unknown names raise ConfigError."""
    text = name.strip().upper()
    if text.isdigit():
        try:
            return signal.Signals(int(text))
        except ValueError:
            pass
    else:
        full = text if text.startswith("SIG") else "SIG" + text
        if full in signal.Signals.__members__:
            return signal.Signals[full]
    valid = ", ".join(s for s in ("SIGTERM", "SIGINT", "SIGUSR1", "SIGUSR2", "SIGHUP"))
    raise ConfigError(f"unknown pause signal {name!r}: use a signal name such as {valid}.")


def resume_requested(env: Mapping[str, str] | None = None) -> bool:
    """True when the executor restarted a paused job (``GREENFORGE_RESUME=1``)."""
    env = os.environ if env is None else env
    return env.get(ENV_RESUME, "0").strip() == "1"


def checkpoint_dir(env: Mapping[str, str] | None = None, default: str | Path = ".") -> Path:
    """The job's state directory: ``GREENFORGE_CHECKPOINT_DIR`` if set, else ``default``."""
    env = os.environ if env is None else env
    raw = env.get(ENV_CHECKPOINT_DIR, "")
    return Path(raw) if raw else Path(default)


def exit_paused() -> NoReturn:
    """Leave the process with :data:`PAUSE_EXIT_CODE` ("paused, resume me")."""
    sys.exit(PAUSE_EXIT_CODE)


class PauseSignal:
    """A flag raised by the pause signal, with a handler installed only on request.

    Used by :class:`Checkpointer` and by the Trainer/Lightning callbacks. Not thread-safe to
    install from a non-main thread (Python only allows signal handlers in the main thread).
    """

    def __init__(self, signal_name: str | None = None, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        name = signal_name or env.get(ENV_PAUSE_SIGNAL) or DEFAULT_PAUSE_SIGNAL
        self.signum = signal_from_name(name)
        self._event = threading.Event()
        self._previous: Any = None
        self._installed = False

    @property
    def requested(self) -> bool:
        """True once the pause signal has arrived (or :meth:`request` was called)."""
        return self._event.is_set()

    def request(self) -> None:
        """Raise the flag by hand (e.g. from a time check), as the signal would."""
        self._event.set()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._event.set()

    def install(self) -> None:
        """Install the handler (main thread only); the previous handler is kept for later."""
        if self._installed:
            return
        if threading.current_thread() is not threading.main_thread():
            raise ConfigError(
                "the pause handler can only be installed from the main thread "
                "(a Python rule for signal handlers); create the Checkpointer there."
            )
        self._previous = signal.getsignal(self.signum)
        signal.signal(self.signum, self._handle)
        self._installed = True

    def uninstall(self) -> None:
        """Restore the handler that was there before :meth:`install`."""
        if not self._installed:
            return
        previous = self._previous if self._previous is not None else signal.SIG_DFL
        signal.signal(self.signum, previous)
        self._installed = False


class Checkpointer:
    """Save and restore a PyTorch training loop across clean slots.

    ::

        with Checkpointer() as ckpt:
            start_step = ckpt.restore(model, optimizer)   # 0 on a fresh start
            for step in range(start_step, total_steps):
                train_one_step()
                if ckpt.pause_requested:
                    ckpt.save(model, optimizer, step=step + 1)
                    ckpt.exit_paused()                    # exit code 99
            ckpt.clear()                                  # finished: drop the state

    ``directory`` defaults to ``$GREENFORGE_CHECKPOINT_DIR`` (set by the executor), else the
    current directory. ``signal_name`` defaults to ``$GREENFORGE_PAUSE_SIGNAL`` or SIGTERM.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        signal_name: str | None = None,
        filename: str = CHECKPOINT_FILE,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._env: Mapping[str, str] = dict(os.environ if env is None else env)
        self.directory = Path(directory) if directory is not None else checkpoint_dir(self._env)
        self.path = self.directory / filename
        self.pause = PauseSignal(signal_name, self._env)

    # -- signal handling (only inside the with-block) ------------------------------------------
    def __enter__(self) -> Checkpointer:
        self.pause.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.pause.uninstall()

    def install(self) -> None:
        """Install the pause-signal handler (prefer the ``with`` block)."""
        self.pause.install()

    def uninstall(self) -> None:
        """Restore the previous handler."""
        self.pause.uninstall()

    @property
    def pause_requested(self) -> bool:
        """True once the executor's pause signal has arrived."""
        return self.pause.requested

    @property
    def resuming(self) -> bool:
        """True when the executor asked to resume and a checkpoint exists."""
        return resume_requested(self._env) and self.path.is_file()

    def exit_paused(self) -> NoReturn:
        """Exit with :data:`PAUSE_EXIT_CODE` (call after :meth:`save`)."""
        exit_paused()

    # -- state -------------------------------------------------------------------------------
    def save_state(self, state: Mapping[str, Any]) -> Path:
        """Atomically and durably write ``state`` (tensors, numbers, strings, nested dicts/lists).

        The state goes to a temporary file that is fsynced, then renamed over the checkpoint,
        then the directory is fsynced (where the OS allows it), so a crash or power loss leaves
        either the old checkpoint or the new one. If writing fails, the temporary file is
        removed and the error is raised again; the previous checkpoint is left untouched.
        """
        torch = _torch()
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as handle:
                torch.save(dict(state), handle)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_directory(self.directory)
        return self.path

    def load_state(self) -> dict[str, Any] | None:
        """The saved state, or ``None`` when there is none. Loaded with ``weights_only=True``."""
        if not self.path.is_file():
            return None
        torch = _torch()
        try:
            loaded = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupted or not a weights-only file
            raise DataError(
                f"checkpoint {str(self.path)!r} cannot be loaded safely ({exc}). "
                "Delete it to start afresh."
            ) from None
        if not isinstance(loaded, dict):
            raise DataError(f"checkpoint {str(self.path)!r} does not hold a dict of state.")
        return loaded

    def save(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        step: int,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Save model and optimizer state and the next step to run."""
        state: dict[str, Any] = {"step": int(step), "model": model.state_dict()}
        if optimizer is not None:
            state["optimizer"] = optimizer.state_dict()
        if extra:
            state["extra"] = dict(extra)
        return self.save_state(state)

    def restore(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None
    ) -> int:
        """Load saved state into ``model``/``optimizer`` when resuming; the step to start at.

        Returns 0 (and loads nothing) on a fresh start, i.e. when ``GREENFORGE_RESUME`` is not
        ``1`` or no checkpoint exists.
        """
        if not self.resuming:
            return 0
        state = self.load_state()
        if state is None:
            return 0
        model.load_state_dict(state["model"])
        if optimizer is not None and "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
        return int(state.get("step", 0))

    def extra(self) -> dict[str, Any]:
        """The ``extra`` mapping saved with the last checkpoint (empty if none)."""
        state = self.load_state()
        if not state:
            return {}
        value = state.get("extra", {})
        return dict(value) if isinstance(value, Mapping) else {}

    def clear(self) -> None:
        """Delete the checkpoint (call when the job has finished)."""
        self.path.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable; a no-op where directories cannot be opened."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def _torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is installed in CI
        raise MissingExtraError("torch", "torch", "checkpointing PyTorch loops") from None
    return torch
