"""A small, real PyTorch training run, measured with GreenForge windows per epoch.

A compact CNN learns scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download)
on one CPU thread in about 10-20 s. Each epoch is a tracker window (with a nested ``eval`` window), and
after the first epoch the tracker predicts the whole run's energy and CO2e, as Carbontracker
does. ``make demo`` runs it under ``greenforge run --zone DE``, which measures the whole
process; this script's own tracker adds the per-epoch breakdown (stored as a separate run that
names the outer one in ``metadata.parent_run_id``)::

    python -m greenforge.examples.train --zone DE --epochs 30
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from greenforge.records import Prediction


def load_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits as (train_x, train_y, test_x, test_y) tensors, images scaled to [0, 1]."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype("float32") / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.2, random_state=seed, stratify=digits.target
    )
    return (
        torch.from_numpy(x_train).unsqueeze(1),
        torch.from_numpy(y_train).long(),
        torch.from_numpy(x_test).unsqueeze(1),
        torch.from_numpy(y_test).long(),
    )


def make_model(width: int = 32) -> torch.nn.Module:
    """A small CNN for 1x8x8 digit images."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * 4 * 4, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One pass over (x, y) in shuffled mini-batches; returns the mean loss."""
    import torch
    from torch.nn import functional

    model.train()
    order = torch.randperm(len(x), generator=generator)
    total = 0.0
    for i in range(0, len(x), batch_size):
        idx = order[i : i + batch_size]
        optimizer.zero_grad()
        loss = functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        total += loss.detach().item() * len(idx)
    return total / len(x)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def _print_prediction(p: Prediction) -> None:
    print(
        f"  predicted total after {p.windows_seen}/{p.windows_total} epochs: "
        f"{p.energy_j:.1f} J, "
        f"{'CO2e unknown' if p.co2e_g is None else f'{p.co2e_g * 1000:.3f} mgCO2e'}, "
        f"{p.duration_s:.1f} s",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=32, help="channels of the first conv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: stable timing on shared machines; 0 = torch default)",
    )
    parser.add_argument("--zone", default=None, help="grid zone (default: GREENFORGE_ZONE)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.width < 1 or args.threads < 0:
        parser.error("--epochs, --batch-size and --width must be >= 1, --threads >= 0")

    import torch

    import greenforge

    if args.threads:
        torch.set_num_threads(args.threads)  # this script is the application, not a library
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    x_train, y_train, x_test, y_test = load_data(args.seed)
    model = make_model(args.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    printed: dict[str, Any] = {"prediction": False}

    def on_prediction(p: Prediction) -> None:
        if not printed["prediction"]:
            printed["prediction"] = True
            _print_prediction(p)

    print(
        f"training a CNN on sklearn digits: {len(x_train)} train / {len(x_test)} test images, "
        f"{args.epochs} epochs",
        flush=True,
    )
    with greenforge.track(
        zone=args.zone,
        name="examples.train",
        expected_windows=args.epochs,
        on_prediction=on_prediction,
    ) as run:
        for epoch in range(1, args.epochs + 1):
            with run.window(f"epoch-{epoch}"):
                loss = train_epoch(model, optimizer, x_train, y_train, args.batch_size, generator)
                with run.window("eval"):
                    acc = accuracy(model, x_test, y_test)
            print(f"epoch {epoch:2d}: loss {loss:.4f}  test accuracy {acc:.3f}", flush=True)
    record = run.record
    assert record is not None
    # no intensity (e.g. a live provider down, no fallback): say so, never print a zero
    co2e = "CO2e unknown" if record.co2e_g is None else f"{record.co2e_g * 1000:.3f} mgCO2e"
    print(
        f"done: test accuracy {acc:.3f}; this script's tracker measured {record.energy_j:.1f} J, "
        f"{co2e} in {record.duration_s:.1f} s (run {record.id})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
