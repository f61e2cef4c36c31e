"""Forge candidates read back from a forge output directory, ready to export.

A forge directory holds the chosen model (``model.safetensors`` + ``model.json``, and
``model.onnx`` when it runs in ONNX Runtime); ``greenforge forge --export-onnx`` adds every
candidate's torch weights and ONNX graph under ``edge/``. :func:`load_candidate` rebuilds the
torch module from the weights (the zoo architectures from the tensor shapes - distilled and
pruned students have their own widths - a ``pkg.module:function`` factory from the task's
options) and wraps ONNX Runtime candidates (int8, ``+onnx``) around their stored graph.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from greenforge.edge.export import (
    CHECK_INPUTS,
    CHECK_ROWS,
    EDGE_DIR,
    CandidateInfo,
    ExportReport,
    ExportRun,
    export_candidate,
    safe_name,
    sha256_file,
    write_manifest,
)
from greenforge.errors import ConfigError, DataError


@dataclasses.dataclass(frozen=True)
class ForgeDir:
    """A forge output directory's ``forge.json``, read once."""

    path: Path
    doc: dict[str, Any]
    sha256: str

    @property
    def chosen(self) -> str | None:
        value = self.doc.get("chosen")
        return value if isinstance(value, str) else None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.doc.get("data", {}).get("input_shape", []))

    @property
    def num_classes(self) -> int:
        return int(self.doc.get("data", {}).get("num_classes", 0))

    def names(self) -> list[str]:
        return [str(c.get("name")) for c in self.doc.get("candidates", [])]

    def entry(self, name: str) -> dict[str, Any]:
        for c in self.doc.get("candidates", []):
            if c.get("name") == name:
                return dict(c)
        import difflib

        close = difflib.get_close_matches(name, self.names(), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(
            f"forge directory {str(self.path)!r} has no candidate {name!r}.{hint} Candidates: "
            f"{', '.join(self.names())}."
        )

    def info(self, name: str) -> CandidateInfo:
        e = self.entry(name)
        acc = e.get("accuracy")
        flops = e.get("flops")
        return CandidateInfo(
            name=name,
            precision=str(e.get("precision", "fp32")),
            recipe=str(e.get("recipe", "")),
            input_shape=self.input_shape,
            num_classes=self.num_classes,
            accuracy=float(acc) if isinstance(acc, (int, float)) else None,
            flops=int(flops) if isinstance(flops, (int, float)) else None,
            forge_json_sha256=self.sha256,
        )


def read_forge_dir(path: Path) -> ForgeDir:
    """Reads ``forge.json`` of a forge output directory; a clear error when it is not one."""
    path = Path(path)
    fj = path / "forge.json"
    if not fj.is_file():
        raise DataError(
            f"{str(path)!r} is not a forge output directory (no forge.json): run "
            "`greenforge forge ... --out DIR` first."
        )
    try:
        doc = json.loads(fj.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {fj}: {exc}.") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("candidates"), list):
        raise DataError(f"{fj} has no candidates list: not a forge.json.")
    if not doc.get("data", {}).get("input_shape"):
        raise DataError(f"{fj} does not record the input shape (data.input_shape).")
    return ForgeDir(path, doc, sha256_file(fj))


def candidate_names(fd: ForgeDir, candidates: Sequence[str]) -> list[str]:
    """The candidates asked for, each checked to exist; none asked: the chosen model."""
    names = list(candidates)
    if not names:
        if fd.chosen is None:
            raise ConfigError(
                f"{str(fd.path)!r} chose no model: name one with --candidate "
                f"({', '.join(fd.names())})."
            )
        names = [fd.chosen]
    for n in names:
        fd.entry(n)  # a clear error for an unknown name
    return names


# --------------------------------------------------------------------------- rebuilding


def _layer_indices(state: Mapping[str, Any], prefix: str) -> list[int]:
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.weight$")
    return sorted({int(m.group(1)) for k in state if (m := pattern.match(k))})


def _find_option(config: Any, key: str) -> Any:
    if isinstance(config, Mapping):
        if key in config:
            return config[key]
        for value in config.values():
            found = _find_option(value, key)
            if found is not None:
                return found
    elif isinstance(config, (list, tuple)):
        for value in config:
            found = _find_option(value, key)
            if found is not None:
                return found
    return None


def _zoo_module(
    state: Mapping[str, Any],
    input_shape: Sequence[int],
    num_classes: int,
    options: Mapping[str, Any],
) -> Any:
    """A zoo module (``mlp``, ``cnn``, ``transformer``) shaped like ``state``, or ``None``."""
    from greenforge.forge.models import CNN, MLP, TinyTransformer

    keys = set(state)
    shape = tuple(int(d) for d in input_shape)
    if keys and all(k.startswith("net.") for k in keys):
        idx = _layer_indices(state, "net")
        hidden = [int(state[f"net.{i}.weight"].shape[0]) for i in idx[:-1]]
        model = MLP(shape, num_classes, hidden=hidden)
        if set(model.state_dict()) != keys:  # trained with dropout: Dropout layers shift indices
            model = MLP(shape, num_classes, hidden=hidden, dropout=0.5)
        return model
    if "embed.weight" in keys and any(k.startswith("encoder.layers.") for k in keys):
        d_model = int(state["embed.weight"].shape[0])
        ff = int(state["encoder.layers.0.linear1.weight"].shape[0])
        layers = len({k.split(".")[2] for k in keys if k.startswith("encoder.layers.")})
        heads = options.get("heads", 4)
        return TinyTransformer(
            shape, num_classes, d_model=d_model, heads=int(heads), layers=layers, ff=ff
        )
    if any(k.startswith("features.") for k in keys) and "head.1.weight" in keys:
        convs = [
            i
            for i in _layer_indices(state, "features")
            if len(state[f"features.{i}.weight"].shape) == 4
        ]
        channels = [int(state[f"features.{i}.weight"].shape[0]) for i in convs]
        return CNN(
            shape, num_classes, channels=channels, hidden=int(state["head.1.weight"].shape[0])
        )
    return None


def rebuild_module(
    state: Mapping[str, Any],
    *,
    architecture: str,
    options: Mapping[str, Any],
    input_shape: Sequence[int],
    num_classes: int,
) -> Any:
    """A torch module with ``state`` loaded: the zoo architectures rebuilt from the tensor
    shapes, a ``bf16`` wrapper (``inner.*`` tensors) around its inner model, else the task's
    ``architecture`` built with ``options``. Raises DataError when the weights do not fit."""
    import torch

    from greenforge.forge.compress import Bf16Model
    from greenforge.forge.models import build_model

    if state and all(k.startswith("inner.") for k in state):
        inner_state = {k[len("inner.") :]: v.float() for k, v in state.items()}
        inner = rebuild_module(
            inner_state,
            architecture=architecture,
            options=options,
            input_shape=input_shape,
            num_classes=num_classes,
        )
        return Bf16Model(inner).eval()
    model = _zoo_module(state, input_shape, num_classes, options)
    if model is None:
        model = build_model(architecture, input_shape, num_classes, **dict(options))
    try:
        model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DataError(
            f"the stored weights do not fit a {type(model).__name__} rebuilt for "
            f"{architecture!r} ({first}); re-run the forge with --export-onnx, which exports "
            "from the models in memory."
        ) from None
    return model.eval()


@dataclasses.dataclass(frozen=True)
class LoadedCandidate:
    """A candidate read back from a directory: its served model and metadata."""

    info: CandidateInfo
    model: Any
    weights: Path
    onnx: Path | None


def _sources(fd: ForgeDir, name: str, runtime: str) -> tuple[Path, Path | None]:
    stem = safe_name(name)
    edge = fd.path / EDGE_DIR
    weights = edge / f"{stem}.safetensors"
    graph: Path | None = edge / f"{stem}.onnx"
    if not weights.is_file() and name == fd.chosen:
        weights = fd.path / "model.safetensors"
        graph = fd.path / "model.onnx"
    if not weights.is_file():
        where = f"only the chosen model ({fd.chosen})" if fd.chosen else "no model"
        raise DataError(
            f"{str(fd.path)!r} keeps {where}'s weights, not {name!r}'s: re-run the forge with "
            "--export-onnx to export every candidate, or export the chosen one."
        )
    if runtime != "onnxruntime":
        return weights, None
    if graph is None or not graph.is_file():
        raise DataError(
            f"{name!r} runs in ONNX Runtime but its graph ({graph}) is missing: re-run the forge "
            "with --export-onnx."
        )
    return weights, graph


def load_candidate(fd: ForgeDir, name: str) -> LoadedCandidate:
    """Rebuilds candidate ``name`` of a forge directory (see the module docstring)."""
    from safetensors.torch import load_file

    from greenforge.forge.onnx import OnnxModel

    entry = fd.entry(name)
    runtime = str(entry.get("runtime", "torch"))
    weights, graph = _sources(fd, name, runtime)
    try:
        state = load_file(str(weights))
    except Exception as exc:
        raise DataError(f"cannot read the weights {weights}: {exc}.") from None
    task = fd.doc.get("task", {})
    options = dict(task.get("architecture_options") or {})
    heads = _find_option(entry.get("config"), "heads")
    if heads is not None:
        options["heads"] = heads
    module = rebuild_module(
        state,
        architecture=str(task.get("architecture", "mlp")),
        options=options,
        input_shape=fd.input_shape,
        num_classes=fd.num_classes,
    )
    info = fd.info(name)
    model: Any = module
    if graph is not None:
        model = OnnxModel(graph, precision=info.precision, reference=module, threads=1)
    return LoadedCandidate(info, model, weights, graph)


def _example_inputs(fd: ForgeDir) -> Any:
    """The test split of a bundled example (``--example digits``/``mnist5k``), or ``None``."""
    from greenforge.forge.datasets import EXAMPLES, load_example

    data = fd.doc.get("data", {})
    name = data.get("name")
    if name not in EXAMPLES:
        return None
    seed = int(fd.doc.get("task", {}).get("seed", 0))
    try:
        task_data = load_example(str(name), seed=seed)
    except Exception:  # the example's own data is not installed: fall back to synthetic rows
        return None
    if task_data.source != data.get("source"):
        return None
    import numpy as np

    test = task_data.test
    n = min(len(test), CHECK_ROWS)  # type: ignore[arg-type]
    return np.stack([np.asarray(test[i][0], dtype=np.float32) for i in range(n)])


def check_inputs_for(fd: ForgeDir, inputs: Path | None = None) -> tuple[Any, str]:
    """``(rows, label)`` to check exports on: ``inputs`` (.npy), else ``edge/check-inputs.npy``
    (the test split, written by ``--export-onnx``), else a bundled example's test split, else
    ``(None, "synthetic N(0,1)")``."""
    import numpy as np

    path = inputs if inputs is not None else fd.path / EDGE_DIR / CHECK_INPUTS
    label = f"given ({path.name})" if inputs is not None else "test split"
    if not path.is_file():
        if inputs is not None:
            raise DataError(f"check inputs {str(inputs)!r} do not exist.")
        rows = _example_inputs(fd)
        return (rows, "test split") if rows is not None else (None, "synthetic N(0,1)")
    try:
        return np.load(path, allow_pickle=False), label
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read check inputs {path} (a .npy array): {exc}.") from None


def export_dir(
    forge_dir: Path,
    candidates: Sequence[str] | None = None,
    *,
    out_dir: Path | None = None,
    inputs: Path | None = None,
) -> ExportRun:
    """Exports candidates of a forge output directory (default: the chosen one; ``["all"]``:
    every candidate whose weights the directory keeps) to ``out_dir`` (default
    ``<forge_dir>/edge``), each checked against torch. Check inputs: ``inputs`` (.npy), else
    ``edge/check-inputs.npy``, else seeded synthetic rows (said so in each report)."""
    fd = read_forge_dir(forge_dir)
    strict = list(candidates or []) != ["all"]
    names = candidate_names(fd, candidates or []) if strict else fd.names()
    out = out_dir if out_dir is not None else fd.path / EDGE_DIR
    out.mkdir(parents=True, exist_ok=True)
    x, label = check_inputs_for(fd, inputs)
    reports: list[ExportReport] = []
    failures: list[tuple[str, str]] = []
    for name in names:
        try:
            loaded = load_candidate(fd, name)
        except DataError as exc:
            if strict:
                raise
            failures.append((name, str(exc)))
            continue
        path = out / f"{safe_name(name)}.onnx"
        if strict:
            reports.append(
                export_candidate(loaded.model, loaded.info, path, inputs=x, inputs_label=label)
            )
            continue
        try:
            reports.append(
                export_candidate(loaded.model, loaded.info, path, inputs=x, inputs_label=label)
            )
        except DataError as exc:
            failures.append((name, str(exc)))
    run = ExportRun(out, tuple(reports), tuple(failures))
    write_manifest(out, run, fd.sha256)
    return run


__all__ = [
    "ForgeDir",
    "LoadedCandidate",
    "candidate_names",
    "check_inputs_for",
    "export_dir",
    "load_candidate",
    "read_forge_dir",
    "rebuild_module",
]
