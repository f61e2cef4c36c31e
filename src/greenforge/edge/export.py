"""ONNX export of forge candidates, checked against torch, with metadata in the file.

Every kind of candidate ``greenforge forge`` produces becomes one ONNX file:

=================  ==========================================  =================================
kind               how it is exported                          checked against
=================  ==========================================  =================================
``fp32``           ``torch.onnx`` export of the module          the torch module
                   (baseline, early-stop, mixed-precision,
                   distilled and pruned students, ``+onnx``)
``bf16``           bf16 weights stored as ONNX ``bfloat16``     the torch bf16 model
                   initializers, cast to fp32 for compute
                   (ONNX Runtime's CPU provider has no bf16
                   matmul kernels)
``int8-dynamic``   the forge's own ONNX Runtime int8 graph;     the fp32 torch model it was
                   a torchao int8 model is re-quantized with    quantized from (torchao: the
                   ``quantize_dynamic`` from its dequantized    torchao model)
                   weights
``int8-static``    the forge's own calibrated QDQ graph          the fp32 torch model
=================  ==========================================  =================================

The check runs the file in ONNX Runtime and the torch model on the same inputs (the task's test
inputs when known) and compares logits: ``max_abs_diff <= atol + rtol x max|torch logits|``
(:data:`TOLERANCES`, one per kind). Exceeding it raises :class:`ExportCheckError` (a
:class:`~greenforge.errors.DataError`) naming the candidate, the difference and the tolerance;
the file is not written.

Text models (``transfer-*`` candidates on a ``[pretrained] kind = "hf"`` encoder, a
:class:`~greenforge.forge.pretrained.text.TextClassifier`) take token ids: their graph's input is
``input_ids``, int64, shape ``(batch, tokens)`` with both axes dynamic (padding id = the
tokenizer's, the attention mask is computed in the graph), checked on the task's token ids or
seeded random ids. Image ``transfer-*`` candidates (timm backbones) are float modules like the rest.

Metadata (ONNX ``metadata_props``, :data:`METADATA_KEYS`): greenforge version, candidate name,
precision, kind, test accuracy, sha256 of the source ``forge.json``, input shape (``batch`` is
the dynamic axis), number of classes, FLOPs per prediction, the check's result, the input dtype
(``float32`` or ``int64`` token ids) and the vocabulary size of a text model.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from greenforge.errors import DataError

EDGE_DIR = "edge"
"""Folder of a forge output directory that holds the ONNX exports."""
MANIFEST = "edge.json"
CHECK_INPUTS = "check-inputs.npy"
CHECK_ROWS = 64
META_PREFIX = "greenforge_"
METADATA_KEYS: tuple[str, ...] = (
    "greenforge_version",
    "greenforge_candidate",
    "greenforge_precision",
    "greenforge_kind",
    "greenforge_accuracy",
    "greenforge_forge_json_sha256",
    "greenforge_input_shape",
    "greenforge_num_classes",
    "greenforge_flops",
    "greenforge_recipe",
    "greenforge_check",
    "greenforge_input_dtype",
    "greenforge_vocab_size",
)
TOKEN_IDS_INPUT = "input_ids"  # noqa: S105 - an ONNX input name
"""Input name of a text model's graph: ``(batch, tokens)`` int64 token ids, both axes dynamic."""


class ExportCheckError(DataError):
    """The exported model's outputs differ from torch's by more than the kind's tolerance."""


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Allowed ``max |onnx - torch|`` of the logits: ``atol + rtol x max |torch logits|``."""

    atol: float
    rtol: float
    why: str
    min_top1: float = 0.9
    """Least share of rows whose top-1 class must agree with torch's."""

    def allowed(self, reference_max_abs: float) -> float:
        return self.atol + self.rtol * reference_max_abs


