"""The job side of the pause/resume protocol: signal flag, Checkpointer save/restore."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from greenforge.errors import ConfigError, DataError
from greenforge.schedule.checkpoint import (
    CHECKPOINT_FILE,
    ENV_CHECKPOINT_DIR,
    ENV_RESUME,
    PAUSE_EXIT_CODE,
    Checkpointer,
    PauseSignal,
    checkpoint_dir,
    resume_requested,
    signal_from_name,
)


def _model_and_optimizer(seed: int = 0) -> tuple[torch.nn.Linear, torch.optim.SGD]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _train_step(model: torch.nn.Linear, optimizer: torch.optim.SGD) -> None:
    x = torch.ones(4, 3)
    optimizer.zero_grad()
    loss = (model(x) ** 2).mean()
    loss.backward()
    optimizer.step()


def test_the_documented_pause_exit_code_is_99() -> None:
    assert PAUSE_EXIT_CODE == 99


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SIGTERM", signal.SIGTERM),
        ("term", signal.SIGTERM),
        ("USR1", signal.SIGUSR1),
        (str(int(signal.SIGINT)), signal.SIGINT),
    ],
)
def test_signal_names_are_read_leniently(name: str, expected: signal.Signals) -> None:
    assert signal_from_name(name) == expected


@given(st.text(alphabet="XYZQ", min_size=1, max_size=8))
def test_unknown_signal_names_are_a_config_error_naming_the_value(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        signal_from_name(name)


def test_importing_the_module_installs_no_signal_handler() -> None:
    code = (
        "import signal; before = signal.getsignal(signal.SIGTERM); "
        "import greenforge.schedule.checkpoint, greenforge.schedule.callbacks; "
        "assert signal.getsignal(signal.SIGTERM) is before; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "ok"


def test_the_handler_exists_only_inside_the_with_block(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGUSR1)
    with Checkpointer(tmp_path, signal_name="SIGUSR1") as ckpt:
        assert signal.getsignal(signal.SIGUSR1) is not before
        assert not ckpt.pause_requested
        os.kill(os.getpid(), signal.SIGUSR1)
        assert ckpt.pause_requested
    assert signal.getsignal(signal.SIGUSR1) is before


def test_the_pause_signal_comes_from_the_environment_when_not_given() -> None:
    assert PauseSignal(env={"GREENFORGE_PAUSE_SIGNAL": "SIGUSR2"}).signum == signal.SIGUSR2
    assert PauseSignal(env={}).signum == signal.SIGTERM


def test_the_checkpoint_directory_and_resume_flag_come_from_the_protocol_env() -> None:
    env = {ENV_CHECKPOINT_DIR: "/data/ckpt", ENV_RESUME: "1"}
    assert checkpoint_dir(env) == Path("/data/ckpt")
    assert resume_requested(env)
    assert not resume_requested({ENV_RESUME: "0"})
    assert checkpoint_dir({}, default="fallback") == Path("fallback")


def test_save_then_restore_continues_exactly_where_training_stopped(tmp_path: Path) -> None:
    reference, ref_opt = _model_and_optimizer()
    for _ in range(6):
        _train_step(reference, ref_opt)

    model, opt = _model_and_optimizer()
    writer = Checkpointer(tmp_path, env={})
    for _ in range(3):
        _train_step(model, opt)
    path = writer.save(model, opt, step=3, extra={"epoch": 1})
    assert path == tmp_path / CHECKPOINT_FILE

    resumed, resumed_opt = _model_and_optimizer(seed=123)  # different initial weights
    reader = Checkpointer(tmp_path, env={ENV_RESUME: "1"})
    assert reader.resuming
    start = reader.restore(resumed, resumed_opt)
    for _ in range(start, 6):
        _train_step(resumed, resumed_opt)

    assert start == 3
    assert reader.extra() == {"epoch": 1}
    for a, b in zip(reference.parameters(), resumed.parameters(), strict=True):
        assert torch.allclose(a, b)


def test_a_fresh_start_loads_nothing_even_if_a_checkpoint_exists(tmp_path: Path) -> None:
    model, opt = _model_and_optimizer()
    Checkpointer(tmp_path, env={}).save(model, opt, step=5)
    fresh = Checkpointer(tmp_path, env={ENV_RESUME: "0"})
    assert not fresh.resuming
    assert fresh.restore(model, opt) == 0


def test_clear_removes_the_checkpoint(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path, env={ENV_RESUME: "1"})
    ckpt.save_state({"step": 1})
    ckpt.clear()
    assert ckpt.load_state() is None
    assert not ckpt.resuming


def test_an_unsafe_or_corrupt_checkpoint_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path, env={ENV_RESUME: "1"})
    # a pickled arbitrary object is not loadable with weights_only=True
    torch.save({"step": 1, "obj": Path("x")}, ckpt.path)
    with pytest.raises(DataError, match="cannot be loaded safely"):
        ckpt.load_state()
    ckpt.path.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=str(ckpt.path.name)):
        ckpt.load_state()


def test_a_failed_save_removes_its_temporary_file_and_keeps_the_old_checkpoint(
    tmp_path: Path,
) -> None:
    ckpt = Checkpointer(tmp_path, env={})
    ckpt.save_state({"step": 1})

    with pytest.raises(Exception, match=r"(?i)pickle|lambda|attribute"):
        ckpt.save_state({"step": 2, "unpicklable": lambda: None})

    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE]
    assert ckpt.load_state() == {"step": 1}


def test_a_save_is_fsynced_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = Checkpointer(tmp_path, env={})
    synced: list[bool] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(ckpt.path.exists())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)

    ckpt.save_state({"step": 3})

    assert synced[0] is False  # the temporary file is synced before it replaces the checkpoint
    assert ckpt.load_state() == {"step": 3}
