"""ONNX export of ``transfer-*`` candidates: text models take int64 token ids (batch and tokens
dynamic), image transfer models are float modules like the rest."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import save_file
from torch.utils.data import TensorDataset

from greenforge.edge.export import (
    TOKEN_IDS_INPUT,
    CandidateInfo,
    export_candidate,
    read_metadata,
    token_check_inputs,
)
from greenforge.errors import DataError

from .conftest import blobs

TOKENS = 12


def text_info(name: str, precision: str) -> CandidateInfo:
    return CandidateInfo(
        name=name,
        precision=precision,
        recipe="transfer-lora",
        input_shape=(TOKENS,),
        num_classes=3,
        accuracy=0.9,
        flops=1000,
    )


@pytest.fixture(scope="module")
def text_model() -> Any:
    """A one-layer encoder with MiniLM's vocabulary (what transfer-* text candidates serve)."""
    from greenforge.forge.pretrained.text import minilm_dir, scratch_text_classifier

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = scratch_text_classifier(
            (TOKENS,), 3, model_dir=str(minilm_dir()), layers=1, hidden=32, heads=2
        )
    return model.eval()


def _ids(rows: int, tokens: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 30000, (rows, tokens), generator=g)
    ids[0, tokens // 2 :] = 0  # a padded row
    return ids


def test_a_text_model_exports_int64_token_ids_with_dynamic_batch_and_tokens(
    text_model: Any, tmp_path: Path
) -> None:
    path = tmp_path / "text.onnx"

    report = export_candidate(
        text_model, text_info("transfer-lora", "fp32"), path, inputs=_ids(16, TOKENS, 0)
    )

    assert report.input_dtype == "int64"
    assert report.max_abs_diff < 1e-4
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [inp] = session.get_inputs()
    assert (inp.name, inp.type, inp.shape) == (
        TOKEN_IDS_INPUT,
        "tensor(int64)",
        ["batch", "tokens"],
    )
    longer = _ids(5, 20, 1)  # another batch size and sequence length than exported with
    out = session.run(None, {TOKEN_IDS_INPUT: longer.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, text_model(longer).numpy(), atol=1e-4)
    meta = read_metadata(path)
    assert meta["greenforge_input_dtype"] == "int64"
    assert meta["greenforge_vocab_size"] == str(text_model.backbone.config.vocab_size)


def test_a_text_model_exports_as_int8_dynamic_within_tolerance(
    text_model: Any, tmp_path: Path
) -> None:
    path = tmp_path / "text-int8.onnx"

    report = export_candidate(text_model, text_info("transfer-lora+int8", "int8-dynamic"), path)

    assert report.kind == "int8-dynamic"
    assert report.check_inputs == "synthetic token ids"
    assert report.ok
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "MatMulInteger" in ops
    fp32_bytes = sum(4 * p.numel() for p in text_model.parameters())
    assert path.stat().st_size < 0.5 * fp32_bytes


def test_the_forges_float_ids_graph_is_re_exported_with_int64_ids(
    text_model: Any, tmp_path: Path
) -> None:
    from greenforge.forge.onnx import OnnxModel, export_fp32

    forge_graph = export_fp32(text_model, _ids(2, TOKENS, 0).float(), tmp_path / "f.onnx")
    assert not forge_graph.token_ids  # the forge serves ids as float32

    report = export_candidate(
        forge_graph, text_info("transfer-full+onnx", "fp32"), tmp_path / "e.onnx"
    )

    again = OnnxModel(tmp_path / "e.onnx")
    assert again.token_ids
    assert report.input_dtype == "int64"
    ids = _ids(4, TOKENS, 2)
    with torch.no_grad():
        torch.testing.assert_close(again(ids.float()), text_model(ids), atol=1e-4, rtol=0)


def test_text_check_inputs_must_be_token_ids_of_the_vocabulary() -> None:
    ids, label = token_check_inputs((4,), 100, 0, rows=8)
    assert ids.dtype == torch.int64
    assert label == "synthetic token ids"
    assert int(ids.max()) < 100
    assert bool((ids[:, 0] != 0).all())  # every row has at least one real token
    with pytest.raises(DataError, match="token ids"):
        token_check_inputs((4,), 100, 0, np.full((2, 4), 0.5))
    with pytest.raises(DataError, match="vocabulary"):
        token_check_inputs((4,), 100, 0, np.full((2, 4), 100))


def test_image_transfer_candidates_export_as_float_graphs(tmp_path: Path) -> None:
    """The real transfer recipes on a CNN checkpoint (the shape of a timm backbone + head)."""
    from greenforge.config import Settings
    from greenforge.forge.context import ForgeContext
    from greenforge.forge.models import build_model
    from greenforge.forge.recipes.base import create_recipe
    from greenforge.forge.spec import TaskSpec
    from greenforge.testing import FakeMeter

    x, y = blobs(240)
    xt = torch.from_numpy(x).reshape(-1, 1, 2, 4)
    yt = torch.from_numpy(y)
    sets = [TensorDataset(xt[a:b], yt[a:b]) for a, b in ((0, 160), (160, 200), (200, 240))]
    torch.manual_seed(0)
    pretrained = build_model("cnn", (1, 2, 4), 5, channels=(4, 8), hidden=16)
    ckpt = tmp_path / "cnn.safetensors"
    save_file(pretrained.state_dict(), str(ckpt))
    spec = TaskSpec(
        "img",
        target_accuracy=0.5,
        epochs=2,
        batch_size=32,
        lr=1e-2,
        architecture="cnn",
        architecture_options={"channels": (4, 8), "hidden": 16},
    )
    train, val, test = sets
    ctx = ForgeContext(
        train,
        val,
        test,
        3,
        (1, 2, 4),
        spec,
        Settings(zone="DE"),
        pretrained={"kind": "safetensors", "path": str(ckpt)},
        measure_kwargs={
            "meters": [FakeMeter(20.0)],
            "intensity_g_per_kwh": 300.0,
            "intensity_source": "static:test",
        },
    )
    for recipe in ("transfer-head", "transfer-full"):
        [cand] = create_recipe(recipe, stop_at_target=False).run(ctx)
        info = CandidateInfo(cand.name, cand.precision, recipe, (1, 2, 4), 3)
        path = tmp_path / f"{recipe}.onnx"

        report = export_candidate(cand.model, info, path, inputs=xt[200:].numpy())

        assert report.input_dtype == "float32"
        assert report.max_abs_diff < 1e-4
        assert read_metadata(path)["greenforge_input_dtype"] == "float32"


def test_a_text_graph_is_measured_on_synthetic_token_ids(text_model: Any, tmp_path: Path) -> None:
    from greenforge.config import Settings
    from greenforge.edge.energy import measure_exports

    path = tmp_path / "text.onnx"
    export_candidate(
        text_model, text_info("transfer-head", "fp32"), path, inputs=_ids(8, TOKENS, 0)
    )

    bench = measure_exports(
        {"transfer-head": path}, settings=Settings(), budget_s=0.1, idle_probe_s=0.0
    )

    [m] = bench.measurements
    assert m.energy_j > 0
    assert m.repeats >= 1
