"""The tuners inside a real (tiny) Lightning ``Trainer.fit``; the GPU on a fake NVML."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from greenforge.forge.protocol import CorePower, ProcessCpuAttribution
from greenforge.tune.callback import CpuThreadTuner
from greenforge.tune.gpu import PowerLimitOptimizer
from greenforge.tune.lightning import TuneLightningCallback, batch_samples

sys.path.insert(0, str(Path(__file__).parent))
from fake_nvml import FakeGpu, FakeNvml  # type: ignore[import-not-found]

pytestmark = [
    pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),  # lightning 2.6, torch 2.13
]


def fit(tmp_path: Path, callback: Any, nvml: FakeNvml, epochs: int = 2) -> None:
    import lightning.pytorch as pl

    class Mlp(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            nvml.run_step()  # the fake GPU's time and energy for this step
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    gen = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(96, 4, generator=gen), torch.randn(96, 1, generator=gen))
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False,
                         accelerator="cpu", default_root_dir=str(tmp_path), callbacks=[callback])  # fmt: skip
    trainer.fit(Mlp(), DataLoader(ds, batch_size=8))


def test_power_limits_and_threads_are_tuned_during_fit_and_restored(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu("GPU-a", 350.0)])
    plo = PowerLimitOptimizer(nvml=nvml, env={}, clock=nvml.clock, power_limits_w=[300.0, 150.0],
                              warmup_steps=1, profile_steps=3, eta=1.0, handle_signals=False)  # fmt: skip
    cpu = [0.0]
    attribution = ProcessCpuAttribution(CorePower(10.0, 9.0, 11.0, "test"), 0.0,
                                        cpu_clock=lambda: cpu[0], rss_bytes=lambda: 0.0)  # fmt: skip
    threads = CpuThreadTuner((1, 2), steps_per_window=2, rounds=1, attribution=attribution,
                             max_power_w=20.0)  # fmt: skip
    before = torch.get_num_threads()

    fit(tmp_path, TuneLightningCallback(cpu_threads=threads, power_limits=plo), nvml)

    assert plo.result is not None
    assert plo.result.chosen_w == 150.0  # least energy per step on the fake GPU
    assert nvml.gpus[0].limit_mw == 350_000  # restored at train end
    assert threads.result is not None
    assert torch.get_num_threads() == before


def test_batch_samples_reads_the_first_tensor() -> None:
    x = torch.zeros(5, 3)

    assert batch_samples((x, torch.zeros(5))) == 5
    assert batch_samples([[x]]) == 5
    assert batch_samples({"input_ids": x}) == 5
    assert batch_samples("text") == 0
