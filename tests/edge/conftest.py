"""Fixtures for the edge tests: every kind of candidate the forge produces, built in seconds
with the forge's own functions (training, KD, Torch-Pruning, ONNX Runtime int8, bf16, torchao),
and one real (tiny) forge output directory written by ``greenforge forge --export-onnx``."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from greenforge.edge.export import CandidateInfo

INPUT = (8,)
CLASSES = 3


def blobs(n: int = 240, seed: int = 0) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Well separated Gaussian blobs (as tests/forge/conftest.py), features scaled to ~N(0,1)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 4.0, size=(CLASSES, INPUT[0]))
    y = np.arange(n) % CLASSES
    x = centers[y] + rng.normal(0.0, 0.6, size=(n, INPUT[0]))
    return (x / 4.0).astype(np.float32), y.astype(np.int64)


def _fit(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, teacher: Any = None) -> None:
    """A few full-batch gradient steps (KD from ``teacher``'s logits when given); plain SGD
    by hand, one thread (quick on a busy machine)."""
    from greenforge.forge.protocol import thread_limit

    with thread_limit(1):
        model.train()
        t = None
        if teacher is not None:
            with torch.no_grad():
                t = teacher(x).softmax(-1)
        for _ in range(40):
            out = model(x)
            loss = torch.nn.functional.cross_entropy(out, y)
            if t is not None:
                loss = loss + torch.nn.functional.kl_div(
                    out.log_softmax(-1), t, reduction="batchmean"
                )
            model.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            with torch.no_grad():
                for p in model.parameters():
                    if p.grad is not None:
                        p.sub_(0.1 * p.grad)
        model.eval()


def build_candidates(workdir: Path) -> dict[str, tuple[Any, str]]:
    """``{name: (served model, precision)}`` for every kind the forge produces, on blobs.

    The ONNX Runtime int8 graphs use the forge's defaults (per-channel, 7-bit weights)."""
    from greenforge.forge.compress import (
        Bf16Config,
        ChannelPruneConfig,
        Int8DynamicConfig,
        Int8StaticConfig,
        UnstructuredPruneConfig,
        prune_,
        quantize,
    )
    from greenforge.forge.models import build_model
    from greenforge.forge.onnx import export_fp32

    xn, yn = blobs()
    x, y = torch.from_numpy(xn), torch.from_numpy(yn)
    torch.manual_seed(0)
    base = build_model("mlp", INPUT, CLASSES, hidden=(32, 32))
    _fit(base, x, y)
    student = build_model("mlp", INPUT, CLASSES, hidden=(8,))
    _fit(student, x, y, teacher=base)
    pruned = copy.deepcopy(base)
    prune_(pruned, ChannelPruneConfig(amount=0.5), x[:8])
    _fit(pruned, x, y, teacher=base)
    sparse = copy.deepcopy(base)
    prune_(sparse, UnstructuredPruneConfig(amount=0.5), x[:8])
    cnn = build_model("cnn", (1, 2, 4), CLASSES, channels=(4, 8), hidden=16)
    _fit(cnn, x, y)
    batches = [x[i : i + 32] for i in range(0, 128, 32)]
    out: dict[str, tuple[Any, str]] = {
        "baseline": (base, "fp32"),
        "distill": (student, "fp32"),
        "distill+prune50": (pruned, "fp32"),
        "baseline+sparse50": (sparse, "fp32"),
        "cnn": (cnn, "fp32"),
        "baseline+bf16": (quantize(base, Bf16Config(), example_inputs=x, workdir=workdir), "bf16"),
        "baseline+int8-dynamic": (
            quantize(
                base,
                Int8DynamicConfig(),
                example_inputs=x,
                workdir=workdir / "dyn",
            ),
            "int8-dynamic",
        ),
        "baseline+int8-static": (
            quantize(
                base,
                Int8StaticConfig(calibration_batches=4),
                example_inputs=x,
                workdir=workdir / "static",
                calibration=batches,
            ),
            "int8-static",
        ),
        "baseline+onnx": (export_fp32(base, x, workdir / "fp32.onnx"), "fp32"),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ao = quantize(base, Int8DynamicConfig(backend="torchao"), example_inputs=x, workdir=workdir)
    out["baseline+torchao-int8"] = (ao, "int8-dynamic")
    return out


@pytest.fixture(scope="session")
def candidates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, str]]:
    return build_candidates(tmp_path_factory.mktemp("candidates"))


@pytest.fixture(scope="session")
def test_rows() -> np.ndarray[Any, Any]:
    """64 rows the candidates never saw, from the same distribution (same centres)."""
    return blobs(304)[0][240:]


def info_for(name: str, precision: str, shape: tuple[int, ...] = INPUT) -> CandidateInfo:
    return CandidateInfo(
        name=name,
        precision=precision,
        recipe="test",
        input_shape=shape,
        num_classes=CLASSES,
        accuracy=0.97,
        flops=1234,
        forge_json_sha256="0" * 64,
    )


TINY_TASK = """
[task]
name = "tiny"
tolerance = 0.3
expected_inferences = 100000
zone = "DE"
epochs = 3
batch_size = 32
lr = 0.01
serving_batch_size = 16
serving_runtimes = ["native"]
measure_budget_s = 0.05
recipes = ["baseline",
           { recipe = "quantize", source = "baseline", mode = "int8-static" }]

[data]
kind = "npz"
path = "blobs.npz"

[model]
architecture = "mlp"
hidden = [16]
"""


@pytest.fixture(scope="session")
def forge_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real forge output directory from ``greenforge forge --config ... --export-onnx``."""
    from greenforge.cli.app import main

    tmp = tmp_path_factory.mktemp("forge")
    x, y = blobs()
    np.savez(tmp / "blobs.npz", x=x, y=y)
    (tmp / "task.toml").write_text(TINY_TASK, encoding="utf-8")
    out = tmp / "out"
    code = main(
        [
            "forge",
            "--config",
            str(tmp / "task.toml"),
            "--out",
            str(out),
            "--threads",
            "1",
            "--export-onnx",
        ]
    )
    assert code == 0
    return out
