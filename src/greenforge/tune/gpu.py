"""GPU power-limit tuning during training, in the manner of Zeus's ``GlobalPowerLimitOptimizer``.

Zeus (You, Chung and Chowdhury, NSDI 2023) observed that a GPU's power limit trades time for
energy, and that a few training steps at each limit predict the rest of the epoch. The
:class:`PowerLimitOptimizer` does the same through NVML (``nvidia-ml-py``, module ``pynvml``):

1. at :meth:`~PowerLimitOptimizer.start` it reads each visible GPU's allowed range and its
   current limit (to restore), and checks that it may change the limit (it sets the current
   value again): without the privilege it raises :class:`PowerLimitPermissionError`, whose
   message says exactly what to run;
2. during training, for each power limit to profile (from the largest down, ``step_w`` apart):
   it sets the limit, lets ``warmup_steps`` steps pass, then measures ``profile_steps`` steps:
   wall time and GPU energy (NVML's total-energy counter, mJ; where unsupported, power x time).
   A window cut by the end of an epoch is discarded and profiled again in the next epoch
   (evaluation and data-loader restarts are not training steps);
3. it then sets the limit with the least Zeus cost ``eta*E + (1-eta)*MaxPower*T`` per step
   (``MaxPower`` the sum of the GPUs' largest limits), under an optional ``max_slowdown``,
   and keeps it for the rest of training;
4. on :meth:`~PowerLimitOptimizer.close` - and on an exception in a ``with`` block, at
   interpreter exit (``atexit``) and on SIGTERM - it restores every GPU's original limit.
   SIGKILL cannot be caught: ``greenforge tune gpu --restore`` resets the default limits.

The SIGTERM handler is installed only while the optimizer runs (main thread only; pass
``handle_signals=False`` to opt out): it restores the limits, puts the previous handler back
and hands the signal to it, so the program's own shutdown still happens.

Training loop::

    from greenforge.tune.gpu import PowerLimitOptimizer

    with PowerLimitOptimizer(eta=0.5) as plo:
        for epoch in range(epochs):
            plo.on_epoch_begin()
            for x, y in loader:
                plo.on_step_begin()
                train_step(x, y)
                plo.on_step_end()
            plo.on_epoch_end()
    print(plo.result)
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from types import FrameType, TracebackType
from typing import Any, Literal

from greenforge.errors import ConfigError, MeterError
from greenforge.tune.cost import TimeConstraint, check_eta, choose

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
DEFAULT_STEP_W = 25.0
"""Distance between the power limits profiled (W), as in Zeus's default."""

Phase = Literal["idle", "warmup", "profile", "done", "closed"]


class PowerLimitError(MeterError):
    """A GPU's power limit could not be read or changed."""


class PowerLimitPermissionError(PowerLimitError):
    """This process may not change GPU power limits (NVML_ERROR_NO_PERMISSION)."""


def permission_message(indices: Sequence[int], limit_w: float | None = None) -> str:
    """Returns what to run when NVML refuses to change a power limit (no root)."""
    ids = ",".join(str(i) for i in indices) or "0"
    watts = f"{limit_w:.0f}" if limit_w is not None else "<watts>"
    return (
        f"changing the power limit of GPU {ids} needs administrator rights "
        "(NVML_ERROR_NO_PERMISSION). Either run the training as root (sudo), or in a container "
        "add the capability: `docker run --cap-add SYS_ADMIN ...`; or set one limit by hand "
        f"before training: `sudo nvidia-smi -i {ids} -pm 1` (persistence mode, so the limit "
        f"holds between processes) then `sudo nvidia-smi -i {ids} -pl {watts}`. GreenForge can "
        "still measure the GPU without it (greenforge run / track)."
    )


def _nvml_code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


@dataclasses.dataclass(frozen=True)
class GpuLimits:
    """A GPU's power-limit range and the limit found at start (W)."""

    index: int
    name: str
    min_w: float
    max_w: float
    default_w: float
    original_w: float


