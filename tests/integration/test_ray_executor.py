"""The Ray executor on a real local Ray cluster whose node is labelled with two zones.

One Ray start for the whole module (:func:`greenforge.ray_local.init_ray`: 127.0.0.1, no
dashboard).
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenforge.config import load_settings
from greenforge.errors import ConfigError
from greenforge.ray_local import init_ray
from greenforge.report.store import RunStore
from greenforge.schedule.executors.base import METADATA_KEY, SlotSpec
from greenforge.schedule.executors.ray import RayExecutor, zone_resource, zones_of
from greenforge.schedule.queue import JobQueue, PlannedSlot, PlanSummary
from greenforge.schedule.runner import Scheduler

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.integration

WHERE_AM_I = textwrap.dedent(
    """
    import os, psutil
    worker = psutil.Process().parent().parent()   # command <- supervisor <- Ray worker
    open("where.txt", "w").write(" ".join(worker.cmdline()))
    """
)

MIGRATING_JOB = textwrap.dedent(
    """
    import json, os, signal, sys, time
    state = os.path.join(os.environ["GREENFORGE_CHECKPOINT_DIR"], "state.json")
    paused = []
    signal.signal(signal.SIGTERM, lambda *_: paused.append(True))
    resume = os.environ["GREENFORGE_RESUME"] == "1" and os.path.exists(state)
    count = json.load(open(state))["count"] if resume else 0
    with open("zones.txt", "a") as log:
        log.write(f"{os.environ['GREENFORGE_ZONE']} {count}\\n")
    while count < 80:
        time.sleep(0.1 if os.environ['GREENFORGE_RESUME'] == '0' else 0.01)
        count += 1
        if paused:
            json.dump({"count": count}, open(state, "w"))
            sys.exit(99)
    """
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    # as the executor starts it: on 127.0.0.1 only, no dashboard
    init_ray(
        num_cpus=2,
        resources={zone_resource("GB"): 1, zone_resource("DE"): 1},
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def _spec(tmp_path: Path, zone: str, argv: tuple[str, ...]) -> SlotSpec:
    return SlotSpec(
        job_id=1,
        name="ray-job",
        argv=argv,
        cwd=str(tmp_path),
        slot_index=0,
        n_slots=1,
        start_s=time.time(),
        end_s=None,
        zone=zone,
        checkpoint_dir=str(tmp_path / "ckpt"),
        resume=False,
        metadata={"saving_pct": 7.0},
    )


def test_zones_are_read_from_the_cluster_resources() -> None:
    assert zones_of({"CPU": 2.0, "zone:GB": 1.0, "zone:DE": 1.0}) == ["DE", "GB"]


def test_a_slot_runs_as_a_ray_task_on_a_node_of_its_zone_and_is_measured(
    cluster: None, tmp_path: Path
) -> None:
    settings = load_settings(zone="GB")
    executor = RayExecutor(settings)
    (tmp_path / "where.py").write_text(WHERE_AM_I, encoding="utf-8")

    outcome = executor.run_slot(_spec(tmp_path, "DE", (sys.executable, "where.py")))

    assert outcome.exit_code == 0, outcome.message
    assert "ray::" in (tmp_path / "where.txt").read_text()
    assert outcome.external_id
    assert outcome.run_id is not None
    with RunStore.for_settings(settings) as store:
        record = store.get(outcome.run_id)
    assert record.metadata[METADATA_KEY]["zone"] == "DE"
    assert record.metadata[METADATA_KEY]["saving_pct"] == 7.0
    assert record.emissions is not None
    assert record.emissions.intensity.zone == "DE"


def test_a_zone_no_node_offers_is_refused_with_the_zones_there_are(
    cluster: None, tmp_path: Path
) -> None:
    executor = RayExecutor(load_settings(zone="GB"))
    with pytest.raises(ConfigError, match=r"zone 'FR'.*DE, GB"):
        executor.run_slot(_spec(tmp_path, "FR", ("true",)))


def test_an_interruptible_job_pauses_in_one_zone_and_resumes_in_another(
    cluster: None, tmp_path: Path
) -> None:
    settings = load_settings(zone="GB")
    queue = JobQueue.for_home(settings.resolved_home())
    (tmp_path / "job.py").write_text(MIGRATING_JOB, encoding="utf-8")
    now = time.time()
    job = queue.enqueue(
        name="migrating",
        argv=[sys.executable, "job.py"],
        cwd=tmp_path,
        executor="ray",
        job={"duration_s": 4.0, "interruptible": True},
        plan=PlanSummary(
            slots=(PlannedSlot(now, now + 6, "GB"), PlannedSlot(now + 6.5, now + 60, "DE")),
            expected_co2e_g=1.0,
            run_now_co2e_g=2.0,
            saving_pct=50.0,
            forecast_source="test",
        ),
        options={"pause_signal": "SIGTERM", "grace_s": 20.0, "env": {}},
    )

    final = Scheduler(queue, settings, executors={"ray": RayExecutor(settings)}).run_job(job.id)

    assert final.state == "done", final.message
    lines = [line.split() for line in (tmp_path / "zones.txt").read_text().splitlines()]
    assert [zone for zone, _ in lines] == ["GB", "DE"]
    assert lines[0][1] == "0"
    assert 0 < int(lines[1][1]) < 80
