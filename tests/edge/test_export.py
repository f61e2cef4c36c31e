"""Specification of the ONNX export: every candidate kind round-trips within its tolerance,
carries its metadata, and a graph that is not the model is refused with nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from greenforge.edge.export import (
    METADATA_KEYS,
    TOLERANCES,
    ExportCheckError,
    export_candidate,
    read_metadata,
)
from greenforge.edge.source import rebuild_module
from greenforge.forge.onnx import OnnxModel

from .conftest import CLASSES, INPUT, info_for

KINDS = {
    "baseline": "fp32",
    "distill": "fp32",
    "distill+prune50": "fp32",
    "baseline+sparse50": "fp32",
    "cnn": "fp32",
    "baseline+onnx": "fp32",
    "baseline+bf16": "bf16",
    "baseline+int8-dynamic": "int8-dynamic",
    "baseline+int8-static": "int8-static",
    "baseline+torchao-int8": "int8-dynamic",
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_candidate_kind_round_trips_within_its_tolerance_with_metadata(
    name: str,
    candidates: dict[str, tuple[Any, str]],
    test_rows: np.ndarray[Any, Any],
    tmp_path: Path,
) -> None:
    model, precision = candidates[name]
    path = tmp_path / f"{name}.onnx"

    report = export_candidate(model, info_for(name, precision), path, inputs=test_rows)

    assert report.kind == KINDS[name]
    assert report.ok
    assert report.max_abs_diff <= report.allowed_abs_diff
    assert report.top1_agreement >= TOLERANCES[report.kind].min_top1
    # the file, run again independently, gives what the report says
    x = torch.from_numpy(test_rows)
    onnx_out = OnnxModel(path)(x).numpy()
    reference = model.reference if isinstance(model, OnnxModel) else model
    assert reference is not None
    with torch.inference_mode():
        torch_out = reference(x).float().numpy()
    assert np.max(np.abs(onnx_out - torch_out)) == pytest.approx(report.max_abs_diff, rel=1e-5)
    meta = read_metadata(path)
    assert set(METADATA_KEYS) <= set(meta)
    assert meta["greenforge_candidate"] == name
    assert meta["greenforge_precision"] == precision
    assert meta["greenforge_kind"] == KINDS[name]
    assert float(meta["greenforge_accuracy"]) == 0.97
    assert meta["greenforge_forge_json_sha256"] == "0" * 64
    assert json.loads(meta["greenforge_input_shape"]) == ["batch", *INPUT]
    assert int(meta["greenforge_num_classes"]) == CLASSES
    assert json.loads(meta["greenforge_check"])["max_abs_diff"] == report.max_abs_diff
    assert meta["greenforge_version"]


def _weight_bytes(path: Path) -> int:
    import onnx

    return sum(len(t.raw_data) for t in onnx.load(str(path)).graph.initializer)


def test_fp32_is_exact_and_bf16_and_int8_store_smaller_weights(
    candidates: dict[str, tuple[Any, str]], test_rows: np.ndarray[Any, Any], tmp_path: Path
) -> None:
    weights = {}
    for name in ("baseline", "baseline+bf16", "baseline+int8-dynamic"):
        model, precision = candidates[name]
        path = tmp_path / f"{name}.onnx"
        r = export_candidate(model, info_for(name, precision), path, inputs=test_rows)
        weights[name] = _weight_bytes(path)
        if name == "baseline":
            assert r.max_abs_diff < 1e-4

    assert weights["baseline+bf16"] < 0.55 * weights["baseline"]
    assert weights["baseline+int8-dynamic"] < 0.45 * weights["baseline"]


def test_a_graph_that_is_not_the_model_is_refused_and_nothing_is_written(
    candidates: dict[str, tuple[Any, str]], test_rows: np.ndarray[Any, Any], tmp_path: Path
) -> None:
    int8, _ = candidates["baseline+int8-dynamic"]
    other, _ = candidates["distill"]
    wrong = OnnxModel(int8.path, precision="int8-dynamic", reference=other)
    path = tmp_path / "wrong.onnx"

    with pytest.raises(ExportCheckError) as err:
        export_candidate(wrong, info_for("wrong", "int8-dynamic"), path, inputs=test_rows)

    message = str(err.value)
    assert "'wrong'" in message
    assert "max abs" in message
    assert "tolerance" in message
    assert not path.exists()


def test_an_unknown_precision_names_the_known_kinds(
    candidates: dict[str, tuple[Any, str]], tmp_path: Path
) -> None:
    model, _ = candidates["baseline"]

    with pytest.raises(Exception, match="int8-static"):
        export_candidate(model, info_for("b", "fp8"), tmp_path / "b.onnx")


@pytest.mark.parametrize("name", ["baseline", "distill+prune50", "cnn", "baseline+bf16"])
def test_weights_rebuild_into_the_same_model(
    name: str, candidates: dict[str, tuple[Any, str]], test_rows: np.ndarray[Any, Any]
) -> None:
    model, _ = candidates[name]
    shape = (1, 2, 4) if name == "cnn" else INPUT

    rebuilt = rebuild_module(
        model.state_dict(),
        architecture="mlp",
        options={},
        input_shape=shape,
        num_classes=CLASSES,
    )

    x = torch.from_numpy(test_rows)
    with torch.inference_mode():
        assert torch.equal(rebuilt(x), model(x))


def test_a_transformer_rebuilds_with_the_tasks_heads(test_rows: np.ndarray[Any, Any]) -> None:
    from greenforge.forge.models import build_model

    torch.manual_seed(0)
    model = build_model("transformer", (2, 4), CLASSES, d_model=8, heads=2, layers=1, ff=16)

    rebuilt = rebuild_module(
        model.state_dict(),
        architecture="transformer",
        options={"heads": 2},
        input_shape=(2, 4),
        num_classes=CLASSES,
    )

    x = torch.from_numpy(test_rows)
    with torch.inference_mode():
        assert torch.allclose(rebuilt.eval()(x), model.eval()(x), atol=1e-6)
