"""Pretrained starting points: safe checkpoint loading, fitting checks, and what trains."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import nn

from greenforge.errors import ConfigError, DataError, MissingExtraError
from greenforge.forge.pretrained import (
    PretrainedSpec,
    check_hf_dir,
    find_blocks,
    find_head,
    freeze_,
    load_pretrained,
    load_state_dict_file,
    load_timm,
    load_weights_,
    pretrained_spec,
    trainable_parameters,
    unfreeze_,
)


def mlp(classes: int = 3, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, classes)
    )


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Conv2d(4, 4, 3),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(self.features(x))
        return out


class Encoder(nn.Module):
    """Shaped like a transformer: embedding, a list of repeated blocks, a final norm, a head."""

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)) for _ in range(3)
        )
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        out: torch.Tensor = self.head(self.norm(h))
        return out


# --------------------------------------------------------------------------- the spec


def test_a_spec_round_trips_through_json() -> None:
    spec = PretrainedSpec(kind="hf", path="/models/minilm", strategy="lora", lora_r=4)
    assert PretrainedSpec.from_json(spec.to_json()) == spec


@given(
    kind=st.sampled_from(["hf", "safetensors", "state_dict"]),
    strategy=st.sampled_from(["head", "partial", "full", "lora"]),
    unfreeze_last=st.integers(1, 50),
    lora_r=st.integers(1, 64),
    targets=st.lists(st.sampled_from(["query", "value", "fc1"]), max_size=3),
)
def test_every_valid_spec_round_trips(
    kind: Any, strategy: Any, unfreeze_last: int, lora_r: int, targets: list[str]
) -> None:
    spec = PretrainedSpec(
        kind=kind,
        path="w.bin",
        strategy=strategy,
        unfreeze_last=unfreeze_last,
        lora_r=lora_r,
        lora_targets=tuple(targets),
    )
    assert pretrained_spec(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"kind": "onnx", "path": "w"}, "kind"),
        ({"kind": "hf", "path": "d", "strategy": "everything"}, "strategy"),
        ({"kind": "hf", "path": ""}, "path"),
        ({"kind": "hf", "path": "d", "unfreeze_last": 0}, "unfreeze_last"),
        ({"kind": "timm", "path": "w.pth"}, "timm_model"),
        ({"kind": "hf", "path": "d", "lora_rank": 8}, "lora_rank"),
    ],
)
def test_a_bad_pretrained_table_raises_a_config_error_naming_the_field(
    table: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        pretrained_spec(table)


def test_a_relative_path_is_resolved_against_the_task_folder(tmp_path: Path) -> None:
    spec = PretrainedSpec(kind="state_dict", path="weights/base.pt")
    assert spec.resolved(tmp_path).path == str(tmp_path / "weights" / "base.pt")


# --------------------------------------------------------------------------- safe file loading


def test_safetensors_weights_round_trip(tmp_path: Path) -> None:
    trained = mlp(seed=1)
    path = tmp_path / "base.safetensors"
    save_file(trained.state_dict(), str(path))
    fresh = mlp(seed=2)

    report = load_weights_(fresh, load_state_dict_file(path), source=str(path))

    x = torch.randn(5, 8)
    assert torch.equal(fresh(x), trained(x))
    assert report.reinitialised == ()
    assert len(report.loaded) == 6


def test_torch_state_dict_files_round_trip_and_common_wrappers_are_unwrapped(
    tmp_path: Path,
) -> None:
    trained = mlp(seed=1)
    plain, wrapped, ddp = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"
    torch.save(trained.state_dict(), plain)
    torch.save({"state_dict": trained.state_dict(), "epoch": 3}, wrapped)
    torch.save({f"module.{k}": v for k, v in trained.state_dict().items()}, ddp)
    x = torch.randn(4, 8)
    for path in (plain, wrapped, ddp):
        fresh = mlp(seed=2)
        load_weights_(fresh, load_state_dict_file(path))
        assert torch.equal(fresh(x), trained(x)), path.name


class Payload:
    """Unpickling this would create a marker file: weights_only must refuse before that."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_a_pickle_holding_a_non_tensor_object_is_refused_and_never_executed(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": Payload(marker)}, path)

    with pytest.raises(DataError, match="weights_only=True") as err:
        load_state_dict_file(path)

    assert not marker.exists()
    assert "evil.pt" in str(err.value)


def test_a_file_of_non_tensor_values_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "meta.pt"
    torch.save({"weight": torch.zeros(2), "lr": 0.1}, path)
    with pytest.raises(DataError, match="'lr'"):
        load_state_dict_file(path)


