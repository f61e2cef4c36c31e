"""LoRA via peft: which layers get adapters, what trains, and merging for deployment."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from greenforge.errors import ConfigError
from greenforge.forge.lora import LoraSpec, add_lora, lora_targets, merge_lora


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query = nn.Linear(8, 8)
        self.key = nn.Linear(8, 8)
        self.value = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.query(x) @ self.key(x).transpose(-1, -2), dim=-1)
        out: torch.Tensor = weights @ self.value(x)
        return out


class TinyTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Attention() for _ in range(2))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + layer(x)
        out: torch.Tensor = self.head(x.mean(dim=1))
        return out


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def test_attention_query_and_value_projections_are_the_default_targets() -> None:
    assert lora_targets(TinyTransformer(), head="head") == [
        "layers.0.query",
        "layers.0.value",
        "layers.1.query",
        "layers.1.value",
    ]


def test_a_model_without_attention_adapts_every_linear_but_the_head() -> None:
    assert lora_targets(mlp(), head="4") == ["0", "2"]


def test_explicit_targets_are_matched_as_name_suffixes() -> None:
    assert lora_targets(TinyTransformer(), head="head", targets=("key",)) == [
        "layers.0.key",
        "layers.1.key",
    ]
    with pytest.raises(ConfigError, match=r"match no Linear layer.*layers\.0\.query"):
        lora_targets(TinyTransformer(), head="head", targets=("fc1",))


def test_only_adapters_and_the_head_train() -> None:
    lora = add_lora(TinyTransformer(), LoraSpec(r=2), head="head")
    trainable = {n for n, p in lora.model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or n.endswith(("head.weight", "head.bias")) for n in trainable)
    assert sum(1 for n in trainable if "lora_A" in n) == 4
    # 4 adapters x (A: 2x8 + B: 8x2) + head 8x3 + 3
    assert lora.trainable_params == 4 * 32 + 27


def test_a_fresh_adapter_leaves_the_function_unchanged_and_merging_keeps_what_it_learned() -> None:
    model = mlp()
    x = torch.randn(6, 4)
    with torch.no_grad():
        before = model(x)
    lora = add_lora(model, LoraSpec(r=2, dropout=0.0), head="4")
    lora.model.eval()
    with torch.no_grad():
        assert torch.allclose(lora.model(x), before)  # B starts at zero
        for name, p in lora.model.named_parameters():
            if "lora_B" in name:
                p.normal_()
        adapted = lora.model(x)
    assert not torch.allclose(adapted, before)

    merged = merge_lora(lora)

    assert type(merged) is nn.Sequential
    assert [n for n, _ in merged.named_parameters()] == [n for n, _ in mlp().named_parameters()]
    assert all(p.requires_grad for p in merged.parameters())
    with torch.no_grad():
        assert torch.allclose(merged(x), adapted, atol=1e-5)


def test_merging_a_model_without_adapters_returns_it_unchanged() -> None:
    model = mlp()
    assert merge_lora(model) is model


@pytest.mark.parametrize(
    ("options", "field"), [({"r": 0}, "r"), ({"alpha": 0}, "alpha"), ({"dropout": 1.0}, "dropout")]
)
def test_bad_lora_options_name_the_field(options: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=f"LoraSpec.{field}"):
        LoraSpec.from_dict(options)