TOLERANCES: Mapping[str, Tolerance] = {
    "fp32": Tolerance(
        1e-4, 1e-4, "same arithmetic in another runtime: float rounding only", min_top1=0.95
    ),
    "bf16": Tolerance(
        1e-2,
        5e-2,
        "bf16 activations in torch vs fp32 compute on bf16 weights in ONNX",
        min_top1=0.9,
    ),
    "int8-dynamic": Tolerance(
        5e-2,
        0.25,
        "int8 weights and per-batch activation ranges vs the fp32 model: int8 rounding of "
        "weights and activations (a few % of the logit scale; a graph off by more is not a "
        "faithful int8 copy of the model)",
        min_top1=0.9,
    ),
    "int8-static": Tolerance(
        5e-2,
        0.25,
        "int8 weights and calibrated activation ranges vs the fp32 model: int8 rounding and "
        "clipping to the calibrated ranges (a graph off by more is not a faithful int8 copy)",
        min_top1=0.9,
    ),
}
"""Tolerance per kind. int8 kinds are compared with the fp32 model they came from, so their
tolerance bounds the quantization error as well as the export's."""


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """One exported candidate: where, what kind, and how close it came to torch."""

    candidate: str
    kind: str
    precision: str
    path: Path
    size_bytes: int
    max_abs_diff: float
    allowed_abs_diff: float
    reference_max_abs: float
    top1_agreement: float
    check_rows: int
    check_inputs: str
    """``test split`` (the task's inputs) or ``synthetic N(0,1)``."""
    source: str
    """How the graph was made (``torch.onnx export``, ``forge's ONNX Runtime int8 graph`` ...)."""
    reference: str
    """What it was checked against."""
    input_shape: tuple[int, ...]
    num_classes: int
    flops: int | None = None
    accuracy: float | None = None
    notes: tuple[str, ...] = ()
    input_dtype: str = "float32"
    """``float32``, or ``int64`` for a text model's token ids."""

    @property
    def ok(self) -> bool:
        """Whether the check passed (an :class:`ExportReport` exists only when it did)."""
        tol = TOLERANCES[self.kind]
        return self.max_abs_diff <= self.allowed_abs_diff and self.top1_agreement >= tol.min_top1

    def line(self) -> str:
        """One terminal line: candidate, kind, max abs diff vs the tolerance, file."""
        return (
            f"{self.candidate}: {self.kind} -> {self.path.name} ({self.size_bytes:,} B), max abs "
            f"diff {self.max_abs_diff:.3g} (tolerance {self.allowed_abs_diff:.3g}) vs "
            f"{self.reference} on {self.check_rows} {self.check_inputs} rows, top-1 agreement "
            f"{100 * self.top1_agreement:.1f} %"
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["path"] = str(self.path)
        out["input_shape"] = list(self.input_shape)
        out["notes"] = list(self.notes)
        out["ok"] = self.ok
        return out


@dataclasses.dataclass(frozen=True)
class CandidateInfo:
    """What the metadata says about a candidate (from the forge result or ``forge.json``)."""

    name: str
    precision: str
    recipe: str
    input_shape: tuple[int, ...]
    num_classes: int
    accuracy: float | None = None
    flops: int | None = None
    forge_json_sha256: str = ""


# --------------------------------------------------------------------------- helpers


def safe_name(name: str) -> str:
    """A file-name-safe form of a candidate name (``distill+prune50`` stays as it is)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name) or "candidate"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _finite(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def kind_of(model: Any, precision: str) -> str:
    """The export kind of a served model: ``fp32``, ``bf16``, ``int8-dynamic`` or
    ``int8-static`` (``bf16-autocast`` training serves fp32)."""
    from greenforge.forge.compress import Bf16Model

    if isinstance(model, Bf16Model) or precision == "bf16":
        return "bf16"
    if precision in ("int8-dynamic", "int8-static"):
        return precision
    if precision in ("fp32", "bf16-autocast"):
        return "fp32"
    raise DataError(
        f"candidate precision {precision!r} has no ONNX export kind; known kinds: "
        f"{', '.join(TOLERANCES)}."
    )


# --------------------------------------------------------------------------- graph makers


def token_vocab(model: Any) -> int | None:
    """The vocabulary size when ``model`` (a torch module, or an ONNX Runtime candidate through
    its torch reference) is a text classifier called on token ids; ``None`` otherwise."""
    from greenforge.forge.onnx import OnnxModel
    from greenforge.forge.pretrained.text import TextClassifier

    module = model.reference if isinstance(model, OnnxModel) else model
    if not isinstance(module, TextClassifier):
        return None
    vocab = getattr(getattr(module.backbone, "config", None), "vocab_size", None)
    if not isinstance(vocab, int) or vocab < 2:
        raise DataError(
            "the text model's encoder has no integer config.vocab_size: cannot make token ids."
        )
    return vocab


def token_check_inputs(
    input_shape: Sequence[int],
    vocab: int,
    pad_token_id: int,
    inputs: Any | None = None,
    rows: int = CHECK_ROWS,
    seed: int = 0,
    label: str = "test split",
) -> tuple[Any, str]:
    """``(int64 tensor (rows, tokens), label)``: up to ``rows`` of ``inputs`` (token ids, any
    numeric dtype), or seeded random ids in ``[0, vocab)`` avoiding the pad id, with a random
    padded tail per row (``synthetic token ids``)."""
    import numpy as np
    import torch

    if len(input_shape) != 1:
        raise DataError(
            f"a text model takes (tokens,) token ids per row, not input shape {list(input_shape)}."
        )
    if inputs is None:
        rng = np.random.default_rng(seed)
        tokens = int(input_shape[0])
        ids = rng.integers(0, vocab - 1, size=(rows, tokens))
        ids = ids + (ids >= pad_token_id)  # never the pad id inside the text
        lengths = rng.integers(1, tokens + 1, size=rows)
        ids[np.arange(tokens)[None, :] >= lengths[:, None]] = pad_token_id
        return torch.from_numpy(ids.astype(np.int64)), "synthetic token ids"
    x, label = check_inputs(input_shape, inputs, rows=rows, seed=seed, label=label)
    ids_t = x.round().long()
    if not bool(torch.equal(ids_t.double(), x.double())) or int(ids_t.min()) < 0:
        raise DataError("check inputs for a text model must be token ids (integers >= 0).")
    if int(ids_t.max()) >= vocab:
        raise DataError(
            f"check inputs reach token id {int(ids_t.max())}, beyond the model's vocabulary "
            f"({vocab}); tokenize with the model's tokenizer."
        )
    return ids_t.contiguous(), label


def _export_token_ids(module: Any, example: Any, path: Path) -> None:
    """``torch.onnx`` export of a text model: int64 ``input_ids`` (batch, tokens), both dynamic."""
    import logging
    import warnings

    import torch

    from greenforge.forge.onnx import OUTPUT_NAME

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        torch.onnx.export(
            module.eval(),
            (example[:2].long(),),
            str(path),
            input_names=[TOKEN_IDS_INPUT],
            output_names=[OUTPUT_NAME],
            dynamic_axes={TOKEN_IDS_INPUT: {0: "batch", 1: "tokens"}, OUTPUT_NAME: {0: "batch"}},
            dynamo=False,
        )


def _int8_dynamic_token_graph(module: Any, example: Any, path: Path, workdir: Path) -> None:
    from greenforge.forge.compress import quantize_onnx_dynamic

    fp32 = workdir / "text-fp32.onnx"
    _export_token_ids(module, example, fp32)
    quantize_onnx_dynamic(fp32, workdir / "text-int8.onnx")
    shutil.copyfile(workdir / "text-int8.onnx", path)


def _export_torch(module: Any, example: Any, path: Path) -> None:
    from greenforge.forge.onnx import export

    export(module, example, path)


def _bf16_graph(bf16: Any, example: Any, path: Path) -> None:
    """Exports the bf16 model's weights as ``bfloat16`` initializers with a ``Cast`` to fp32
    before use: half the bytes on disk, fp32 arithmetic (ONNX Runtime CPU has no bf16 GEMM)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    fp32 = copy.deepcopy(bf16.inner).float().eval()  # bf16 values are exact in fp32
    _export_torch(fp32, example, path)
    model = onnx.load(str(path))
    graph = model.graph
    casts = []
    kept = []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims or [1])) < 2:
            kept.append(init)
            continue
        values = numpy_helper.to_array(init).astype(np.float32)
        bits = (values.view(np.uint32) >> 16).astype(np.uint16)  # exact: values are bf16
        low = helper.make_tensor(
            f"{init.name}__bf16", TensorProto.BFLOAT16, list(init.dims), bits.tobytes(), raw=True
        )
        kept.append(low)
        casts.append(
            helper.make_node(
                "Cast", [low.name], [init.name], to=TensorProto.FLOAT, name=f"{init.name}__cast"
            )
        )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*casts, *nodes])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _dequantized_copy(module: Any) -> Any:
    """An fp32 copy of a torch module whose parameters may be quantized tensor subclasses
    (torchao): each such tensor is replaced by its ``dequantize()`` values."""
    import torch
    from torch import nn

    out = copy.deepcopy(module)
    for sub in out.modules():
        for pname, p in list(sub.named_parameters(recurse=False)):
            data = p.detach()
            if type(data) is not torch.Tensor and hasattr(data, "dequantize"):
                data = data.dequantize()
            setattr(sub, pname, nn.Parameter(torch.Tensor(data.float()), requires_grad=False))
    return out.float().eval()


