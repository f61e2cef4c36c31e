"""ONNX export and an ONNX Runtime model that behaves like a torch classifier."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from greenforge.errors import DataError

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export(model: nn.Module, example_inputs: torch.Tensor, path: Path) -> Path:
    """Export ``model`` to ONNX with a dynamic batch dimension; returns ``path`` (the
    TorchScript exporter, falling back to the torch.export-based one for graphs it cannot
    handle)."""
    model = model.eval()
    example = example_inputs[:2].float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)

        def export_with(**options: Any) -> None:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                **options,
            )

        try:  # the TorchScript exporter: ~10x faster for the MLP/CNN graphs of the zoo
            export_with(
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                dynamo=False,
            )
        except Exception:  # graphs it cannot handle: the torch.export-based exporter
            export_with(
                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                dynamo=True,
                verbose=False,
                report=False,
                external_data=False,
            )
    return path


class OnnxModel:
    """Callable like a torch classifier: float32 tensor in, logits tensor out (ONNX Runtime)."""

    def __init__(
        self,
        path: Path,
        precision: str = "fp32",
        reference: nn.Module | None = None,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        if not Path(path).is_file():
            raise DataError(f"ONNX model {str(path)!r} does not exist.")
        self.path = Path(path)
        self.precision = precision
        self.reference = reference
        """The torch model this was converted from (parameters and MACs are counted on it)."""
        self.threads = threads
        if threads is not None:
            from greenforge.forge.protocol import ort_session_options

            opts = ort_session_options(threads)
        else:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(self.path), opts, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.token_ids = self.session.get_inputs()[0].type == "tensor(int64)"
        """Whether the graph takes int64 token ids (a text model's export) instead of float32."""

    def with_threads(self, threads: int) -> OnnxModel:
        """The same model file in a session with ``threads`` intra-op threads and one
        inter-op thread (the serving spec's), without spinning workers."""
        return OnnxModel(self.path, self.precision, self.reference, threads=threads)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        t = x.detach()
        arr = np.ascontiguousarray((t.long() if self.token_ids else t.float()).numpy())
        out: Any = self.session.run(None, {self.input_name: arr})[0]
        return torch.from_numpy(np.asarray(out))

    def predict_numpy(self, x: np.ndarray[Any, Any]) -> Any:
        return self.session.run(None, {self.input_name: x})[0]

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "precision": self.precision,
            "reference": self.reference,
            "threads": self.threads,
            "bytes": self.path.read_bytes(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        path = Path(state["path"])
        if not path.is_file():
            import tempfile

            path = Path(tempfile.mkdtemp(prefix="greenforge-onnx-")) / path.name
            path.write_bytes(state["bytes"])
        self.__init__(  # type: ignore[misc]
            path, state["precision"], state["reference"], state.get("threads")
        )


def load_tooling() -> None:
    """Import ONNX and ONNX Runtime's quantization tools and run one tiny export into a
    session: their one-off start-up (about 0.7 CPU s, mostly ``import onnx``), so that it can be
    measured as the search's own step rather than billed to the first conversion."""
    import tempfile

    import onnx  # noqa: F401
    import onnxruntime.quantization  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="greenforge-onnx-") as tmp:
        export_fp32(nn.Linear(2, 2), torch.zeros(2, 2), Path(tmp) / "tooling.onnx")


def export_fp32(model: nn.Module, example_inputs: torch.Tensor, path: Path) -> OnnxModel:
    """``model`` exported to ONNX (fp32) as an :class:`OnnxModel` whose ``reference`` is it."""
    export(model, example_inputs, path)
    return OnnxModel(path, precision="fp32", reference=model)
