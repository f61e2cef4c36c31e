"""Built-in workloads to tune: an MLP on a bundled example data set (``digits``, ``mnist5k``).

:func:`training_steps` and :func:`serving_steps` return the ``batch_size -> step`` factories
:func:`greenforge.tune.cpu.cpu_grid` measures; :func:`samples_to_target_loss` finds how many
training samples a batch size needs to reach a validation loss (what "energy to solution"
multiplies the per-sample cost by). torch is imported here, so this module is loaded only when
an example is tuned.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from greenforge.errors import ConfigError, InfeasibleError
from greenforge.forge.protocol import thread_limit
from greenforge.tune.cpu import Mode, Setting, Step, StepFactory, TuneResult, cpu_grid

HIDDEN = (256, 256)
LEARNING_RATE = 1e-3
"""Adam's step size for every batch size (the samples to a target loss then depend on it)."""


@dataclasses.dataclass(frozen=True)
class ExampleTask:
    """An example's training and validation tensors and its model shape."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    input_shape: tuple[int, ...]
    num_classes: int
    source: str


def _stack(ds: object) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = getattr(ds, "tensors", None)
    if tensors is None:  # pragma: no cover - the bundled examples are TensorDatasets
        raise ConfigError("the example's splits must be TensorDatasets.")
    return tensors[0], tensors[1]


def load_task(name: str = "digits", seed: int = 0) -> ExampleTask:
    """Returns the bundled example ``name`` (``digits`` or ``mnist5k``) as tensors."""
    from greenforge.forge.datasets import load_example

    data = load_example(name, seed=seed)
    x_train, y_train = _stack(data.train)
    x_val, y_val = _stack(data.val)
    return ExampleTask(
        name,
        x_train,
        y_train,
        x_val,
        y_val,
        tuple(data.input_shape),
        data.num_classes,
        data.source,
    )


def build_mlp(task: ExampleTask, seed: int = 0, hidden: Sequence[int] = HIDDEN) -> nn.Module:
    """Returns the example's MLP, initialised from ``seed``."""
    from greenforge.forge.models import MLP

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLP(task.input_shape, task.num_classes, hidden=tuple(hidden))


def _check_batch(task: ExampleTask, batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch size {batch_size!r} must be an integer >= 1.")
    if batch_size > task.x_train.shape[0]:
        raise ConfigError(
            f"batch size {batch_size} is larger than the {task.name} training split "
            f"({task.x_train.shape[0]} samples); use a smaller one."
        )


class _Trainer:
    """One setting's model, optimiser and data cursor (a shuffled pass, then the next)."""

    def __init__(self, task: ExampleTask, batch_size: int, seed: int) -> None:
        _check_batch(task, batch_size)
        self.task = task
        self.batch_size = batch_size
        self.model = build_mlp(task, seed)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE)
        self.gen = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(task.x_train.shape[0], generator=self.gen)
        self.pos = 0
        self.loss_fn = nn.CrossEntropyLoss()

    def step(self) -> int:
        n = self.task.x_train.shape[0]
        if self.pos + self.batch_size > n:  # drop the last partial batch, reshuffle
            self.order = torch.randperm(n, generator=self.gen)
            self.pos = 0
        idx = self.order[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(self.task.x_train[idx]), self.task.y_train[idx])
        loss.backward()
        self.opt.step()
        return self.batch_size

    def val_loss(self) -> float:
        self.model.eval()
        with torch.inference_mode():
            return float(self.loss_fn(self.model(self.task.x_val), self.task.y_val))


def training_steps(task: ExampleTask, seed: int = 0) -> StepFactory:
    """Returns ``batch_size -> step``: each setting trains its own MLP (same initial weights);
    a step is one Adam step on the next ``batch_size`` training samples."""

    def make(batch_size: int) -> Step:
        return _Trainer(task, batch_size, seed).step

    return make


def serving_steps(task: ExampleTask, model: nn.Module | None = None, seed: int = 0) -> StepFactory:
    """Returns ``batch_size -> step``: a step predicts the next ``batch_size`` samples of the
    training split with ``model`` (default: the example's MLP, untrained: the cost of a
    forward pass does not depend on the weights' values)."""
    net = model if model is not None else build_mlp(task, seed)
    net.eval()
    pool = task.x_train

    def make(batch_size: int) -> Step:
        _check_batch(task, batch_size)
        batches = [
            pool[i : i + batch_size].contiguous()
            for i in range(0, pool.shape[0] - batch_size + 1, batch_size)
        ]
        state = {"i": 0}

        def step() -> int:
            i = state["i"]
            state["i"] = (i + 1) % len(batches)
            with torch.inference_mode():
                net(batches[i])
            return batch_size

        return step

    return make


def samples_to_target_loss(
    task: ExampleTask,
    batch_size: int,
    target_loss: float,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    max_epochs: int = 200,
    check_every_samples: int = 256,
) -> int:
    """Returns the training samples (median over ``seeds``) the MLP needs at ``batch_size`` to
    reach a validation cross-entropy <= ``target_loss``, checked every ``check_every_samples``.

    Raises :class:`InfeasibleError` when a seed does not get there within ``max_epochs``.
    Runs with one torch thread (the result does not depend on the thread count).
    """
    if not target_loss > 0:
        raise ConfigError(f"target loss {target_loss!r} must be > 0 (cross-entropy, nats).")
    limit = max_epochs * task.x_train.shape[0]
    found: list[int] = []
    with thread_limit(1):
        for seed in seeds:
            trainer = _Trainer(task, batch_size, seed)
            done = next_check = 0
            while True:
                done += trainer.step()
                if done >= next_check:
                    next_check = done + check_every_samples
                    if trainer.val_loss() <= target_loss:
                        break
                if done >= limit:
                    raise InfeasibleError(
                        f"{task.name}: batch size {batch_size} did not reach validation loss "
                        f"{target_loss:g} within {max_epochs} epochs (seed {seed}); raise the "
                        "target loss or drop this batch size."
                    )
            found.append(done)
    return int(statistics.median(found))


def tune_example(
    name: str = "digits",
    *,
    mode: Mode = "training",
    threads: Sequence[int] | None = None,
    batch_sizes: Sequence[int] = (32, 64, 128),
    target_loss: float = 0.2,
    default: Setting | None = None,
    **options: Any,
) -> TuneResult:
    """Tunes threads x batch size for training (energy to ``target_loss``) or serving (J per
    1,000 predictions) the MLP of the bundled example ``name``; ``default`` (torch's default
    threads, batch 64 unless given) is measured beside the grid. ``options`` go to
    :func:`~greenforge.tune.cpu.cpu_grid`."""
    task = load_task(name)
    if default is None:
        default = Setting(int(torch.get_num_threads()), 64)
    sizes = tuple(dict.fromkeys([*batch_sizes, default.batch_size]))
    if mode == "training":
        solution = {b: samples_to_target_loss(task, b, target_loss) for b in sizes}
        return cpu_grid(
            training_steps(task),
            threads=threads,
            batch_sizes=batch_sizes,
            mode="training",
            samples_to_solution=solution,
            default=default,
            **options,
        )
    return cpu_grid(
        serving_steps(task),
        threads=threads,
        batch_sizes=batch_sizes,
        mode="serving",
        default=default,
        **options,
    )


__all__ = [
    "ExampleTask",
    "build_mlp",
    "load_task",
    "samples_to_target_loss",
    "serving_steps",
    "training_steps",
    "tune_example",
]
