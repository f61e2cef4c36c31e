"""``greenforge federated --example`` (in-process, a few rounds) and ``federated show``; the
example's Dirichlet partitions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from greenforge.cli.app import main
from greenforge.errors import ConfigError
from greenforge.federated.example import ExampleConfig, dirichlet_partition
from greenforge.federated.ledger import Ledger


def test_example_writes_table_json_plots_and_ledgers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fl"
    argv = ["federated", "--example", "digits", "--clients", "16", "--per-round", "2"]
    argv += ["--rounds", "2", "--min-share", "0.1", "--backend", "inprocess", "--out", str(out)]
    assert main([*argv, "--json"]) == 0

    doc = json.loads(capsys.readouterr().out)
    assert [s["arm"] for s in doc["summaries"]] == [
        "fedavg-random",
        "carbon-aware",
        "carbon-aware+slack",
    ]
    assert doc["floor"] == 0
    for arm in doc["arms"]:
        assert len(arm["accuracy"]) == 2
        assert len(arm["cumulative_co2e_g"]) == 2
        assert arm["cumulative_co2e_g"][-1] > 0
        assert sum(arm["participation"].values()) == 2 * 2
        assert set(arm["zone_participation"]) <= set(ExampleConfig().zones())
        assert Path(arm["ledger_path"]).is_file()
        # the server's test accuracy per round is in the ledger ('report --ledger' plots it)
        central = Ledger.load(Path(arm["ledger_path"])).metric("accuracy")["central"]
        assert [r for r, _ in central] == list(range(1, len(arm["accuracy"]) + 1))
        assert [a for _, a in central] == pytest.approx(arm["accuracy"])
    assert (out / "federated.json").is_file()
    for png in ("accuracy.png", "co2e.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the newest ledger, as JSON and as tables
    assert main(["federated", "show", "--json"]) == 0
    ledger = json.loads(capsys.readouterr().out)
    assert ledger["schema"] == 1
    assert {"by_round", "by_client", "by_zone", "cumulative", "total"} <= set(ledger)
    cum = ledger["cumulative"]
    assert cum[-1]["co2e_g"] == pytest.approx(ledger["total"]["co2e_g"])
    assert all(c["low_g"] <= c["co2e_g"] <= c["high_g"] for c in cum)
    assert main(["federated", "show", ledger["id"]]) == 0
    text = capsys.readouterr().out
    for word in ("per round", "per client", "per zone", "cumulative mg", "low-high mg"):
        assert word in text


def test_cli_errors_name_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["federated"]) != 0
    assert "--example digits" in capsys.readouterr().err
    assert main(["federated", "--example", "cifar"]) != 0
    assert "unknown example 'cifar'" in capsys.readouterr().err
    assert main(["federated", "show"]) != 0
    assert "no federated ledgers yet" in capsys.readouterr().err


def test_dirichlet_partition_is_seeded_disjoint_and_skewed() -> None:
    y = np.repeat(np.arange(10), 100)
    a = dirichlet_partition(y, 16, 0.5, seed=3)
    b = dirichlet_partition(y, 16, 0.5, seed=3)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    joined = np.concatenate(a)
    assert np.array_equal(np.sort(joined), np.arange(1000))  # every sample exactly once
    assert min(len(p) for p in a) >= 8
    # label skew: some client's majority class holds far more than the 10 % of IID data
    shares = [np.bincount(y[p], minlength=10).max() / len(p) for p in a]
    assert max(shares) > 0.4
    with pytest.raises(ConfigError, match="fewer clients"):
        dirichlet_partition(y[:50], 16, 0.5, seed=0)


def test_example_config_refuses_too_few_clients() -> None:
    with pytest.raises(ConfigError, match="one per zone"):
        ExampleConfig(clients=4)