def _int8_dynamic_graph(module: Any, example: Any, path: Path, workdir: Path) -> None:
    from greenforge.forge.compress import Int8DynamicConfig, quantize

    q = quantize(module, Int8DynamicConfig(), example_inputs=example, workdir=workdir)
    shutil.copyfile(q.path, path)


# --------------------------------------------------------------------------- the export


@dataclasses.dataclass(frozen=True)
class _Plan:
    kind: str
    make: Callable[[Path, Path], object]
    """``make(path, workdir)`` writes the ONNX graph to ``path``."""
    reference: Callable[[Any], Any]
    """torch logits for a float32 batch."""
    reference_label: str
    source: str
    notes: tuple[str, ...] = ()


_STATIC_NEEDS_FORGE_GRAPH = (
    "an int8-static candidate is calibrated on the task's training data: export the forge's "
    "own graph (an ONNX Runtime candidate), not a torch module."
)


def _plan(model: Any, precision: str, example: Any) -> _Plan:
    """How to export ``model`` (a candidate's served model) and what to check it against."""
    import torch
    from torch import nn

    from greenforge.forge.compress import Bf16Model
    from greenforge.forge.onnx import OnnxModel

    kind = kind_of(model, precision)

    def torch_call(module: Any) -> Callable[[Any], Any]:
        def run(x: Any) -> Any:
            with torch.inference_mode():
                return module.eval()(x).float()

        return run

    if token_vocab(model) is not None:
        return _token_plan(model, kind, example, torch_call)
    if isinstance(model, OnnxModel):
        ref = model.reference
        if not isinstance(ref, nn.Module):
            raise DataError(
                f"ONNX Runtime candidate ({model.path.name}) keeps no torch model to check "
                "against; export it from its parent instead."
            )
        src = model.path
        label = "forge's ONNX Runtime graph" + ("" if kind == "fp32" else f" ({kind})")
        return _Plan(
            kind,
            lambda path, _w: shutil.copyfile(src, path),
            torch_call(ref),
            "the fp32 torch model" if kind != "fp32" else "the torch model",
            label,
        )
    if not isinstance(model, nn.Module):
        raise DataError(
            f"cannot export a {type(model).__name__}: a forge candidate is a torch module or "
            "an ONNX Runtime model."
        )
    if isinstance(model, Bf16Model):
        return _Plan(
            "bf16",
            lambda path, _w: _bf16_graph(model, example, path),
            torch_call(model),
            "the torch bf16 model",
            "torch.onnx export, bf16 initializers + Cast",
            ("bf16 weights on disk, fp32 compute in ONNX Runtime (no CPU bf16 GEMM kernels)",),
        )
    quantized = any(type(p.detach()) is not torch.Tensor for p in model.parameters())
    if kind == "int8-dynamic" and quantized:
        fp32 = _dequantized_copy(model)
        return _Plan(
            kind,
            lambda path, work: _int8_dynamic_graph(fp32, example, path, work),
            torch_call(model),
            "the torchao int8 model",
            "quantize_dynamic of the torchao model's dequantized weights",
            (
                "torchao int8 re-quantized for ONNX Runtime from its dequantized weights: "
                "per-channel 7-bit int8 weights and per-tensor uint8 activations (torchao: "
                "per-channel 8-bit weights, per-token activations)",
            ),
        )
    if kind == "int8-dynamic":
        return _Plan(
            kind,
            lambda path, work: _int8_dynamic_graph(model, example, path, work),
            torch_call(model),
            "the fp32 torch model",
            "quantize_dynamic of the torch model",
        )
    if kind == "int8-static":
        raise DataError(_STATIC_NEEDS_FORGE_GRAPH)
    return _Plan(
        kind,
        lambda path, _w: _export_torch(model, example, path),
        torch_call(model),
        "the torch model",
        "torch.onnx export",
    )


