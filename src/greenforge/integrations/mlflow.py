"""MLflow: a tracked run's energy and CO2e, and a forge's candidates, in MLflow runs.

- :func:`log_run` logs a :class:`~greenforge.records.RunRecord` into an MLflow run (the
  active one, or one it starts and ends): totals as metrics (``greenforge/run/...``: energy
  and CO2e with low/high, embodied apart, SCI per run; ``greenforge/component/<name>/...``), one step per top-level window (``greenforge/window/...``, step N for ``epoch-N``),
  the provenance as ``greenforge.*`` params and tags (method, attribution, intensity source,
  zone, PUE, bounds) and the whole record as ``greenforge/run-<id>.json``.
- ``track(..., mlflow=True)`` adds a :class:`MlflowExporter`: it joins the active MLflow run
  at start (or starts one named after the tracker, so the block's own ``mlflow.log_*`` calls
  land in it too) and logs the final record at stop.
- :func:`log_forge` (``greenforge forge --mlflow``) logs a finished forge output directory: a
  parent run with ``forge.json``, the model card and the Pareto plot, one nested run per
  candidate with its metrics (lifetime CO2e with low/high, accuracy, size, energy and SCI per 1k
  predictions), the chosen one tagged ``greenforge.chosen=true`` and holding the model files.

The tracking server is whatever MLflow is set to (``MLFLOW_TRACKING_URI``,
``mlflow.set_tracking_uri``). GreenForge's own MLflow calls are bounded (:func:`bounded_http`):
MLflow's defaults retry an unreachable server for minutes (7 retries, backoff factor 2, 120 s
per request), and a measurement must never stall the workload it measures. The figures and names come from
:mod:`greenforge.integrations.experiments`, shared with the W&B integration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenforge.errors import ConfigError, MissingExtraError
from greenforge.integrations.experiments import (
    ForgeFigures,
    RunFigures,
    forge_figures,
    run_figures,
)

if TYPE_CHECKING:
    from greenforge.records import Interval, RunRecord
    from greenforge.tracker import Tracker

PARENT_RUN_TAG = "mlflow.parentRunId"
"""MLflow's tag that nests a run under another (``mlflow.utils.mlflow_tags``)."""
CHOSEN_TAG = "greenforge.chosen"
_BATCH_METRICS = 1000
_BATCH_PARAMS = 100
_BATCH_TAGS = 100
_STATUS = {"completed": "FINISHED", "failed": "FAILED"}

HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
"""MLflow's HTTP settings during GreenForge's own MLflow calls, where the user has not set them:
a dead server costs a few seconds per call (2 retries, ~1 + 2 s backoff, 10 s per request)
instead of MLflow's minutes. A value the user set in the environment is kept."""
_http_lock = threading.RLock()


@contextlib.contextmanager
def bounded_http() -> Iterator[None]:
    """Applies :data:`HTTP_LIMITS` (those the environment does not set) for the block.

    MLflow reads them from the environment at each request, so they are set in ``os.environ``
    for the block and removed after; calls other threads make meanwhile see them too.
    """
    with _http_lock:
        added = [k for k in HTTP_LIMITS if k not in os.environ]
        for key in added:
            os.environ[key] = HTTP_LIMITS[key]
        try:
            yield
        finally:
            for key in added:
                os.environ.pop(key, None)


def _mlflow() -> Any:
    """The ``mlflow`` module; raises MissingExtraError naming the extra."""
    try:
        import mlflow
    except ImportError:
        raise MissingExtraError("mlflow", "mlflow", "logging to MLflow") from None
    return mlflow


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _client() -> Any:
    return _mlflow().MlflowClient()


def run_status(status: str) -> str:
    """Returns MLflow's run status for a GreenForge one (completed -> FINISHED ...)."""
    return _STATUS.get(status, "KILLED")