@dataclasses.dataclass(frozen=True)
class LimitProfile:
    """What one power limit cost per training step: wall time (s), GPU energy (J, all tuned
    GPUs), Zeus cost (J), and whether it met the time constraint."""

    power_limit_w: float
    steps: int
    time_s_per_step: float
    energy_j_per_step: float
    cost_j: float = math.nan
    feasible: bool = True

    @property
    def power_w(self) -> float:
        """Returns the mean GPU power during the window (W)."""
        t = self.time_s_per_step
        return self.energy_j_per_step / t if t > 0 else math.nan


@dataclasses.dataclass(frozen=True)
class PowerLimitResult:
    """Every profiled limit, the one chosen (W, applied to every tuned GPU) and the cost's
    terms."""

    profiles: tuple[LimitProfile, ...]
    chosen_w: float
    eta: float
    max_power_w: float
    constraint: str
    gpus: tuple[GpuLimits, ...]
    energy_method: str

    @property
    def chosen(self) -> LimitProfile:
        """Returns the chosen limit's profile."""
        return next(p for p in self.profiles if p.power_limit_w == self.chosen_w)

    def saving_vs_max(self) -> tuple[float, float]:
        """Returns (energy saving %, time increase %) per step of the chosen limit vs the
        largest limit profiled."""
        top = max(self.profiles, key=lambda p: p.power_limit_w)
        c = self.chosen
        return (
            100.0 * (1.0 - c.energy_j_per_step / top.energy_j_per_step),
            100.0 * (c.time_s_per_step / top.time_s_per_step - 1.0),
        )

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON-ready result."""
        return {
            "chosen_power_limit_w": self.chosen_w,
            "eta": self.eta,
            "max_power_w": self.max_power_w,
            "constraint": self.constraint,
            "energy_method": self.energy_method,
            "gpus": [dataclasses.asdict(g) for g in self.gpus],
            "profiles": [{**dataclasses.asdict(p), "power_w": p.power_w} for p in self.profiles],
        }


def load_nvml() -> Any:
    """Returns the ``pynvml`` module, or raises naming the extra to install."""
    from greenforge.meters.nvidia import load_nvml as _load

    return _load()


class _Nvml:
    """The few NVML calls the optimizer makes, each error turned into a clear message."""

    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml

    def call(self, what: str, fn: str, *args: Any, index: int | None = None) -> Any:
        try:
            return getattr(self.nvml, fn)(*args)
        except Exception as exc:
            code = _nvml_code(exc)
            if code == NVML_ERROR_NO_PERMISSION:
                limit = args[1] / 1000.0 if fn.startswith("nvmlDeviceSet") else None
                raise PowerLimitPermissionError(
                    permission_message([index if index is not None else 0], limit)
                ) from None
            if code == NVML_ERROR_NOT_SUPPORTED:
                raise PowerLimitError(
                    f"GPU {index}: {what} is not supported by this GPU or driver (NVML: "
                    f"{exc}); power-limit tuning needs a data-centre or workstation GPU whose "
                    "limit `nvidia-smi -q -d POWER` shows as adjustable."
                ) from None
            raise PowerLimitError(f"GPU {index}: {what} failed (NVML: {exc}).") from None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _visible(nvml: _Nvml, env: Mapping[str, str]) -> list[tuple[int, Any]]:
    from greenforge.meters.sampling import parse_visible_devices

    count = int(nvml.call("counting GPUs", "nvmlDeviceGetCount"))
    handles = [
        nvml.call("opening GPU", "nvmlDeviceGetHandleByIndex", i, index=i) for i in range(count)
    ]
    uuids = [
        _text(nvml.call("reading UUID", "nvmlDeviceGetUUID", h, index=i))
        for i, h in enumerate(handles)
    ]
    visible = parse_visible_devices(env.get("CUDA_VISIBLE_DEVICES"), uuids)
    if not visible:
        raise PowerLimitError(
            f"no NVIDIA GPU visible (found {count}, CUDA_VISIBLE_DEVICES="
            f"{env.get('CUDA_VISIBLE_DEVICES')!r}): nothing to tune."
        )
    return [(i, handles[i]) for i in visible]


def read_limits(nvml: Any, env: Mapping[str, str] | None = None) -> list[GpuLimits]:
    """Returns every visible GPU's power-limit range and current limit (W). NVML must be
    initialised by the caller."""
    api = _Nvml(nvml)
    out = []
    for i, h in _visible(api, os.environ if env is None else env):
        lo, hi = api.call(
            "reading the power-limit range",
            "nvmlDeviceGetPowerManagementLimitConstraints",
            h,
            index=i,
        )
        default = api.call(
            "reading the default power limit",
            "nvmlDeviceGetPowerManagementDefaultLimit",
            h,
            index=i,
        )
        current = api.call(
            "reading the power limit", "nvmlDeviceGetPowerManagementLimit", h, index=i
        )
        try:
            name = _text(nvml.nvmlDeviceGetName(h))
        except Exception:
            name = "NVIDIA GPU"
        out.append(GpuLimits(i, name, lo / 1000.0, hi / 1000.0, default / 1000.0, current / 1000.0))
    return out


def restore_defaults(nvml: Any | None = None, env: Mapping[str, str] | None = None) -> list[str]:
    """Sets every visible GPU's power limit back to its default; returns one line per GPU.
    (What ``greenforge tune gpu --restore`` runs after a process was killed mid-tuning.)"""
    nvml = nvml if nvml is not None else load_nvml()
    api = _Nvml(nvml)
    api.call("initialising NVML", "nvmlInit")
    try:
        lines = []
        handles = dict(_visible(api, os.environ if env is None else env))
        for g in read_limits(nvml, env):
            api.call(
                "setting the power limit",
                "nvmlDeviceSetPowerManagementLimit",
                handles[g.index],
                round(g.default_w * 1000),
                index=g.index,
            )
            lines.append(
                f"GPU {g.index} ({g.name}): {g.original_w:g} W -> default {g.default_w:g} W"
            )
        return lines
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def check_gpus(
    nvml: Any | None = None, env: Mapping[str, str] | None = None
) -> tuple[list[GpuLimits], str | None]:
    """Returns every visible GPU's limits and ``None`` when this process may change them, else
    the message saying what to run (it sets each GPU's current limit again to find out)."""
    nvml = nvml if nvml is not None else load_nvml()
    api = _Nvml(nvml)
    api.call("initialising NVML", "nvmlInit")
    try:
        env = os.environ if env is None else env
        handles = dict(_visible(api, env))
        gpus = read_limits(nvml, env)
        try:
            for g in gpus:
                api.call(
                    "setting the power limit",
                    "nvmlDeviceSetPowerManagementLimit",
                    handles[g.index],
                    round(g.original_w * 1000),
                    index=g.index,
                )
        except PowerLimitError as exc:
            return gpus, str(exc)
        return gpus, None
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def limits_to_profile(
    gpus: Sequence[GpuLimits], step_w: float, wanted: Sequence[float] | None
) -> list[float]:
    """Returns the limits (W) to profile, largest first: ``wanted`` (each within every GPU's
    range), else from the smallest common maximum down to the largest common minimum."""
    lo = max(g.min_w for g in gpus)
    hi = min(g.max_w for g in gpus)
    if wanted is not None:
        out = sorted(dict.fromkeys(float(w) for w in wanted), reverse=True)
        if not out:
            raise ConfigError("power_limits_w is empty: give limits in W, or leave it out.")
        bad = [w for w in out if not lo <= w <= hi]
        if bad:
            raise ConfigError(
                f"power limits {bad} W are outside the GPUs' allowed range {lo:g}-{hi:g} W "
                "(nvidia-smi -q -d POWER): choose limits inside it."
            )
        return out
    if not (math.isfinite(step_w) and step_w > 0):
        raise ConfigError(f"step_w {step_w!r} must be > 0 W.")
    out, w = [], hi
    while w >= lo - 1e-9:
        out.append(round(w, 3))
        w -= step_w
    return out


class PowerLimitOptimizer:
    """Profiles GPU power limits over training-step windows and keeps the cheapest (see the
    module docstring). ``nvml`` (the ``pynvml`` module, or a fake), ``env`` and ``clock`` are
    injectable."""

    def __init__(
        self,
        *,
        eta: float = 0.5,
        max_slowdown: float | None = None,
        power_limits_w: Sequence[float] | None = None,
        step_w: float = DEFAULT_STEP_W,
        warmup_steps: int = 10,
        profile_steps: int = 40,
        nvml: Any | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        handle_signals: bool = True,
    ) -> None:
        self.eta = check_eta(eta)
        self.constraint = TimeConstraint(None, max_slowdown)
        for name, n in (("warmup_steps", warmup_steps), ("profile_steps", profile_steps)):
            if isinstance(n, bool) or not isinstance(n, int) or n < (1 if name[0] == "p" else 0):
                raise ConfigError(f"{name} {n!r} must be an integer >= {int(name[0] == 'p')}.")
        self.warmup_steps = warmup_steps
        self.profile_steps = profile_steps
        self._wanted = power_limits_w
        self._step_w = step_w
        self._nvml_module = nvml
        self._env = env
        self._clock = clock
        self._handle_signals = handle_signals
        self.gpus: tuple[GpuLimits, ...] = ()
        self.queue: list[float] = []
        self.profiles: list[LimitProfile] = []
        self.result: PowerLimitResult | None = None
        self.phase: Phase = "idle"
        self.current_w: float | None = None
        self.energy_method = "nvml-energy"
        self.warnings: list[str] = []
        self._api: _Nvml | None = None
        self._handles: list[Any] = []
        self._count = 0
        self._mark: tuple[float, float] = (0.0, 0.0)
        self._power_samples: list[float] = []
        self._lock = threading.RLock()
        self._previous_handler: Any = None
        self._handler_installed = False
        self._restored = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> PowerLimitOptimizer:
        """Reads the GPUs' limits, checks the privilege, installs the restore guards."""
        nvml = self._nvml_module if self._nvml_module is not None else load_nvml()
        api = _Nvml(nvml)
        api.call("initialising NVML", "nvmlInit")
        self._api = api
        try:
            env = os.environ if self._env is None else self._env
            visible = _visible(api, env)
            self.gpus = tuple(read_limits(nvml, env))
            self._handles = [h for _, h in visible]
            self.queue = limits_to_profile(self.gpus, self._step_w, self._wanted)
            for g, h in zip(self.gpus, self._handles, strict=True):
                # setting the current limit again: the cheapest proof that we may change it
                self._set_one(g, h, g.original_w)
            try:
                for h in self._handles:
                    nvml.nvmlDeviceGetTotalEnergyConsumption(h)
            except Exception:
                self.energy_method = "nvml-power"
        except BaseException:
            self._shutdown()
            raise
        atexit.register(self.close)
        self._install_signal_handler()
        return self

    def close(self) -> None:
        """Restores every GPU's original limit (once) and removes the guards."""
        with self._lock:
            if self._restored or self._api is None:
                return
            self._restored = True
            self.phase = "closed"
            problems = []
            for g, h in zip(self.gpus, self._handles, strict=True):
                try:
                    self._set_one(g, h, g.original_w)
                except PowerLimitError as exc:
                    problems.append(str(exc))
            self._shutdown()
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        self._remove_signal_handler()
        for p in problems:
            self._warn(
                f"could not restore the original power limit: {p} Run `greenforge tune gpu "
                "--restore` (as root) to reset the default limits."
            )

    def __enter__(self) -> PowerLimitOptimizer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- training-loop hooks ---------------------------------------------------------------

    def on_epoch_begin(self) -> None:
        """Starts (or restarts) the current limit's window at an epoch's first step."""
        with self._lock:
            if self.phase in ("idle", "warmup", "profile"):
                self._begin_window()

    def on_step_begin(self) -> None:
        """Nothing to do before a step (windows are measured from step end to step end)."""

    def on_step_end(self) -> None:
        """Counts a step; ends the warm-up or a profiling window when its steps are done."""
        with self._lock:
            if self.phase == "idle":
                self._begin_window()
            if self.phase == "warmup":
                self._count += 1
                if self._count >= self.warmup_steps:
                    self._start_measuring()
            elif self.phase == "profile":
                self._count += 1
                if self.energy_method == "nvml-power":
                    self._power_samples.append(self._power_w())
                if self._count >= self.profile_steps:
                    self._finish_window()

    def on_epoch_end(self) -> None:
        """Discards a window the epoch's end cut short (profiled again next epoch)."""
        with self._lock:
            if self.phase in ("warmup", "profile"):
                self.phase = "idle"

    # -- internals -------------------------------------------------------------------------

    def _set_one(self, g: GpuLimits, handle: Any, watts: float) -> None:
        assert self._api is not None
        self._api.call(
            "setting the power limit",
            "nvmlDeviceSetPowerManagementLimit",
            handle,
            round(watts * 1000),
            index=g.index,
        )

    def _set_all(self, watts: float) -> bool:
        try:
            for g, h in zip(self.gpus, self._handles, strict=True):
                self._set_one(g, h, watts)
        except PowerLimitError as exc:  # a tuning failure never stops the training
            self._warn(f"power-limit tuning stopped: {exc}")
            self.close()
            return False
        self.current_w = watts
        return True

    def _begin_window(self) -> None:
        if not self.queue:
            return
        if self._set_all(self.queue[0]):
            self.phase = "warmup"
            self._count = 0
            if self.warmup_steps == 0:
                self._start_measuring()

    def _start_measuring(self) -> None:
        self.phase = "profile"
        self._count = 0
        self._power_samples = []
        self._mark = (self._clock(), self._energy_j())

    def _finish_window(self) -> None:
        t0, e0 = self._mark
        dt = max(self._clock() - t0, 0.0)
        if self.energy_method == "nvml-energy":
            energy = max(self._energy_j() - e0, 0.0)
        else:
            samples = self._power_samples or [0.0]
            energy = sum(samples) / len(samples) * dt
        n = self._count
        self.profiles.append(LimitProfile(self.queue.pop(0), n, dt / n, energy / n))
        if self.queue:
            self._begin_window()
        else:
            self._decide()

    def _decide(self) -> None:
        max_power_w = sum(g.max_w for g in self.gpus)
        choice = choose(
            [p.energy_j_per_step for p in self.profiles],
            [p.time_s_per_step for p in self.profiles],
            eta=self.eta,
            max_power_w=max_power_w,
            constraint=self.constraint,
            labels=[f"{p.power_limit_w:g} W" for p in self.profiles],
        )
        self.profiles = [
            dataclasses.replace(p, cost_j=c, feasible=f)
            for p, c, f in zip(self.profiles, choice.costs_j, choice.feasible, strict=True)
        ]
        chosen = self.profiles[choice.index].power_limit_w
        self.result = PowerLimitResult(
            tuple(self.profiles),
            chosen,
            self.eta,
            max_power_w,
            self.constraint.describe(),
            self.gpus,
            self.energy_method,
        )
        if self._set_all(chosen):
            self.phase = "done"

    def _energy_j(self) -> float:
        assert self._api is not None
        total_mj = 0.0
        if self.energy_method != "nvml-energy":
            return 0.0
        for g, h in zip(self.gpus, self._handles, strict=True):
            total_mj += float(
                self._api.call(
                    "reading energy", "nvmlDeviceGetTotalEnergyConsumption", h, index=g.index
                )
            )
        return total_mj / 1000.0

    def _power_w(self) -> float:
        assert self._api is not None
        return (
            sum(
                float(self._api.call("reading power", "nvmlDeviceGetPowerUsage", h, index=g.index))
                for g, h in zip(self.gpus, self._handles, strict=True)
            )
            / 1000.0
        )

    def _shutdown(self) -> None:
        if self._api is not None:
            with contextlib.suppress(Exception):
                self._api.nvml.nvmlShutdown()

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    # -- SIGTERM ---------------------------------------------------------------------------

    def _install_signal_handler(self) -> None:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return
        self._previous_handler = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._handler_installed = True

    def _remove_signal_handler(self) -> None:
        if not self._handler_installed:
            return
        if threading.current_thread() is not threading.main_thread():
            return  # (only the main thread may change handlers; ours then restores and chains)
        self._handler_installed = False
        with contextlib.suppress(ValueError, TypeError):
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                signal.signal(signal.SIGTERM, self._previous_handler)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous_handler
        self.close()  # restores the limits and puts the previous handler back
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_IGN:
            return
        else:  # the default action: terminate, as the sender asked
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


__all__ = [
    "DEFAULT_STEP_W",
    "GpuLimits",
    "LimitProfile",
    "PowerLimitError",
    "PowerLimitOptimizer",
    "PowerLimitPermissionError",
    "PowerLimitResult",
    "check_gpus",
    "limits_to_profile",
    "permission_message",
    "read_limits",
    "restore_defaults",
]
