"""Live re-planning: a job waiting for its first slot follows the latest forecast."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from greenforge.config import Settings, load_settings
from greenforge.errors import ConfigError, ProviderError
from greenforge.grid.series import IntensitySeries
from greenforge.report.store import RunStore
from greenforge.schedule.executors.base import METADATA_KEY
from greenforge.schedule.executors.local import LocalExecutor
from greenforge.schedule.job import Job
from greenforge.schedule.pipeline import make_plan
from greenforge.schedule.queue import JobQueue, QueuedJob
from greenforge.schedule.runner import (
    ReplanWarning,
    Scheduler,
    enqueue_plan,
)

HOUR_S = 3600.0
NOW_S = float(int(time.time() // HOUR_S) * HOUR_S)  # on the hour, so hours are slots


class ChangingForecast:
    """A grid provider whose forecast changes between calls: 300 g/kWh everywhere except one
    clean hour, which moves (or the source fails) from a given call on."""

    name = "changing"

    def __init__(
        self,
        clean_hours: Sequence[float],
        *,
        clean_g_per_kwh: Sequence[float],
        fail_from_call: int | None = None,
    ) -> None:
        self.clean_hours = list(clean_hours)
        self.clean_g_per_kwh = list(clean_g_per_kwh)
        self.fail_from_call = fail_from_call
        self.calls: list[float] = []

    def zones(self) -> Sequence[str]:
        return ["GB"]

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        raise ProviderError("no history in this test")

    def forecast(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        self.calls.append(start_s)
        call = len(self.calls)
        if self.fail_from_call is not None and call >= self.fail_from_call:
            raise ProviderError("forecast API is down (HTTP 503)")
        k = min(call, len(self.clean_hours)) - 1
        first = np.floor(start_s / HOUR_S) * HOUR_S
        times = np.arange(first, end_s, HOUR_S)
        values = np.full(times.shape, 300.0)
        values[times == NOW_S + self.clean_hours[k] * HOUR_S] = self.clean_g_per_kwh[k]
        return IntensitySeries(
            times_s=times,
            values_g_per_kwh=values,
            step_s=HOUR_S,
            zone=zone,
            source=f"changing:call-{call}",
            kind="forecast",
        )


class FakeTime:
    """A clock and a sleeper that only advance when slept on."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s
        self.slept_s: list[float] = []

    def clock(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.slept_s.append(seconds)
        self.now_s += seconds


def _settings() -> Settings:
    """Planning settings: forecasts come from the test's provider only."""
    return load_settings(zone="GB", intensity_providers="changing")


def _local() -> dict[str, LocalExecutor]:
    """The local executor measuring with the default (offline) provider chain."""
    return {"local": LocalExecutor(load_settings(zone="GB"))}


def _queue_job(
    settings: Settings, provider: ChangingForecast, cwd: Path, deadline_h: float
) -> QueuedJob:
    job = Job(
        duration_s=HOUR_S,
        earliest_start_s=NOW_S,
        deadline_s=NOW_S + deadline_h * HOUR_S,
        zones=("GB",),
        power_w=1000.0,
    )
    plan = make_plan(job, settings, now_s=NOW_S, providers={"changing": provider}).plan
    queue = JobQueue.for_home(settings.resolved_home())
    argv = [sys.executable, "-c", "open('out.txt', 'w').write('ran')"]
    return enqueue_plan(queue, plan, argv, cwd=cwd)


def _run_metadata(settings: Settings, job: QueuedJob) -> dict[str, object]:
    with RunStore.for_settings(settings) as store:
        record = store.get(job.run_ids[0])
    meta = record.metadata[METADATA_KEY]
    assert isinstance(meta, dict)
    return meta


def test_a_waiting_job_moves_to_the_clean_hour_of_a_newer_forecast(tmp_path: Path) -> None:
    settings = _settings()
    provider = ChangingForecast([10, 5], clean_g_per_kwh=[50.0, 20.0])
    job = _queue_job(settings, provider, tmp_path, deadline_h=24)
    assert job.plan.slots[0].start_s == NOW_S + 10 * HOUR_S
    fake = FakeTime(NOW_S)
    events: list[str] = []
    scheduler = Scheduler(
        JobQueue.for_home(settings.resolved_home()),
        settings,
        clock=fake.clock,
        sleep=fake.sleep,
        on_event=lambda j, text: events.append(text),
        max_sleep_s=600.0,
        replan_every_s=HOUR_S,
        providers={"changing": provider},
        executors=_local(),
    )

    final = scheduler.run_job(job.id)

    assert final.state == "done"
    assert (tmp_path / "out.txt").read_text() == "ran"
    # re-planned at +1 h, +2 h, +3 h and +4 h; the new clean hour (+5 h) came before +10 h
    assert provider.calls == [NOW_S + h * HOUR_S for h in (0, 1, 2, 3, 4)]
    assert sum(fake.slept_s) == pytest.approx(5 * HOUR_S)
    assert max(fake.slept_s) <= 600.0
    assert final.plan.replans == 4
    assert final.plan.slots[0].start_s == NOW_S + 5 * HOUR_S
    assert final.plan.slots[-1].end_s <= NOW_S + 24 * HOUR_S
    assert sum("re-planned" in e for e in events) == 4
    meta = _run_metadata(settings, final)
    assert meta["replans"] == 4
    assert meta["replan_failures"] == 0
    assert meta["expected_co2e_g"] == pytest.approx(20.0)  # 1 kWh at the newer clean hour
    assert meta["run_now_co2e_g"] == pytest.approx(300.0)  # 1 kWh at +4 h, the last re-plan
    assert meta["forecast_source"] == "changing:call-5"


def test_a_failing_forecast_source_keeps_the_current_plan_and_says_so(tmp_path: Path) -> None:
    settings = _settings()
    provider = ChangingForecast([3], clean_g_per_kwh=[40.0], fail_from_call=2)
    job = _queue_job(settings, provider, tmp_path, deadline_h=12)
    fake = FakeTime(NOW_S)
    scheduler = Scheduler(
        JobQueue.for_home(settings.resolved_home()),
        settings,
        clock=fake.clock,
        sleep=fake.sleep,
        max_sleep_s=600.0,
        replan_every_s=HOUR_S,
        providers={"changing": provider},
        executors=_local(),
    )

    with pytest.warns(ReplanWarning, match="keeping its current plan") as caught:
        final = scheduler.run_job(job.id)

    assert len(caught) == 2  # at +1 h and +2 h; at +3 h the slot starts
    assert final.state == "done"
    assert final.plan.slots == job.plan.slots
    assert final.plan.replans == 0
    assert final.plan.replan_failures == 2
    assert "HTTP 503" in final.plan.replan_error
    meta = _run_metadata(settings, final)
    assert meta["replans"] == 0
    assert meta["replan_failures"] == 2
    assert "HTTP 503" in str(meta["replan_error"])
    assert meta["expected_co2e_g"] == pytest.approx(40.0)
    assert meta["run_now_co2e_g"] == pytest.approx(300.0)


def test_re_planning_never_moves_a_job_past_its_deadline(tmp_path: Path) -> None:
    settings = _settings()
    # the newer forecast's clean hour (+30 h) lies after the deadline (+8 h)
    provider = ChangingForecast([6, 30], clean_g_per_kwh=[50.0, 1.0])
    job = _queue_job(settings, provider, tmp_path, deadline_h=8)
    fake = FakeTime(NOW_S)
    scheduler = Scheduler(
        JobQueue.for_home(settings.resolved_home()),
        settings,
        clock=fake.clock,
        sleep=fake.sleep,
        max_sleep_s=600.0,
        replan_every_s=HOUR_S,
        providers={"changing": provider},
        executors=_local(),
    )

    final = scheduler.run_job(job.id)

    assert final.state == "done"
    assert final.plan.replans >= 1
    assert all(end_s <= NOW_S + 8 * HOUR_S for end_s in (s.end_s for s in final.plan.slots))
    assert all(start_s <= NOW_S + 30 * HOUR_S for start_s in provider.calls)


def test_without_a_re_plan_interval_the_first_plan_is_kept(tmp_path: Path) -> None:
    settings = _settings()
    provider = ChangingForecast([2, 1], clean_g_per_kwh=[50.0, 20.0])
    job = _queue_job(settings, provider, tmp_path, deadline_h=6)
    fake = FakeTime(NOW_S)
    scheduler = Scheduler(
        JobQueue.for_home(settings.resolved_home()),
        settings,
        clock=fake.clock,
        sleep=fake.sleep,
        providers={"changing": provider},
        executors=_local(),
    )

    final = scheduler.run_job(job.id)

    assert final.state == "done"
    assert len(provider.calls) == 1
    assert final.plan == job.plan
    assert sum(fake.slept_s) == pytest.approx(2 * HOUR_S)


@pytest.mark.parametrize("every_s", [0.0, -5.0, float("nan")])
def test_a_bad_re_plan_interval_is_a_config_error(every_s: float) -> None:
    settings = _settings()
    queue = JobQueue.for_home(settings.resolved_home())
    with pytest.raises(ConfigError, match="re-plan interval"):
        Scheduler(queue, settings, replan_every_s=every_s)


def test_re_plans_use_the_forecast_options_the_job_was_planned_with(tmp_path: Path) -> None:
    import datetime as dt

    from greenforge.schedule.pipeline import PlanOptions

    values = [300.0] * 30
    values[3] = 50.0  # the file's clean hour; the provider would say +10 h
    rows = ["timestamp,value"] + [
        f"{dt.datetime.fromtimestamp(NOW_S + i * HOUR_S, dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ},{v}"
        for i, v in enumerate(values)
    ]
    path = tmp_path / "forecast.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    settings = _settings()
    provider = ChangingForecast([10], clean_g_per_kwh=[20.0])
    options = PlanOptions(files=(path,))
    job = Job(
        duration_s=HOUR_S,
        earliest_start_s=NOW_S,
        deadline_s=NOW_S + 24 * HOUR_S,
        zones=("GB",),
        power_w=1000.0,
    )
    plan = make_plan(job, settings, options, now_s=NOW_S).plan
    queue = JobQueue.for_home(settings.resolved_home())
    argv = [sys.executable, "-c", "pass"]
    queued = enqueue_plan(queue, plan, argv, cwd=tmp_path, planning=options)
    fake = FakeTime(NOW_S)
    scheduler = Scheduler(
        queue,
        settings,
        clock=fake.clock,
        sleep=fake.sleep,
        max_sleep_s=600.0,
        replan_every_s=HOUR_S,
        providers={"changing": provider},
        executors=_local(),
    )

    final = scheduler.run_job(queued.id)

    assert final.state == "done"
    assert provider.calls == []  # every re-plan read the file, never the provider
    assert final.plan.replans == 2
    assert final.plan.slots[0].start_s == NOW_S + 3 * HOUR_S
    assert final.plan.forecast_source.startswith("csv:")