def log_figures(
    client: Any,
    run_id: str,
    metrics: dict[str, float],
    params: dict[str, str],
    *,
    steps: Sequence[tuple[int, int, dict[str, float]]] = (),
    timestamp_ms: int | None = None,
    tags: dict[str, str] | None = None,
) -> list[str]:
    """Logs metrics (step 0), step metrics ``(step, timestamp_ms, metrics)``, params and tags
    into ``run_id`` in batches; returns the param keys skipped because the run already has
    them with another value (MLflow params are write-once; the tags carry the new value)."""
    from mlflow.entities import Metric, Param, RunTag

    now_ms = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    entries = [Metric(k, v, now_ms, 0) for k, v in metrics.items()]
    for step, ts_ms, values in steps:
        entries.extend(Metric(k, v, ts_ms, step) for k, v in values.items())
    existing = client.get_run(run_id).data.params
    new_params = [Param(k, v) for k, v in params.items() if k not in existing]
    skipped = [k for k, v in params.items() if k in existing and existing[k] != v]
    all_tags = {**params, **(tags or {})}
    if skipped:
        all_tags["greenforge.params_note"] = (
            "params already set in this run by an earlier greenforge run; the tags hold the "
            f"latest values ({', '.join(skipped[:10])})"
        )
    tag_list = [RunTag(k, v) for k, v in all_tags.items()]
    for chunk in _chunks(new_params, _BATCH_PARAMS):
        client.log_batch(run_id, params=list(chunk))
    for chunk in _chunks(tag_list, _BATCH_TAGS):
        client.log_batch(run_id, tags=list(chunk))
    for chunk in _chunks(entries, _BATCH_METRICS):
        client.log_batch(run_id, metrics=list(chunk))
    return skipped


def _log_record(client: Any, run_id: str, record: RunRecord, figures: RunFigures) -> None:
    from greenforge.jsonsafe import dumps

    ended_ms = int(1000 * (record.ended_s or record.started_s + record.duration_s))
    steps = [(s.step, int(1000 * s.end_s), s.metrics) for s in figures.steps]
    log_figures(client, run_id, figures.metrics, figures.params, steps=steps, timestamp_ms=ended_ms)
    client.log_text(run_id, dumps(record.to_dict()), f"greenforge/run-{record.id}.json")


def log_run(record: RunRecord, *, run_id: str | None = None) -> str:
    """Logs a tracked run into MLflow; returns the MLflow run id.

    ``run_id`` names the MLflow run; without it the active run (``mlflow.active_run()``) is
    used, else a run named after the record is started and ended here.
    """
    with bounded_http():
        return _log_run(record, run_id)


def _log_run(record: RunRecord, run_id: str | None) -> str:
    mlflow = _mlflow()
    figures = run_figures(record)
    client = _client()
    if run_id is not None:
        _log_record(client, run_id, record, figures)
        return run_id
    active = mlflow.active_run()
    if active is not None:
        _log_record(client, active.info.run_id, record, figures)
        return str(active.info.run_id)
    with mlflow.start_run(run_name=record.name) as run:
        _log_record(client, run.info.run_id, record, figures)
    client.set_terminated(run.info.run_id, run_status(record.status))
    return str(run.info.run_id)


class MlflowExporter:
    """A tracker exporter that logs the run into MLflow at stop (``track(..., mlflow=True)``).

    At start it joins ``run_id``, else the active MLflow run, else starts a run named after
    the tracker (ended at stop with the run's status). Nothing is sent while the workload runs:
    the final, re-accounted record is logged once at stop. A server that cannot be reached at
    start is a :class:`~greenforge.errors.ConfigError` (the tracker warns and measures on).
    """

    def __init__(self, run_id: str | None = None) -> None:
        self._mlflow = _mlflow()
        self.requested_run_id = run_id
        self.run_id: str | None = None
        """The MLflow run logged into (after :meth:`start`)."""
        self.owns_run = False
        self.tracker: Tracker | None = None

    def start(self, tracker: Tracker) -> None:
        """Join or start the MLflow run; raises ConfigError when MLflow cannot be reached."""
        self.tracker = tracker
        mlflow = self._mlflow
        try:
            with bounded_http():
                self._join_or_start(tracker)
        except Exception as exc:
            raise ConfigError(
                f"cannot log to MLflow at {mlflow.get_tracking_uri()!r} ({exc}): check "
                "MLFLOW_TRACKING_URI and that the server is up."
            ) from None

    def _join_or_start(self, tracker: Tracker) -> None:
        mlflow = self._mlflow
        if self.requested_run_id is not None:
            _client().get_run(self.requested_run_id)
            self.run_id = self.requested_run_id
            return
        active = mlflow.active_run()
        if active is not None:
            self.run_id = str(active.info.run_id)
            return
        run = mlflow.start_run(run_name=tracker.name, tags={"greenforge.run_id": tracker.run_id})
        self.run_id = str(run.info.run_id)
        self.owns_run = True

    def on_interval(self, interval: Interval) -> None:
        """Nothing on the sampling path (the record is logged at stop)."""

    def flush(self) -> None:
        """Nothing at flushes (the record is logged at stop)."""

    def stop(self) -> None:
        """Log the final record and end the run this exporter started."""
        tracker, run_id = self.tracker, self.run_id
        if tracker is None or run_id is None:
            return
        record = tracker.record
        status = "KILLED"
        with bounded_http():
            try:
                if record is not None:
                    status = run_status(record.status)
                    _log_record(_client(), run_id, record, run_figures(record))
            finally:
                if self.owns_run:
                    self._end(run_id, status)

    def _end(self, run_id: str, status: str) -> None:
        mlflow = self._mlflow
        active = mlflow.active_run()
        if active is not None and active.info.run_id == run_id:
            mlflow.end_run(status)
        else:
            _client().set_terminated(run_id, status)


