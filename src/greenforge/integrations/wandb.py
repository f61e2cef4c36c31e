"""Weights & Biases: a tracked run's energy and CO2e, and a forge's candidates, in W&B runs.

The same figures and names as the MLflow integration
(:mod:`greenforge.integrations.experiments`), in W&B's terms:

- :func:`log_run` logs a :class:`~greenforge.records.RunRecord` into a W&B run (the one given,
  else ``wandb.run``, else one it starts and finishes): the totals (``greenforge/run/...``)
  in the run's summary, one ``wandb.log`` row per top-level window (``greenforge/window/...``
  against its own x axis ``greenforge/window/index``, N for ``epoch-N``, declared with
  ``define_metric`` so it never fights the trainer's step), the provenance (``greenforge.*``)
  in the run's config, the tag ``greenforge``, and the record as an artifact of type
  ``greenforge-run``.
- ``track(..., wandb=True)`` adds a :class:`WandbExporter`: it joins ``wandb.run`` at start (or
  starts a run named after the tracker, so the block's own ``wandb.log`` calls land in it) and
  logs the final record at stop.
- :func:`log_forge` (``greenforge forge --wandb``): W&B has no nested runs, so a forge becomes a
  *group*: a ``forge`` run (the search's figures, a candidates table, and ``forge.json``, the
  model card and the Pareto plot as a ``forge`` artifact) and one ``forge-candidate`` run per
  candidate with its metrics in the summary, the chosen one tagged ``chosen`` and holding the
  model files as a ``model`` artifact.

Where the runs go is W&B's own configuration (``WANDB_MODE=offline``, ``WANDB_PROJECT``, ...).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenforge.errors import ConfigError, MissingExtraError
from greenforge.integrations.experiments import (
    WINDOW,
    WINDOW_INDEX,
    CandidateFigures,
    ForgeFigures,
    RunFigures,
    forge_figures,
    run_figures,
)

if TYPE_CHECKING:
    from greenforge.records import Interval, RunRecord
    from greenforge.tracker import Tracker

TAG = "greenforge"
CHOSEN_TAG = "chosen"
_ARTIFACT_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def _wandb() -> Any:
    """The ``wandb`` module; raises MissingExtraError naming the extra."""
    try:
        import wandb
    except ImportError:
        raise MissingExtraError("wandb", "wandb", "logging to Weights & Biases") from None
    return wandb


def artifact_name(text: str) -> str:
    """Returns ``text`` as a valid W&B artifact name (letters, digits, ``-``, ``_``, ``.``)."""
    return _ARTIFACT_NAME.sub("-", text)[:128]


def _log_record(run: Any, record: RunRecord, figures: RunFigures) -> None:
    from greenforge.jsonsafe import dumps

    wandb = _wandb()
    if figures.steps:
        run.define_metric(WINDOW_INDEX)
        run.define_metric(WINDOW + "*", step_metric=WINDOW_INDEX)
        for step in figures.steps:
            run.log({WINDOW_INDEX: step.step, **step.metrics})
    run.summary.update(figures.metrics)
    run.config.update(figures.params, allow_val_change=True)
    if TAG not in (run.tags or ()):
        run.tags = (*(run.tags or ()), TAG)
    artifact = wandb.Artifact(
        artifact_name(f"greenforge-run-{record.id}"),
        type="greenforge-run",
        metadata={"run_id": record.id, "name": record.name, "status": record.status},
    )
    with artifact.new_file(f"run-{record.id}.json", mode="w", encoding="utf-8") as f:
        f.write(dumps(record.to_dict()))
    run.log_artifact(artifact)


def log_run(record: RunRecord, *, run: Any = None) -> Any:
    """Logs a tracked run into W&B; returns the W&B run it went to.

    ``run`` is a ``wandb`` run; without it ``wandb.run`` is used, else a run named after the
    record is started (``reinit="create_new"``, leaving ``wandb.run`` alone) and finished here.
    """
    wandb = _wandb()
    figures = run_figures(record)
    target = run if run is not None else wandb.run
    if target is not None:
        _log_record(target, record, figures)
        return target
    target = wandb.init(name=record.name, reinit="create_new", job_type="greenforge")
    try:
        _log_record(target, record, figures)
    finally:
        target.finish(exit_code=0 if record.status == "completed" else 1)
    return target


class WandbExporter:
    """A tracker exporter that logs the run into W&B at stop (``track(..., wandb=True)``).

    At start it joins ``run`` (a ``wandb`` run), else ``wandb.run``, else starts a run named
    after the tracker (finished at stop). Nothing is sent while the workload runs; the final,
    re-accounted record is logged once at stop.
    """

    def __init__(self, run: Any = None) -> None:
        self._wandb = _wandb()
        self.run: Any = run
        """The W&B run logged into (after :meth:`start`)."""
        self.owns_run = False
        self.tracker: Tracker | None = None

    def start(self, tracker: Tracker) -> None:
        """Join or start the W&B run; raises ConfigError when W&B cannot start one."""
        self.tracker = tracker
        if self.run is not None:
            return
        wandb = self._wandb
        if wandb.run is not None:
            self.run = wandb.run
            return
        try:
            self.run = wandb.init(name=tracker.name, job_type="greenforge", tags=[TAG])
        except Exception as exc:
            raise ConfigError(
                f"cannot start a W&B run ({exc}): log in with `wandb login`, or set "
                "WANDB_MODE=offline to keep the run on disk."
            ) from None
        self.owns_run = True

    def on_interval(self, interval: Interval) -> None:
        """Nothing on the sampling path (the record is logged at stop)."""

    def flush(self) -> None:
        """Nothing at flushes (the record is logged at stop)."""

    def stop(self) -> None:
        """Log the final record and finish the run this exporter started."""
        tracker, run = self.tracker, self.run
        if tracker is None or run is None:
            return
        record = tracker.record
        failed = record is None or record.status != "completed"
        try:
            if record is not None:
                _log_record(run, record, run_figures(record))
        finally:
            if self.owns_run:
                run.finish(exit_code=1 if failed else 0)


@dataclasses.dataclass(frozen=True)
class ForgeLogged:
    """Where :func:`log_forge` logged a forge: the group, the forge run and candidate runs."""

    group: str
    forge_run_id: str
    candidate_run_ids: dict[str, str]
    chosen_run_id: str | None
    run_dirs: tuple[str, ...]
    """Local directories of the runs this call created (offline runs live there)."""

    def line(self) -> str:
        """Returns a one-line summary for the terminal."""
        chosen = "" if self.chosen_run_id is None else f", chosen run {self.chosen_run_id}"
        return (
            f"W&B: forge group {self.group!r}: run {self.forge_run_id} and "
            f"{len(self.candidate_run_ids)} candidate runs{chosen}"
        )


def _candidate_run(wandb: Any, group: str, c: CandidateFigures, figures: ForgeFigures) -> Any:
    run = wandb.init(
        name=c.name,
        group=group,
        job_type="forge-candidate",
        tags=[TAG, CHOSEN_TAG] if c.chosen else [TAG],
        config=c.params,
        reinit="create_new",
    )
    try:
        run.log(c.metrics)
        run.summary.update(c.metrics)
        artifact = wandb.Artifact(
            artifact_name(f"{figures.name}-{c.name}-candidate"),
            type="forge-candidate",
            metadata={"candidate": c.name, "chosen": c.chosen},
        )
        with artifact.new_file("candidate.json", mode="w", encoding="utf-8") as f:
            from greenforge.jsonsafe import dumps

            f.write(dumps(c.record))
        run.log_artifact(artifact)
        if c.chosen and (figures.model_files or "model_card" in figures.files):
            model = wandb.Artifact(
                artifact_name(f"{figures.name}-model"),
                type="model",
                metadata={"candidate": c.name, **c.metrics},
            )
            for path in figures.model_files:
                model.add_file(str(path))
            card = figures.files.get("model_card")
            if card is not None:
                model.add_file(str(card))
            run.log_artifact(model, aliases=["latest", CHOSEN_TAG])
    except Exception:
        run.finish(exit_code=1)
        raise
    run.finish()
    return run


def log_forge(forge_dir: Path, *, group: str | None = None) -> ForgeLogged:
    """Logs a finished ``greenforge forge`` output directory into W&B; returns the run ids.

    The search's figures and files go to ``wandb.run`` when there is one (else to a new
    ``forge`` run, finished here); every candidate becomes a run of the group ``group``
    (default: the active run's group, else ``forge-<task>-<forge run id>``).
    """
    wandb = _wandb()
    figures = forge_figures(Path(forge_dir))
    parent = wandb.run
    owns_parent = parent is None
    if owns_parent:
        group = group or f"forge-{figures.name}-{os.urandom(4).hex()}"
        parent = wandb.init(
            name=f"forge {figures.name}",
            group=group,
            job_type="forge",
            tags=[TAG],
            config=figures.params,
            reinit="create_new",
        )
    else:
        parent.config.update(figures.params, allow_val_change=True)
        group = group or parent.group or f"forge-{figures.name}-{parent.id}"
    dirs = [str(parent.dir)] if owns_parent else []
    runs: dict[str, str] = {}
    chosen: str | None = None
    try:
        parent.summary.update(figures.metrics)
        if figures.chosen is not None:
            parent.summary.update({"greenforge.chosen": figures.chosen})
        table = wandb.Table(
            columns=[
                "candidate",
                "chosen",
                *sorted({k for c in figures.candidates for k in c.metrics}),
            ]
        )
        for c in figures.candidates:
            table.add_data(c.name, c.chosen, *(c.metrics.get(k) for k in table.columns[2:]))
        parent.log({"greenforge/candidates": table})
        artifact = wandb.Artifact(artifact_name(f"forge-{figures.name}"), type="forge")
        for path in figures.files.values():
            artifact.add_file(str(path))
        parent.log_artifact(artifact)
        for c in figures.candidates:
            run = _candidate_run(wandb, group, c, figures)
            runs[c.name] = str(run.id)
            dirs.append(str(run.dir))
            if c.chosen:
                chosen = str(run.id)
    finally:
        if owns_parent:
            parent.finish()
    return ForgeLogged(group, str(parent.id), runs, chosen, tuple(dirs))
