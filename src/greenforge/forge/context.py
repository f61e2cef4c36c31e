"""What a recipe sees: the :class:`ForgeContext` (data, task, baseline, measured training).

Training energy is *measured*: recipes train through :meth:`ForgeContext.train`, which runs the
loop inside :func:`greenforge.forge.measure.measure` and records every measurement on the context
so the whole search's cost is reported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from greenforge.config import Settings
from greenforge.errors import BudgetExceededError, ConfigError
from greenforge.forge.candidate import Candidate, TrainOutcome
from greenforge.forge.spec import TaskSpec

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset

    from greenforge.forge.measure import Measurement

Precision = Literal["fp32", "bf16-autocast"]
"""Training precision: plain fp32, or mixed precision with ``torch.autocast`` in bfloat16."""
PRECISIONS: tuple[str, ...] = ("fp32", "bf16-autocast")


@dataclasses.dataclass
class ForgeContext:
    """Everything a recipe needs: data, task, settings, the baseline, and measured training.

    ``train``/``val``/``test`` are ``torch.utils.data.Dataset`` objects yielding
    ``(x: float32 tensor of input_shape, y: int64 class index)``; for array data they are
    ``TensorDataset`` instances.
    """

    train_data: Dataset[Any]
    val_data: Dataset[Any]
    test_data: Dataset[Any]
    num_classes: int
    input_shape: tuple[int, ...]
    task: TaskSpec
    settings: Settings
    device: str = "cpu"
    pretrained: Mapping[str, Any] | None = None
    baseline: Candidate | None = None
    measure_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Passed to :func:`greenforge.forge.measure.measure` (e.g. injected meters in tests)."""
    measurements: list[tuple[str, Measurement]] = dataclasses.field(default_factory=list)
    """Every measurement taken during the search, labelled - the search's total cost."""
    candidates: dict[str, Candidate] = dataclasses.field(default_factory=dict)
    """Candidates built so far by name (recipes may compose, e.g. prune the distilled student)."""
    progress: Callable[[str, int, int], None] | None = None
    """Optional ``progress(label, done, total)`` callback (rich progress bars in the CLI)."""
    scratch_dir: Path | None = None
    """Where recipes may write intermediate files (ONNX exports); a temp dir by default."""
    artifacts: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Intermediate results recipes share (e.g. cached teacher logits of the augmented set)."""

    @property
    def seed(self) -> int:
        return self.task.seed

    @property
    def epochs(self) -> int:
        return self.task.epochs

    @property
    def batch_size(self) -> int:
        return self.task.batch_size

    @property
    def lr(self) -> float:
        return self.task.lr

    @property
    def target_accuracy(self) -> float | None:
        """The absolute target; with a tolerance, known once the baseline is evaluated."""
        if self.task.target_accuracy is not None:
            return self.task.target_accuracy
        if math.isnan(self.baseline_test_accuracy):
            return None
        assert self.task.tolerance is not None
        return max(self.baseline_test_accuracy - self.task.tolerance, 0.0)

    baseline_test_accuracy: float = float("nan")
    """Set by the search after evaluating the baseline."""

    def val_target(self, margin: float = 0.0) -> float | None:
        """The target expressed on the *validation* split, for early stopping and selection.

        An absolute target is used as is; a tolerance target is the baseline's validation
        accuracy minus the tolerance (like compared with like: the test split stays unseen).
        ``margin`` is added for safety. ``None`` while the baseline is not trained yet.
        """
        if self.task.target_accuracy is not None:
            base = self.task.target_accuracy
        elif self.baseline is not None and self.baseline.val_accuracy is not None:
            assert self.task.tolerance is not None
            base = self.baseline.val_accuracy - self.task.tolerance
        else:
            return None
        return min(max(base + margin, 0.0), 1.0)

    # ------------------------------------------------------------------ search budget

    @property
    def spent_co2e_g(self) -> float:
        """The CO2e (g) of every measurement taken so far in this search."""
        return sum(m.co2e_g for _, m in self.measurements)

    def budget_left_co2e_g(self) -> float | None:
        """The task's search budget minus what is spent (g CO2e); ``None`` without a budget."""
        budget = self.task.search_budget_co2e_g
        return None if budget is None else budget - self.spent_co2e_g

    def check_budget(self, step: str) -> None:
        """Raise :class:`~greenforge.errors.BudgetExceededError` naming ``step`` when the task's
        ``search_budget_co2e_g`` is spent; the search records it and skips the recipe."""
        left = self.budget_left_co2e_g()
        if left is not None and left <= 0:
            raise BudgetExceededError(
                f"search budget spent: {self.spent_co2e_g:.4g} g of search_budget_co2e_g = "
                f"{self.task.search_budget_co2e_g:g} g used, so {step!r} was skipped. Raise "
                "search_budget_co2e_g in the task table to search further."
            )

    # ------------------------------------------------------------------ helpers

    def scratch(self, name: str) -> Path:
        """A fresh directory for one recipe's intermediate files."""
        import re
        import tempfile

        if self.scratch_dir is None:
            self.scratch_dir = Path(tempfile.mkdtemp(prefix="greenforge-forge-"))
        safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", name)
        path = self.scratch_dir / safe
        n = 1
        while path.exists():
            n += 1
            path = self.scratch_dir / f"{safe}-{n}"
        path.mkdir(parents=True)
        return path

    def measure(self, label: str, fn: Callable[[], Any]) -> tuple[Any, Measurement]:
        """Run ``fn`` measured; record the measurement as part of the search's cost."""
        from greenforge.forge.measure import measure

        result, m = measure(fn, self.settings, name=label, **dict(self.measure_kwargs))
        self.measurements.append((label, m))
        return result, m

    def load_tooling(self, name: str, load: Callable[[], object]) -> None:
        """Run ``load`` (a library's imports and first use) once per search, measured as the
        search's own step ``tooling:<name>``, before the first candidate that needs it.

        A one-off start-up is the search's cost, not the candidate's that happens to come first:
        ``import onnx`` alone takes about 0.7 CPU s (torchao about 1.3 s), which billed the
        first of two otherwise identical int8 conversions 0.27 mg more than the second and
        decided the choice between them by recipe order. It stays in the search total (and so
        in the chosen model's search share)."""
        label = f"tooling:{name}"
        if all(taken != label for taken, _ in self.measurements):
            self.measure(label, load)

    @contextlib.contextmanager
    def seeded(self, offset: int = 0) -> Iterator[None]:
        """Seed torch's RNG inside the block only (global RNG state is restored after)."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + offset)
            yield

    def build_model(self, architecture: str | None = None, **options: Any) -> nn.Module:
        """A fresh model from the zoo (or the task's factory) for this task's input and classes."""
        from greenforge.forge.models import build_model

        arch = architecture or self.task.architecture
        opts = dict(self.task.architecture_options) if architecture is None else {}
        opts.update(options)
        with self.seeded():
            return build_model(arch, self.input_shape, self.num_classes, **opts)

    def loader(
        self,
        split: Literal["train", "val", "test"],
        shuffle: bool = False,
        batch_size: int | None = None,
    ) -> Any:
        """A DataLoader over one split (seeded shuffling)."""
        data = {"train": self.train_data, "val": self.val_data, "test": self.test_data}[split]
        return self._loader(data, shuffle, batch_size)

    def _loader(self, data: Dataset[Any], shuffle: bool, batch_size: int | None) -> Any:
        import torch
        from torch.utils.data import DataLoader

        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            data,
            batch_size=batch_size or self.batch_size,
            shuffle=shuffle,
            generator=gen if shuffle else None,
        )

    def accuracy(self, model: Any, split: Literal["train", "val", "test"] = "val") -> float:
        """Top-1 accuracy of ``model`` on a split (eval mode, no grad)."""
        from greenforge.forge.training import accuracy

        return accuracy(model, self.loader(split, batch_size=512))

    def train(
        self,
        model: nn.Module,
        *,
        name: str,
        epochs: int | None = None,
        lr: float | None = None,
        teacher: Any | None = None,
        temperature: float = 4.0,
        alpha: float = 0.7,
        precision: Precision = "fp32",
        stop_at_accuracy: float | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        parameters: Sequence[torch.nn.Parameter] | None = None,
        data: Dataset[Any] | None = None,
        batch_size: int | None = None,
    ) -> TrainOutcome:
        """Train ``model`` in place, measured; returns the measured cost and what happened.

        - ``teacher``: distil from it with the temperature-scaled KD loss
          ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE``.
        - ``precision="bf16-autocast"``: mixed precision with ``torch.autocast`` (bfloat16).
        - ``stop_at_accuracy``: stop after the first epoch whose validation accuracy reaches it
          (energy-to-accuracy early stopping).
        - ``parameters``: train only these (e.g. a new head); default all with ``requires_grad``.
        - ``data``: train on this dataset instead of the training split, e.g. ``(x, y,
          teacher_logits)`` from :func:`greenforge.forge.augment.kd_dataset` (KD with cached
          logits); ``batch_size`` overrides the task's.
        - Raises :class:`~greenforge.errors.BudgetExceededError` before training when the
          task's search budget is spent.
        """
        from greenforge.forge.training import TrainSettings, fit

        self.check_budget(f"train:{name}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}.")
        cfg = TrainSettings(
            epochs=self.epochs if epochs is None else epochs,
            lr=self.lr if lr is None else lr,
            temperature=temperature,
            alpha=alpha,
            precision=precision,
            stop_at_accuracy=stop_at_accuracy,
            seed=self.seed,
        )

        def run() -> tuple[int, float, bool]:
            return fit(
                model,
                self.loader("train", shuffle=True, batch_size=batch_size)
                if data is None
                else self._loader(data, shuffle=True, batch_size=batch_size),
                self.loader("val", batch_size=512),
                cfg,
                teacher=teacher,
                loss_fn=loss_fn,
                parameters=parameters,
                progress=None
                if self.progress is None
                else (
                    lambda done, total: self.progress(name, done, total)  # type: ignore[misc]
                ),
            )

        (epochs_run, val_acc, stopped), m = self.measure(f"train:{name}", run)
        reached = stop_at_accuracy is not None and val_acc >= stop_at_accuracy
        return TrainOutcome(m, epochs_run, val_acc, reached, stopped)

    def add(self, candidate: Candidate) -> Candidate:
        """Record a candidate so later recipes can build on it."""
        if candidate.name in self.candidates:
            raise ConfigError(
                f"two candidates are named {candidate.name!r}; give the recipe a distinct name."
            )
        self.candidates[candidate.name] = candidate
        return candidate

    def lineage(self, name: str) -> list[Candidate]:
        """The candidate and its ancestors (parent chain, nearest first)."""
        out: list[Candidate] = []
        seen: set[str] = set()
        current: str | None = name
        while current is not None and current not in seen:
            seen.add(current)
            cand = self.candidates.get(current)
            if cand is None:
                break
            out.append(cand)
            current = cand.parent
        return out

    def require_candidate(self, name: str) -> Candidate:
        """A previously built candidate, or a clear error naming the ones that exist."""
        if name not in self.candidates:
            raise ConfigError(
                f"recipe input {name!r} has not been built. Built so far: "
                f"{', '.join(self.candidates) or '(none)'}; list it earlier in `recipes`."
            )
        return self.candidates[name]