@pytest.mark.parametrize("name", ["missing.pt", "missing.safetensors"])
def test_a_missing_checkpoint_file_is_a_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match=r"does not exist.*\[pretrained\] path"):
        load_state_dict_file(tmp_path / name)


def test_a_directory_given_as_a_checkpoint_file_points_to_kind_hf(tmp_path: Path) -> None:
    with pytest.raises(DataError, match='kind = "hf"'):
        load_state_dict_file(tmp_path)


@pytest.mark.parametrize("name", ["junk.pt", "junk.safetensors"])
def test_a_corrupt_checkpoint_is_a_data_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(DataError, match="junk"):
        load_state_dict_file(path)


# --------------------------------------------------------------------------- fitting the model


def test_missing_and_unexpected_keys_are_named() -> None:
    state = mlp().state_dict()
    state.pop("2.weight")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(DataError) as err:
        load_weights_(mlp(), state, source="base.pt")
    message = str(err.value)
    assert "missing from the checkpoint: '2.weight'" in message
    assert "unexpected in the checkpoint: 'extra.weight'" in message
    assert "base.pt" in message
    assert "architecture" in message


def test_shape_mismatches_are_named_with_both_shapes() -> None:
    state = mlp().state_dict()
    state["2.weight"] = torch.zeros(16, 12)
    with pytest.raises(DataError, match=r"2\.weight \(checkpoint \(16, 12\), model \(16, 16\)\)"):
        load_weights_(mlp(), state)


def test_a_head_for_other_classes_is_reinitialised_and_reported() -> None:
    source = mlp(classes=10, seed=1)
    target = mlp(classes=3, seed=2)
    fresh_head = target.get_parameter("4.weight").detach().clone()

    report = load_weights_(target, source.state_dict())

    assert report.reinitialised == ("4.weight", "4.bias")
    assert set(report.ignored) == {"4.weight", "4.bias"}
    assert torch.equal(target.get_parameter("0.weight"), source.get_parameter("0.weight"))
    assert torch.equal(target.get_parameter("4.weight"), fresh_head)


# --------------------------------------------------------------------------- structure and freezing


def test_heads_and_blocks_are_found_in_common_shapes() -> None:
    assert find_head(mlp()) == "4"
    assert find_blocks(mlp()) == [["0"], ["2"]]
    assert find_head(SmallCNN()) == "fc"
    assert find_blocks(SmallCNN()) == [["features.0", "features.1"], ["features.3", "features.4"]]
    assert find_head(Encoder()) == "head"
    assert find_blocks(Encoder()) == [["embed"], ["blocks.0"], ["blocks.1"], ["blocks.2", "norm"]]


def test_head_only_trains_nothing_but_the_head() -> None:
    model = Encoder()
    report = freeze_(model, "head")
    assert report.trainable_names == ("head.weight", "head.bias")
    assert trainable_parameters(model) == [model.head.weight, model.head.bias]
    assert report.trainable_params == 8 * 2 + 2


def test_partial_trains_the_head_and_the_last_k_blocks() -> None:
    model = Encoder()
    report = freeze_(model, "partial", unfreeze_last=2)
    assert report.trainable_blocks == ("blocks.1", "blocks.2", "norm")
    on = {n for n, p in model.named_parameters() if p.requires_grad}
    assert on == {
        n for n, _ in model.named_parameters() if n.startswith(("blocks.1", "blocks.2", "norm"))
    } | {"head.weight", "head.bias"}
    assert not model.embed.weight.requires_grad
    assert not any(p.requires_grad for p in model.blocks[0].parameters())


@given(depth=st.integers(1, 6), k=st.integers(1, 6))
def test_partial_trains_exactly_the_last_k_hidden_layers_and_the_head(depth: int, k: int) -> None:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(4, 4), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(4, 2))
    if k > depth:
        with pytest.raises(ConfigError, match=f"only {depth} blocks"):
            freeze_(model, "partial", unfreeze_last=k)
        return

    report = freeze_(model, "partial", unfreeze_last=k)

    trained = [i for i in range(0, 2 * depth, 2) if model[i].weight.requires_grad]
    assert trained == list(range(2 * (depth - k), 2 * depth, 2))
    assert report.trainable_params == k * 20 + 10
    assert report.total_params == depth * 20 + 10


def test_full_trains_everything_and_unfreeze_restores_a_plain_model() -> None:
    model = Encoder()
    assert freeze_(model, "full").trainable_fraction == 1.0
    report = freeze_(model, "head")
    unfreeze_(model, report)
    assert all(p.requires_grad for p in model.parameters())


def test_unfreezing_more_blocks_than_exist_lists_the_blocks() -> None:
    with pytest.raises(
        ConfigError, match=r"only 4 blocks \(embed, blocks.0, .*strategy = \"full\""
    ):
        freeze_(Encoder(), "partial", unfreeze_last=5)