def _token_plan(
    model: Any, kind: str, example: Any, torch_call: Callable[[Any], Callable[[Any], Any]]
) -> _Plan:
    """The plan for a text model: int64 token-id graphs exported from the torch model."""
    import torch

    from greenforge.forge.onnx import OnnxModel

    module = model.reference if isinstance(model, OnnxModel) else model
    if not isinstance(module, torch.nn.Module):  # token_vocab found a TextClassifier
        raise DataError("a text candidate keeps no torch model to export from.")
    note = "int64 token ids (batch, tokens), both axes dynamic"
    if kind == "int8-static":
        if not isinstance(model, OnnxModel):
            raise DataError(_STATIC_NEEDS_FORGE_GRAPH)
        src = model.path
        return _Plan(
            kind,
            lambda path, _w: shutil.copyfile(src, path),
            torch_call(module),
            "the fp32 torch model",
            "forge's ONNX Runtime graph (int8-static)",
            ("the forge's calibrated graph takes the token ids as float32",),
        )
    if kind == "bf16":
        raise DataError(
            "a bf16 text model casts its token ids to bfloat16 (ids above 256 are rounded): "
            "export its fp32 parent candidate instead."
        )
    quantized = any(type(p.detach()) is not torch.Tensor for p in module.parameters())
    if kind == "int8-dynamic":
        fp32 = _dequantized_copy(module) if quantized else module
        return _Plan(
            kind,
            lambda path, work: _int8_dynamic_token_graph(fp32, example, path, work),
            torch_call(module) if quantized else torch_call(fp32),
            "the torchao int8 model" if quantized else "the fp32 torch model",
            "quantize_dynamic of the torch text model's int64 token-id graph",
            (note,),
        )
    return _Plan(
        kind,
        lambda path, _w: _export_token_ids(module, example, path),
        torch_call(module),
        "the torch model",
        "torch.onnx export (token ids)",
        (note,),
    )