@dataclasses.dataclass(frozen=True)
class ForgeLogged:
    """Where :func:`log_forge` logged a forge: the parent run and one run per candidate."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    candidate_run_ids: dict[str, str]
    chosen_run_id: str | None

    def line(self) -> str:
        """Returns a one-line summary for the terminal."""
        chosen = "" if self.chosen_run_id is None else f", chosen run {self.chosen_run_id}"
        return (
            f"MLflow: forge run {self.parent_run_id} with {len(self.candidate_run_ids)} nested "
            f"candidate runs{chosen} (experiment {self.experiment_id}, {self.tracking_uri})"
        )


def log_forge(forge_dir: Path, *, parent_run_id: str | None = None) -> ForgeLogged:
    """Logs a finished ``greenforge forge`` output directory into MLflow; returns the run ids.

    The parent run is ``parent_run_id``, else the active run, else a new run ``forge <task>``
    (ended here). Each evaluated candidate becomes a nested run (tag ``mlflow.parentRunId``).
    """
    with bounded_http():
        return _log_forge_dir(Path(forge_dir), parent_run_id)


def _log_forge_dir(forge_dir: Path, parent_run_id: str | None) -> ForgeLogged:
    mlflow = _mlflow()
    figures = forge_figures(forge_dir)
    client = _client()
    if parent_run_id is None:
        active = mlflow.active_run()
        parent_run_id = None if active is None else str(active.info.run_id)
    if parent_run_id is not None:
        return _log_forge(client, parent_run_id, figures, mlflow.get_tracking_uri())
    with mlflow.start_run(run_name=f"forge {figures.name}") as run:
        return _log_forge(client, str(run.info.run_id), figures, mlflow.get_tracking_uri())


def _log_forge(client: Any, parent: str, figures: ForgeFigures, uri: str) -> ForgeLogged:
    experiment_id = str(client.get_run(parent).info.experiment_id)
    tags = {"greenforge.forge": figures.name}
    if figures.chosen is not None:
        tags[CHOSEN_TAG] = figures.chosen
    log_figures(client, parent, figures.metrics, figures.params, tags=tags)
    for path in figures.files.values():
        client.log_artifact(parent, str(path), "forge")
    runs: dict[str, str] = {}
    chosen_run: str | None = None
    for c in figures.candidates:
        run = client.create_run(
            experiment_id,
            run_name=c.name,
            tags={PARENT_RUN_TAG: parent, CHOSEN_TAG: str(c.chosen).lower()},
        )
        run_id = str(run.info.run_id)
        runs[c.name] = run_id
        try:
            log_figures(client, run_id, c.metrics, c.params)
            client.log_dict(run_id, c.record, "greenforge/candidate.json")
            if c.chosen:
                chosen_run = run_id
                for path in figures.model_files:
                    client.log_artifact(run_id, str(path), "model")
                card = figures.files.get("model_card")
                if card is not None:
                    client.log_artifact(run_id, str(card), "model")
        except Exception:
            client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
    return ForgeLogged(uri, experiment_id, parent, runs, chosen_run)