def test_an_unknown_head_name_lists_the_layers() -> None:
    with pytest.raises(ConfigError, match=r"no module named 'classifier'.*'embed'"):
        freeze_(Encoder(), "head", head="classifier")


def test_frozen_batchnorm_keeps_its_pretrained_statistics_while_the_head_trains() -> None:
    model = SmallCNN()
    before = model.get_buffer("features.1.running_mean").clone()
    report = freeze_(model, "head")
    model.train()
    model(torch.randn(8, 1, 6, 6) * 5 + 3)
    assert torch.equal(model.get_buffer("features.1.running_mean"), before)

    unfreeze_(model, report)
    model.train()
    model(torch.randn(8, 1, 6, 6) * 5 + 3)
    assert not torch.equal(model.get_buffer("features.1.running_mean"), before)


def test_a_frozen_backbone_computes_fixed_features_while_the_head_trains() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 16), nn.Dropout(0.5), nn.Linear(16, 2)
    )
    x = torch.randn(8, 4)
    model.train()
    assert not torch.equal(model(x), model(x))  # dropout is active in a plain model

    report = freeze_(model, "head")
    model.train()
    assert torch.equal(model(x), model(x))
    assert model[4].training  # the head itself still trains

    unfreeze_(model, report)
    model.train()
    assert not torch.equal(model(x), model(x))

    freeze_(model, "partial", unfreeze_last=1)  # dropout after the trained block stays on
    model.train()
    model(x)
    assert not model[1].training
    assert model[3].training


# --------------------------------------------------------------------------- one entry point


def test_load_pretrained_loads_a_state_dict_into_the_task_architecture(tmp_path: Path) -> None:
    path = tmp_path / "base.pt"
    torch.save(mlp(classes=10, seed=1).state_dict(), path)
    loaded = load_pretrained(
        {"kind": "state_dict", "path": str(path)}, num_classes=3, build_model=lambda: mlp(3)
    )
    assert loaded.head == "4"
    assert loaded.report.reinitialised == ("4.weight", "4.bias")
    assert loaded.report.source == f"state_dict:{path}"


def test_file_checkpoints_need_a_model_builder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="architecture"):
        load_pretrained(
            {"kind": "safetensors", "path": str(tmp_path / "w.safetensors")}, num_classes=2
        )


def test_a_hugging_face_directory_missing_files_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DataError, match=r"lacks model\.safetensors.*tokenizer"):
        check_hf_dir(tmp_path)
    with pytest.raises(DataError, match="never downloads"):
        check_hf_dir(tmp_path / "absent")


def test_timm_checkpoints_need_timm_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'greenforge\[timm\]'"):
        load_timm("resnet18", tmp_path / "w.pth", 3)


class StandInTimm:
    """timm's API as GreenForge uses it (timm cannot be installed beside the CPU torch 2.13 wheel
    here: its torchvision dependency only comes as a CUDA build). Records every call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def create_model(
        self,
        name: str,
        pretrained: bool = False,
        num_classes: int = 1000,
        checkpoint_path: str = "",
    ) -> nn.Module:
        self.calls.append(
            {
                "name": name,
                "pretrained": pretrained,
                "num_classes": num_classes,
                "path": checkpoint_path,
            }
        )
        model = TimmLike(num_classes)
        if checkpoint_path:
            model.load_state_dict(load_state_dict_file(checkpoint_path))
        return model


class TimmLike(SmallCNN):
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(4, num_classes)


def test_timm_loading_checks_the_file_safely_then_uses_create_model_and_resets_the_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timm = StandInTimm()
    monkeypatch.setitem(sys.modules, "timm", timm)
    source = TimmLike(7)
    path = tmp_path / "net.pth"
    torch.save(source.state_dict(), path)

    model, report = load_timm("tiny", path, 3)

    assert timm.calls[-1] == {
        "name": "tiny",
        "pretrained": False,
        "num_classes": 7,
        "path": str(path),
    }
    assert model.get_parameter("fc.weight").shape[0] == 3
    assert torch.equal(
        model.get_parameter("features.0.weight"), source.get_parameter("features.0.weight")
    )
    assert report.ignored == ("fc.bias", "fc.weight")


def test_an_unsafe_timm_checkpoint_is_refused_before_timm_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timm = StandInTimm()
    monkeypatch.setitem(sys.modules, "timm", timm)
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(2, 4), "x": Payload(marker)}, path)

    with pytest.raises(DataError, match="weights_only=True"):
        load_timm("tiny", path, 3)

    assert not marker.exists()
    assert all(not c["path"] for c in timm.calls)