def check_inputs(
    input_shape: Sequence[int],
    inputs: Any | None = None,
    rows: int = CHECK_ROWS,
    seed: int = 0,
    label: str = "test split",
) -> tuple[Any, str]:
    """``(float32 tensor, label)``: up to ``rows`` of ``inputs`` reshaped to ``input_shape``, or
    seeded N(0, 1) rows when no inputs are given (``synthetic N(0,1)``)."""
    import numpy as np
    import torch

    shape = tuple(int(d) for d in input_shape)
    if inputs is None:
        rng = np.random.default_rng(seed)
        arr = rng.standard_normal((rows, *shape)).astype(np.float32)
        return torch.from_numpy(arr), "synthetic N(0,1)"
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))[:rows]
    if x.dim() == 0 or x.shape[0] == 0:
        raise DataError("check inputs are empty: give at least one row.")
    try:
        x = x.reshape(x.shape[0], *shape)
    except RuntimeError:
        raise DataError(
            f"check inputs of shape {tuple(x.shape)} do not fit the model's input shape "
            f"{list(shape)} (per row): give rows of {math.prod(shape)} values."
        ) from None
    return x.contiguous(), label


def _hint(label: str) -> str:
    if label.startswith("synthetic"):
        return (
            "The rows were synthetic: int8 graphs are calibrated on the task's data, so check "
            "on real rows - pass --inputs X.npy (rows of the task's inputs) or run the forge "
            "with --export-onnx (checks on the test split)."
        )
    return "Check the candidate: a diverged or mis-exported model is off by far more."


def _metadata(
    info: CandidateInfo, kind: str, check: dict[str, Any], vocab: int | None = None
) -> dict[str, str]:
    from greenforge import __version__

    return {
        "greenforge_version": __version__,
        "greenforge_candidate": info.name,
        "greenforge_precision": info.precision,
        "greenforge_kind": kind,
        "greenforge_accuracy": "" if info.accuracy is None else repr(info.accuracy),
        "greenforge_forge_json_sha256": info.forge_json_sha256,
        "greenforge_input_shape": json.dumps(["batch", *info.input_shape]),
        "greenforge_num_classes": str(info.num_classes),
        "greenforge_flops": "" if info.flops is None else str(info.flops),
        "greenforge_recipe": info.recipe,
        "greenforge_check": json.dumps(check, sort_keys=True),
        "greenforge_input_dtype": "float32" if vocab is None else "int64",
        "greenforge_vocab_size": "" if vocab is None else str(vocab),
    }


