"""Transfer recipes on the forge zoo's MLP: head-only, partial, full and LoRA from a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from torch.utils.data import TensorDataset

from greenforge.config import Settings
from greenforge.errors import ConfigError, DataError
from greenforge.forge.context import ForgeContext
from greenforge.forge.models import MLP, build_model
from greenforge.forge.recipes.base import create_recipe, recipe_names
from greenforge.forge.recipes.transfer import TransferConfig
from greenforge.forge.spec import TaskSpec
from greenforge.testing import FakeMeter

from .conftest import blobs

HIDDEN = (32, 32)


def datasets() -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    x, y = blobs(n=300, features=8, classes=3, seed=0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    return (
        TensorDataset(xt[:180], yt[:180]),
        TensorDataset(xt[180:240], yt[180:240]),
        TensorDataset(xt[240:], yt[240:]),
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLP pretrained on the same features with 5 output classes (a different head)."""
    train, _, _ = datasets()
    x, y = train.tensors
    torch.manual_seed(1)
    model = build_model("mlp", (8,), 5, hidden=HIDDEN)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    path = tmp_path_factory.mktemp("ckpt") / "pretrained.safetensors"
    save_file(model.state_dict(), str(path))
    return path


def context(pretrained: dict[str, Any] | None, **options: Any) -> ForgeContext:
    train, val, test = datasets()
    spec = TaskSpec(
        "blobs",
        target_accuracy=0.9,
        epochs=options.pop("epochs", 5),
        batch_size=32,
        lr=1e-2,
        architecture="mlp",
        architecture_options={"hidden": options.pop("hidden", HIDDEN)},
    )
    return ForgeContext(
        train,
        val,
        test,
        3,
        (8,),
        spec,
        Settings(zone="DE"),
        pretrained=pretrained,
        measure_kwargs={
            "meters": [FakeMeter(20.0)],
            "intensity_g_per_kwh": 300.0,
            "intensity_source": "static:test",
        },
    )


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def pretrained_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_the_transfer_recipes_are_registered() -> None:
    assert {
        "transfer",
        "transfer-head",
        "transfer-partial",
        "transfer-full",
        "transfer-lora",
    } <= set(recipe_names())


def test_the_config_round_trips_and_names_bad_values() -> None:
    cfg = TransferConfig(epochs=3, lr=1e-3, unfreeze_last=2, name="ft")
    assert TransferConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unfreeze_last"):
        TransferConfig(unfreeze_last=0)
    with pytest.raises(ValueError, match="unknown option"):
        create_recipe("transfer-head", epoch=3)


def test_head_only_changes_nothing_but_the_head(checkpoint: Path) -> None:
    ctx = context({"kind": "safetensors", "path": str(checkpoint)})
    [cand] = create_recipe("transfer-head", stop_at_target=False).run(ctx)
    after = weights(cand.model)
    before = pretrained_weights(checkpoint)

    for key in ("net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias"):
        assert torch.equal(after[key], before[key]), key
    assert after["net.5.weight"].shape == (3, 32)
    assert cand.config["freeze"]["trainable_params"] == 32 * 3 + 3
    assert cand.config["load"]["reinitialised"] == ["net.5.weight", "net.5.bias"]
    assert all(p.requires_grad for p in cand.model.parameters())  # a plain model again
    assert ctx.accuracy(cand.model, "test") >= 0.9
    assert cand.train is not None
    assert cand.train.energy_j > 0
    assert cand.epochs_run == 5


def test_partial_trains_the_last_block_and_keeps_the_first(checkpoint: Path) -> None:
    ctx = context({"kind": "safetensors", "path": str(checkpoint), "unfreeze_last": 1})
    [cand] = create_recipe("transfer-partial").run(ctx)
    after = weights(cand.model)
    before = pretrained_weights(checkpoint)

    assert torch.equal(after["net.1.weight"], before["net.1.weight"])
    assert not torch.equal(after["net.3.weight"], before["net.3.weight"])
    assert cand.config["freeze"]["trainable_blocks"] == ["net.3"]
    assert cand.config["lr_used"] == pytest.approx(1e-3)  # the task's lr / 10


def test_full_fine_tuning_trains_every_layer(checkpoint: Path) -> None:
    path = checkpoint.with_suffix(".pt")
    torch.save(pretrained_weights(checkpoint), path)
    ctx = context({"kind": "state_dict", "path": str(path)})
    [cand] = create_recipe("transfer-full", stop_at_target=False, epochs=2).run(ctx)
    after = weights(cand.model)
    before = pretrained_weights(checkpoint)

    assert not torch.equal(after["net.1.weight"], before["net.1.weight"])
    assert cand.config["freeze"]["trainable_params"] == cand.config["freeze"]["total_params"]
    assert cand.epochs_run == 2


def test_lora_on_an_mlp_merges_back_into_the_zoo_class(checkpoint: Path) -> None:
    ctx = context({"kind": "safetensors", "path": str(checkpoint), "strategy": "lora"})
    [cand] = create_recipe("transfer", lora_r=4).run(ctx)
    assert type(cand.model) is MLP
    assert cand.config["strategy"] == "lora"
    assert cand.config["lora"]["targets"] == 2
    assert ctx.accuracy(cand.model, "test") >= 0.9


def test_early_stopping_at_the_target_is_the_default(checkpoint: Path) -> None:
    ctx = context({"kind": "safetensors", "path": str(checkpoint)}, epochs=20)
    [cand] = create_recipe("transfer-head").run(ctx)
    assert cand.epochs_run is not None
    assert cand.epochs_run < 20
    assert any("stopped after" in n for n in cand.notes)


def test_a_checkpoint_of_another_architecture_names_the_keys(checkpoint: Path) -> None:
    ctx = context({"kind": "safetensors", "path": str(checkpoint)}, hidden=(32, 16))
    with pytest.raises(DataError) as err:
        create_recipe("transfer-head").run(ctx)
    assert "net.3.weight (checkpoint (32, 32), model (16, 32))" in str(err.value)
    assert "pretrained.safetensors" in str(err.value)


def test_a_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    ctx = context({"kind": "state_dict", "path": str(tmp_path / "gone.pt")})
    with pytest.raises(DataError, match=r"gone\.pt' does not exist"):
        create_recipe("transfer-full").run(ctx)


def test_transfer_without_a_pretrained_table_says_what_to_add() -> None:
    with pytest.raises(ConfigError, match=r"add a \[pretrained\] table"):
        create_recipe("transfer-head").run(context(None))


def test_a_bad_pretrained_table_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="strategy"):
        create_recipe("transfer").run(context({"kind": "hf", "path": "x", "strategy": "all"}))
