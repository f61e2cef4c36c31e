"""Distributed runs: ranks, shared run ids, one reader per node, and a two-process run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from greenforge.config import load_settings
from greenforge.distributed import (
    RankInfo,
    device_meters_per_rank,
    meters_for_rank,
    rank_info,
    shared_run_id,
)
from greenforge.errors import ConfigError
from greenforge.report.store import RunStore
from greenforge.testing import FakeMeter


def test_a_plain_process_is_rank_zero_and_not_distributed() -> None:
    info = rank_info({})
    assert info.rank == 0
    assert not info.distributed
    assert info.part == "main"
    assert shared_run_id({}) is None


def test_torchrun_environment_is_read() -> None:
    env = {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}
    info = rank_info(env)
    assert (info.rank, info.local_rank, info.world_size, info.local_world_size) == (5, 1, 8, 4)
    assert info.launcher == "env"
    assert info.part.endswith("/rank5")


def test_slurm_environment_is_read() -> None:
    env = {
        "SLURM_PROCID": "3",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "1",
        "SLURM_NTASKS": "4",
        "SLURM_TASKS_PER_NODE": "2(x2)",
        "SLURM_JOB_ID": "777",
        "SLURM_STEP_ID": "0",
    }
    info = rank_info(env)
    assert (info.rank, info.local_rank, info.world_size, info.local_world_size) == (3, 0, 4, 2)
    assert info.launcher == "slurm"
    assert info.node.endswith(":1")
    assert shared_run_id(env) == "slurm-777.0"


def test_run_ids_are_shared_by_explicit_env_or_master_address() -> None:
    assert shared_run_id({"GREENFORGE_RUN_ID": "exp-42"}) == "exp-42"
    env = {"RANK": "0", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
    same = {"RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
    other = {"RANK": "0", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29501"}
    assert shared_run_id(env) == shared_run_id(same)
    assert shared_run_id(env) != shared_run_id(other)
    assert str(shared_run_id(env)).startswith("dist-")


def test_bad_rank_values_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match=r"'one'.*LOCAL_RANK"):
        rank_info({"LOCAL_RANK": "one"})
    with pytest.raises(ConfigError, match="GREENFORGE_RUN_ID"):
        shared_run_id({"GREENFORGE_RUN_ID": "has space"})


def test_node_meters_are_read_by_local_rank_zero_only() -> None:
    node = FakeMeter(name="model-cpu", scope="node")
    gpu = FakeMeter(name="nvidia", scope="device")
    proc = FakeMeter(name="process-cpu", scope="process")
    rank0 = RankInfo(rank=4, local_rank=0, world_size=8, local_world_size=4, launcher="env")
    rank1 = RankInfo(rank=5, local_rank=1, world_size=8, local_world_size=4, launcher="env")
    kept0, _ = meters_for_rank([node, gpu, proc], rank0, env={})
    kept1, why = meters_for_rank([node, gpu, proc], rank1, env={})
    assert kept0 == [node, gpu, proc]
    assert kept1 == [proc]
    assert any("local rank 0" in w for w in why)


def test_each_rank_reads_its_own_device_when_it_sees_exactly_one() -> None:
    gpu = FakeMeter(name="nvidia", scope="device")
    rank1 = RankInfo(rank=1, local_rank=1, world_size=2, local_world_size=2, launcher="env")
    env = {"CUDA_VISIBLE_DEVICES": "1"}
    assert device_meters_per_rank(rank1, env)
    assert meters_for_rank([gpu], rank1, env)[0] == [gpu]
    assert meters_for_rank([gpu], rank1, {"CUDA_VISIBLE_DEVICES": "0,1"})[0] == []


RANK_SCRIPT = """
import time
from greenforge.testing import StaticIntensity
from greenforge.tracker import Tracker

tracker = Tracker(zone="DE", provider=StaticIntensity(300.0), interval_s=0.05)
tracker.start()
end = time.monotonic() + 0.6
x = 0
while time.monotonic() < end:
    x += 1
record = tracker.stop()
print(record.id, record.energy_j)
"""


def test_two_ranks_on_one_node_count_the_node_once(tmp_path: Path) -> None:
    base = dict(os.environ)
    base.update(
        GREENFORGE_HOME=str(tmp_path),
        GREENFORGE_RUN_ID="two-rank-run",
        GREENFORGE_ATTRIBUTION="machine",  # node-wide meters, read by one rank per node
        WORLD_SIZE="2",
        LOCAL_WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT="29500",
    )
    base.pop("GREENFORGE_ZONE", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RANK_SCRIPT],
            env={**base, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    outputs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert {o[0] for o in outputs} == {"two-rank-run"}

    with RunStore.for_settings(load_settings(env={"GREENFORGE_HOME": str(tmp_path)})) as store:
        parts = store.parts("two-rank-run")
        run = store.get("two-rank-run")
    assert [p.owner.rank for p in parts] == [0, 1]
    rank0, rank1 = (p.record for p in parts)
    assert rank0.energy_j > 0  # real modelled meters on local rank 0
    assert rank1.components == ()  # local rank 1 read no node-wide meter
    assert run.energy_j == pytest.approx(rank0.energy_j)
    assert run.status == "completed"
    assert run.metadata["parts"] == 2
    assert any("read by local rank 0" in m for m in rank1.meters)


def test_embodied_emissions_are_reported_once_per_node_even_with_process_meters(
    tmp_path: Path,
) -> None:
    # Under process attribution every rank keeps all its (process-scoped) meters; the machine's
    # embodied share must still come from local rank 0 only, or N ranks count it N times.
    import dataclasses

    from greenforge.testing import StaticIntensity
    from greenforge.tracker import Tracker

    settings = dataclasses.replace(
        load_settings(env={}, home=tmp_path, interval_s=0.02), embodied_kg=1000.0
    )
    embodied = []
    for local_rank in (0, 1):
        env = {
            "RANK": str(local_rank),
            "LOCAL_RANK": str(local_rank),
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2",
        }
        tracker = Tracker(
            settings,
            zone="DE",
            meters=[FakeMeter(name="model-cpu", scope="process")],
            provider=StaticIntensity(300.0),
            persist=False,
            env=env,
        )
        tracker.start()
        record = tracker.stop()
        assert record.components  # every rank measured its own process tree
        embodied.append(record.embodied)
    assert embodied[0] is not None
    assert embodied[1] is None