def _write_metadata(path: Path, props: Mapping[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    keep = [p for p in model.metadata_props if not p.key.startswith(META_PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def read_metadata(path: Path) -> dict[str, str]:
    """The ``greenforge_*`` metadata of an ONNX file (``{key: value}``)."""
    import onnx

    if not Path(path).is_file():
        raise DataError(f"ONNX file {str(path)!r} does not exist.")
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props if p.key.startswith(META_PREFIX)}


def export_candidate(
    model: Any,
    info: CandidateInfo,
    path: Path,
    *,
    inputs: Any | None = None,
    inputs_label: str = "test split",
) -> ExportReport:
    """Exports one served model to ``path`` (ONNX with metadata) after checking it against
    torch; returns the report. Raises :class:`ExportCheckError` (nothing written) when the
    difference exceeds the kind's tolerance."""
    import numpy as np

    from greenforge.forge.onnx import OnnxModel
    from greenforge.forge.output import write_atomic

    vocab = token_vocab(model)
    if vocab is None:
        x, label = check_inputs(info.input_shape, inputs, label=inputs_label)
    else:
        text = model.reference if isinstance(model, OnnxModel) else model
        pad = int(getattr(text, "pad_token_id", 0))
        x, label = token_check_inputs(info.input_shape, vocab, pad, inputs, label=inputs_label)
    plan = _plan(model, info.precision, x)
    with tempfile.TemporaryDirectory(prefix="greenforge-edge-") as tmp:
        work = Path(tmp)
        draft = work / "draft.onnx"
        plan.make(draft, work)
        ort_out = np.asarray(OnnxModel(draft, threads=1)(x).numpy(), dtype=np.float64)
        ref = np.asarray(plan.reference(x).numpy(), dtype=np.float64)
        if ort_out.shape != ref.shape:
            raise ExportCheckError(
                f"ONNX export of {info.name!r} ({plan.kind}) returns shape {ort_out.shape}, "
                f"torch {ref.shape}: the graph is not the model."
            )
        diff = float(np.max(np.abs(ort_out - ref))) if ref.size else 0.0
        ref_max = float(np.max(np.abs(ref))) if ref.size else 0.0
        tol = TOLERANCES[plan.kind]
        allowed = tol.allowed(ref_max)
        agree = float(np.mean(ort_out.argmax(-1) == ref.argmax(-1))) if ref.size else 1.0
        if not (diff <= allowed and agree >= tol.min_top1):
            raise ExportCheckError(
                f"ONNX export of {info.name!r} ({plan.kind}) differs from {plan.reference_label} "
                f"by max abs {diff:.4g} with top-1 agreement {agree:.1%} on {x.shape[0]} {label} "
                f"rows; the {plan.kind} tolerance is {allowed:.4g} (= {tol.atol:g} + {tol.rtol:g} "
                f"x max |logit| {ref_max:.4g}: {tol.why}) and {tol.min_top1:.0%} agreement. "
                f"Nothing was written. {_hint(label)}"
            )
        check = {
            "max_abs_diff": diff,
            "allowed_abs_diff": allowed,
            "against": plan.reference_label,
            "rows": int(x.shape[0]),
            "inputs": label,
            "top1_agreement": agree,
        }
        _write_metadata(draft, _metadata(info, plan.kind, check, vocab))
        write_atomic(path, lambda tmp_path: shutil.copyfile(draft, tmp_path))
    return ExportReport(
        candidate=info.name,
        kind=plan.kind,
        precision=info.precision,
        path=path,
        size_bytes=path.stat().st_size,
        max_abs_diff=diff,
        allowed_abs_diff=allowed,
        reference_max_abs=ref_max,
        top1_agreement=agree,
        check_rows=int(x.shape[0]),
        check_inputs=label,
        source=plan.source,
        reference=plan.reference_label,
        input_shape=tuple(info.input_shape),
        num_classes=info.num_classes,
        flops=info.flops,
        accuracy=info.accuracy,
        notes=plan.notes,
        input_dtype="float32" if vocab is None else "int64",
    )


# --------------------------------------------------------------------------- forge outputs


@dataclasses.dataclass(frozen=True)
class ExportRun:
    """Every candidate exported (or refused, with the reason) into one folder."""

    out_dir: Path
    reports: tuple[ExportReport, ...]
    failures: tuple[tuple[str, str], ...]
    """``(candidate, reason)`` for candidates not exported."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "exports": [r.to_dict() for r in self.reports],
            "failures": [{"candidate": c, "error": e} for c, e in self.failures],
        }


def _plain_tensors(module: Any) -> bool:
    import torch

    return all(type(v) is torch.Tensor for v in module.state_dict().values())


def _save_reference(module: Any, path: Path, info: CandidateInfo) -> None:
    """Saves the torch weights an export was made from (safetensors), so the export can be
    repeated from the folder (``greenforge edge export DIR --candidate NAME``)."""
    from safetensors.torch import save_file

    from greenforge.forge.output import write_atomic

    state = {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}
    meta = {"greenforge_candidate": info.name, "greenforge_precision": info.precision}
    write_atomic(path, lambda tmp: save_file(state, str(tmp), metadata=meta))


def write_manifest(out_dir: Path, run: ExportRun, forge_sha: str) -> None:
    from greenforge.forge.output import write_json_atomic

    path = out_dir / MANIFEST
    old: dict[str, Any] = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8")).get("candidates", {})
        except (OSError, ValueError, AttributeError):
            old = {}
    entries = dict(old) if isinstance(old, dict) else {}
    for r in run.reports:
        entries[r.candidate] = r.to_dict()
    for name, error in run.failures:
        entries[name] = {"candidate": name, "ok": False, "error": error}
    write_json_atomic(
        path,
        {
            "schema": 1,
            "forge_json_sha256": forge_sha,
            "tolerances": {k: dataclasses.asdict(v) for k, v in TOLERANCES.items()},
            "candidates": entries,
        },
    )


def export_forge_result(result: Any, out_dir: Path | None = None) -> ExportRun:
    """Exports every candidate of a finished forge search (``ForgeResult``, models in memory)
    to ``<forge out>/edge/<candidate>.onnx``, each checked against torch, with its torch
    weights (``.safetensors``), the check inputs (``check-inputs.npy``, from the test split)
    and ``edge.json``. A candidate that fails is listed in ``failures``; the others go on."""
    from greenforge.forge.evaluate import torch_module
    from greenforge.forge.output import write_atomic

    base = Path(result.out_dir) if result.out_dir is not None else None
    if out_dir is None:
        if base is None:
            raise DataError("the forge result has no output directory: pass out_dir.")
        out_dir = base / EDGE_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    forge_json = base / "forge.json" if base is not None else None
    forge_sha = sha256_file(forge_json) if forge_json is not None and forge_json.is_file() else ""
    import numpy as np
    import torch

    data = result.data
    n = min(len(data.test), CHECK_ROWS)
    inputs = torch.stack([torch.as_tensor(data.test[i][0]).float() for i in range(n)]).numpy()
    write_atomic(out_dir / CHECK_INPUTS, lambda tmp: _save_npy(tmp, np.asarray(inputs)))
    reports: list[ExportReport] = []
    failures: list[tuple[str, str]] = []
    for r in result.results:
        c = r.candidate
        flops = None if r.quality is None else int(r.quality.flops)
        acc = _finite(r.accuracy)
        info = CandidateInfo(
            name=c.name,
            precision=c.precision,
            recipe=c.recipe,
            input_shape=tuple(data.input_shape),
            num_classes=int(data.num_classes),
            accuracy=acc,
            flops=flops,
            forge_json_sha256=forge_sha,
        )
        stem = safe_name(c.name)
        try:
            report = export_candidate(c.model, info, out_dir / f"{stem}.onnx", inputs=inputs)
            module = torch_module(c.model)
            if module is not None and _plain_tensors(module):
                _save_reference(module, out_dir / f"{stem}.safetensors", info)
            elif module is not None:
                report = dataclasses.replace(
                    report,
                    notes=(
                        *report.notes,
                        "torch weights not kept beside it (quantized tensor subclasses): "
                        "re-export from the forge run",
                    ),
                )
        except Exception as exc:  # one candidate's failure never loses the others
            failures.append((c.name, f"{type(exc).__name__}: {exc}"))
            continue
        reports.append(report)
    run = ExportRun(out_dir, tuple(reports), tuple(failures))
    write_manifest(out_dir, run, forge_sha)
    return run


def _save_npy(path: Path, arr: Any) -> None:
    import numpy as np

    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)


__all__ = [
    "CHECK_INPUTS",
    "EDGE_DIR",
    "MANIFEST",
    "METADATA_KEYS",
    "TOLERANCES",
    "CandidateInfo",
    "ExportCheckError",
    "ExportReport",
    "ExportRun",
    "Tolerance",
    "check_inputs",
    "export_candidate",
    "export_forge_result",
    "kind_of",
    "read_metadata",
    "safe_name",
    "sha256_file",
]
