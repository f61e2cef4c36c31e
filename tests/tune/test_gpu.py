"""GPU power-limit tuning against a fake NVML: the Zeus-style profile, the choice, and the
original limit restored on close, on an exception, at exit and on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from greenforge.cli.app import main
from greenforge.errors import ConfigError
from greenforge.tune.cost import zeus_cost
from greenforge.tune.gpu import (
    PowerLimitError,
    PowerLimitOptimizer,
    PowerLimitPermissionError,
    check_gpus,
    limits_to_profile,
    read_limits,
    restore_defaults,
)

sys.path.insert(0, str(Path(__file__).parent))
from fake_nvml import DRAW_W, FakeGpu, FakeNvml, step_time_s  # type: ignore[import-not-found]

LIMITS_W = [300.0, 250.0, 200.0, 150.0]


def train(nvml: FakeNvml, plo: PowerLimitOptimizer, epochs: int, steps: int) -> None:
    for _ in range(epochs):
        plo.on_epoch_begin()
        for _ in range(steps):
            plo.on_step_begin()
            nvml.run_step()
            plo.on_step_end()
        plo.on_epoch_end()


def optimizer(nvml: FakeNvml, **options: Any) -> PowerLimitOptimizer:
    options.setdefault("power_limits_w", LIMITS_W)
    return PowerLimitOptimizer(nvml=nvml, env={}, clock=nvml.clock, warmup_steps=2,
                               profile_steps=5, handle_signals=False, **options)  # fmt: skip


def expected_cost(limit_w: float, eta: float) -> float:
    t = step_time_s(limit_w)
    return zeus_cost(min(limit_w, DRAW_W) * t, t, eta, 400.0)


@pytest.mark.parametrize("eta", [0.0, 0.5, 0.8, 1.0])
def test_profiles_each_limit_and_keeps_the_least_cost(eta: float) -> None:
    nvml = FakeNvml([FakeGpu("GPU-a", limit_w=350.0)])

    with optimizer(nvml, eta=eta) as plo:
        train(nvml, plo, epochs=2, steps=40)
        kept = nvml.gpus[0].limit_mw / 1000.0
        result = plo.result

    assert result is not None
    assert [p.power_limit_w for p in result.profiles] == LIMITS_W  # largest first
    for p in result.profiles:
        assert p.time_s_per_step == pytest.approx(step_time_s(p.power_limit_w))
        assert p.power_w == pytest.approx(min(p.power_limit_w, DRAW_W), rel=1e-5)
        assert p.cost_j == pytest.approx(expected_cost(p.power_limit_w, eta), rel=1e-5)
    best = min(LIMITS_W, key=lambda w: expected_cost(w, eta))
    assert result.chosen_w == kept == best
    assert plo.phase == "closed"
    assert nvml.gpus[0].limit_mw == 350_000  # the original limit, restored at the end


def test_a_window_cut_by_the_epoch_end_is_profiled_again() -> None:
    nvml = FakeNvml()
    plo = optimizer(nvml).start()

    train(nvml, plo, epochs=1, steps=4)  # warm-up 2 + 2 of 5 profile steps, then epoch ends

    assert plo.profiles == []
    assert plo.queue[0] == 300.0
    train(nvml, plo, epochs=1, steps=7)
    assert [p.power_limit_w for p in plo.profiles] == [300.0]
    assert plo.profiles[0].steps == 5
    plo.close()


def test_max_slowdown_keeps_only_limits_close_to_the_fastest() -> None:
    nvml = FakeNvml()
    with optimizer(nvml, eta=1.0, max_slowdown=1.1) as plo:
        train(nvml, plo, epochs=1, steps=40)

    assert plo.result is not None
    assert plo.result.chosen_w == 250.0  # 150/200 W are > 10 % slower than 300 W
    energy_saving, slowdown = plo.result.saving_vs_max()
    assert energy_saving > 0
    assert 0 < slowdown <= 10.0


def test_every_gpu_gets_the_same_limits_and_its_own_original_back() -> None:
    nvml = FakeNvml([FakeGpu("GPU-a", 400.0), FakeGpu("GPU-b", 325.0)])
    with optimizer(nvml, eta=1.0) as plo:
        train(nvml, plo, epochs=1, steps=40)
        assert {g.limit_mw for g in nvml.gpus} == {150_000}

    assert [g.limit_mw for g in nvml.gpus] == [400_000, 325_000]
    assert plo.result is not None
    assert plo.result.max_power_w == 800.0


def test_an_exception_in_training_restores_the_limit() -> None:
    nvml = FakeNvml([FakeGpu("GPU-a", 350.0)])

    during: list[int] = []

    def training() -> None:
        with optimizer(nvml) as plo:
            train(nvml, plo, epochs=1, steps=3)
            during.append(nvml.gpus[0].limit_mw)
            raise RuntimeError("loss is NaN")

    with pytest.raises(RuntimeError, match="loss is NaN"):
        training()

    assert during == [300_000]
    assert nvml.gpus[0].limit_mw == 350_000


def test_no_permission_says_exactly_what_to_run() -> None:
    nvml = FakeNvml(allow_set=False)

    with pytest.raises(PowerLimitPermissionError) as info:
        optimizer(nvml).start()

    text = str(info.value)
    assert "NVML_ERROR_NO_PERMISSION" in text
    assert "sudo nvidia-smi -i 0 -pl 400" in text
    assert "sudo nvidia-smi -i 0 -pm 1" in text
    assert "--cap-add SYS_ADMIN" in text
    assert nvml.initialised == 0  # NVML shut down again
    assert info.value.exit_code == 4


def test_unsupported_power_limits_are_explained() -> None:
    with pytest.raises(PowerLimitError, match="not supported by this GPU"):
        optimizer(FakeNvml(set_supported=False)).start()


def test_check_and_restore_report_each_gpu() -> None:
    nvml = FakeNvml([FakeGpu("GPU-a", 250.0)])

    gpus, problem = check_gpus(nvml, env={})
    lines = restore_defaults(nvml, env={})

    assert problem is None
    assert gpus[0].original_w == 250.0
    assert gpus[0].max_w == 400.0
    assert lines == ["GPU 0 (Fake H100): 250 W -> default 400 W"]
    assert nvml.gpus[0].limit_mw == 400_000
    assert "NO_PERMISSION" in (check_gpus(FakeNvml(allow_set=False), env={})[1] or "")


def test_limits_default_to_25_w_steps_down_from_the_maximum() -> None:
    nvml = FakeNvml()
    nvml.nvmlInit()
    gpus = read_limits(nvml, env={})

    assert limits_to_profile(gpus, 100.0, None) == [400.0, 300.0, 200.0, 100.0]
    assert len(limits_to_profile(gpus, 25.0, None)) == 13
    with pytest.raises(ConfigError, match=r"outside the GPUs' allowed range"):
        limits_to_profile(gpus, 25.0, [450.0])


def test_sigterm_restores_the_limit_then_calls_the_previous_handler() -> None:
    nvml = FakeNvml([FakeGpu("GPU-a", 350.0)])
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        plo = PowerLimitOptimizer(nvml=nvml, env={}, clock=nvml.clock, power_limits_w=LIMITS_W)
        plo.start()
        train(nvml, plo, epochs=1, steps=1)
        assert nvml.gpus[0].limit_mw == 300_000

        os.kill(os.getpid(), signal.SIGTERM)

        assert seen == [signal.SIGTERM]
        assert nvml.gpus[0].limit_mw == 350_000
        assert signal.getsignal(signal.SIGTERM) is not plo._on_sigterm  # handler removed
    finally:
        signal.signal(signal.SIGTERM, previous)


CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {here!r})
from fake_nvml import FakeGpu, FakeNvml  # type: ignore[import-not-found]
from greenforge.tune.gpu import PowerLimitOptimizer

nvml = FakeNvml([FakeGpu("GPU-a", 350.0)], log=Path({log!r}))
plo = PowerLimitOptimizer(nvml=nvml, env={{}}, clock=nvml.clock, power_limits_w=[300.0, 200.0])
plo.start()
plo.on_epoch_begin()
print("limit", nvml.gpus[0].limit_mw, flush=True)
if {mode!r} == "crash":
    raise RuntimeError("training crashed")
time.sleep(60)
"""


@pytest.mark.parametrize("mode", ["sigterm", "crash"])
def test_a_killed_or_crashed_process_restores_the_limit(mode: str, tmp_path: Path) -> None:
    log = tmp_path / "limits.log"
    code = textwrap.dedent(CHILD.format(here=str(Path(__file__).parent), log=str(log), mode=mode))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "limit 300000"
    if mode == "sigterm":
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)

    # set at start (350, the privilege check), 300 for the first window, 350 restored
    assert log.read_text().split() == ["350", "300", "350"]
    assert proc.returncode == (-signal.SIGTERM if mode == "sigterm" else 1), err


def test_cli_gpu_check_without_a_driver_fails_with_the_meter_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["tune", "gpu", "--check"])

    assert code in (3, 4)  # no pynvml (3) or no NVIDIA driver (4) here
    assert "NVML" in capsys.readouterr().err or code == 3
