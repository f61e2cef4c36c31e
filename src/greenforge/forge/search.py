"""The forge search: run the recipes, measure every candidate, choose, and write the results.

:func:`run_forge` is the whole job behind ``greenforge forge``. It writes ``forge.json`` after
every step (partial results are kept if a later step fails) and returns a
:class:`~greenforge.forge.result.ForgeResult`.

Order of work: the recipes train their candidates (under ``training_threads``); every fp32
torch candidate is also exported to ONNX Runtime (``<name>+onnx``) when the task's
``serving_runtimes`` include ``onnxruntime``; then *all* candidates' inference is measured
together with the protocol of :mod:`greenforge.forge.protocol` (serving threads, interleaved
repeats, median with a bootstrap interval, the process's own CPU time); last the accounting,
the decision under uncertainty and the headline.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from greenforge.config import Settings
from greenforge.errors import ConfigError, GreenForgeError
from greenforge.forge.candidate import Candidate
from greenforge.forge.context import ForgeContext
from greenforge.forge.datasets import TaskData, load_data, load_example
from greenforge.forge.evaluate import Evaluation, Quality, assess, measure_serving
from greenforge.forge.measure import (
    Intensity,
    Measurement,
    Metering,
    deployment_intensity,
    energy_basis,
    metering_for,
    total,
    training_intensity,
)
from greenforge.forge.pareto import choose, lifetime_co2e_g, pareto_front, ratio_interval
from greenforge.forge.protocol import SIZE_ROUNDS, InterleavedRun, ProtocolConfig, thread_limit
from greenforge.forge.recipes.base import Recipe, create_recipe
from greenforge.forge.result import (
    CONTROL_SUFFIX,
    CONTROL_TOLERANCE,
    MEASUREMENT_NOTE,
    MEASUREMENT_STEP,
    CandidateResult,
    Decision,
    ForgeResult,
    Headline,
    ProtocolReport,
    SearchStep,
    SearchSummary,
    ServingSpec,
)
from greenforge.forge.task import ForgeTask
from greenforge.units import co2e_g

Executor = Literal["local", "ray"]
EXECUTORS: tuple[str, ...] = ("local", "ray")
EventFn = Callable[[str, Mapping[str, Any]], None]
DEFAULT_REPEAT_S = ProtocolConfig().repeat_s
"""Target CPU seconds of one inference repeat (the protocol's default)."""
BF16_ORT_SKIP = (
    "bf16 candidates are measured in torch only: ONNX Runtime's CPU provider has no bf16 "
    "kernels for MatMul/Gemm, so an ORT export would run in fp32 and misstate bf16"
)


def load_task_data(task: ForgeTask) -> TaskData:
    """The task's data set (a bundled example or the [data] table)."""
    if "example" in task.data:
        return load_example(
            str(task.data["example"]),
            seed=task.spec.seed,
            test_fraction=float(task.data.get("test_fraction", 0.15)),
        )
    return load_data(task.data, task.base_dir, seed=task.spec.seed)


def _build_recipes(task: ForgeTask) -> list[Recipe]:
    """Create every recipe up front so unknown names and bad options fail before training."""
    recipes: list[Recipe] = []
    for i, r in enumerate(task.recipes):
        try:
            recipes.append(create_recipe(r.recipe, **dict(r.options)))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, GreenForgeError):
                raise
            raise ConfigError(f"recipe #{i + 1} ({r.recipe!r}): {exc}") from None
    return recipes


def _pool(data: TaskData, n: int = 512) -> torch.Tensor:
    """Up to ``n`` test inputs, stacked, for the inference measurements."""
    size = min(len(data.test), n)  # type: ignore[arg-type]
    return torch.stack([torch.as_tensor(data.test[i][0]).float() for i in range(size)])


def _evaluate_payload(
    candidate: Candidate, test: Any, pool: torch.Tensor
) -> tuple[Quality, list[tuple[str, Measurement]]]:
    """A candidate's quality (accuracy, size, FLOPs); no energy is measured here (the
    inference measurement of all candidates runs together, afterwards)."""
    from torch.utils.data import DataLoader

    return assess(candidate, DataLoader(test, batch_size=512), pool), []


def _threads(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} {value!r} must be an integer >= 1.")
    return value


def run_forge(
    task: ForgeTask,
    settings: Settings,
    *,
    out_dir: Path | None = None,
    executor: Executor = "local",
    measure_kwargs: Mapping[str, Any] | None = None,
    min_duration_s: float = DEFAULT_REPEAT_S,
    on_event: EventFn | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    data: TaskData | None = None,
    ray_init: Mapping[str, Any] | None = None,
    threads: int | None = None,
    measure_budget_s: float | None = None,
) -> ForgeResult:
    """Run the search for ``task`` and write the outputs to ``out_dir`` (when given).

    - ``threads``: overrides both the task's ``training_threads`` and ``serving_threads``
      (torch threads are set inside the search only and restored afterwards).
    - ``min_duration_s``: target CPU seconds of one inference repeat.
    - ``measure_budget_s``: CPU-second budget of the interleaved inference measurement (wall
      limit 4x that); default the task's ``measure_budget_s``.
    - ``measure_kwargs``: ``meters`` (injected meters, read as they are) and
      ``intensity_g_per_kwh`` + ``intensity_source`` (a fixed intensity for training and
      deployment), for tests and callers without a grid.
    """
    if executor not in EXECUTORS:
        from greenforge.errors import UnknownNameError

        raise UnknownNameError("executor", executor, EXECUTORS)
    spec = task.spec
    train_threads = _threads(
        "threads" if threads is not None else "training_threads",
        threads if threads is not None else spec.training_threads,
    )
    serve_threads = _threads(
        "threads" if threads is not None else "serving_threads",
        threads if threads is not None else spec.serving_threads,
    )
    runtimes = tuple(spec.serving_runtimes)
    budget = measure_budget_s if measure_budget_s is not None else spec.measure_budget_s
    config = ProtocolConfig(
        repeat_s=min_duration_s, budget_s=budget, wall_limit_s=4 * budget, seed=spec.seed
    )
    return _run_forge(
        task,
        settings,
        out_dir,
        executor,
        measure_kwargs,
        config,
        on_event,
        progress,
        data,
        ray_init,
        train_threads,
        serve_threads,
        runtimes,
    )


def _metering(
    settings: Settings, deploy_zone: str, mkw: Mapping[str, Any]
) -> tuple[Metering, Intensity]:
    """The search's metering (training intensity) and the deployment intensity."""
    if "intensity_g_per_kwh" in mkw:
        given = Intensity(
            float(mkw["intensity_g_per_kwh"]), str(mkw.get("intensity_source", "injected"))
        )
        return metering_for(settings, meters=mkw.get("meters"), intensity=given), given
    deploy = Intensity(*deployment_intensity(settings, deploy_zone))
    train = training_intensity(settings, settings.zone)
    return metering_for(settings, meters=mkw.get("meters"), intensity=train), deploy


def _run_forge(
    task: ForgeTask,
    settings: Settings,
    out_dir: Path | None,
    executor: Executor,
    measure_kwargs: Mapping[str, Any] | None,
    config: ProtocolConfig,
    on_event: EventFn | None,
    progress: Callable[[str, int, int], None] | None,
    data: TaskData | None,
    ray_init: Mapping[str, Any] | None,
    train_threads: int,
    serve_threads: int,
    runtimes: tuple[str, ...],
) -> ForgeResult:
    emit: EventFn = on_event or (lambda kind, info: None)
    started = time.time()
    recipes = _build_recipes(task)
    if out_dir is not None:
        try:  # before any training: results are written after every step
            Path(out_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the output directory {str(out_dir)!r} ({exc.strerror or exc}); "
                "pass a writable --out DIR."
            ) from None
    deploy_zone = task.spec.zone or settings.zone
    if deploy_zone is None:
        raise ConfigError(
            "no deployment zone: pass --zone (e.g. --zone DE), set `zone` in the task table, or set "
            "GREENFORGE_ZONE."
        )
    run_settings = (
        settings if settings.zone is not None else dataclasses.replace(settings, zone=deploy_zone)
    )
    metering, deploy = _metering(run_settings, deploy_zone, dict(measure_kwargs or {}))
    data = data or load_task_data(task)
    ctx = ForgeContext(
        train_data=data.train,
        val_data=data.val,
        test_data=data.test,
        num_classes=data.num_classes,
        input_shape=data.input_shape,
        task=task.spec,
        settings=run_settings,
        pretrained=task.pretrained,
        measure_kwargs={"metering": metering},
        progress=progress,
    )
    pool = _pool(data)
    _check_input_shape(ctx, pool)
    batch_sizes = tuple(dict.fromkeys((1, task.spec.serving_batch_size)))
    result = ForgeResult(
        task=task,
        data=data,
        results=[],
        status="running",
        target_accuracy=task.spec.target_accuracy,
        chosen=None,
        reason="search running",
        closest=[],
        deploy_zone=deploy_zone,
        deploy_intensity_g_per_kwh=deploy.g_per_kwh,
        deploy_intensity_source=deploy.source,
        pue=metering.pue.value,
        search=SearchSummary(),
        out_dir=out_dir,
        executor=executor,
        failures=[],
        training_zone=run_settings.zone,
        pue_source=metering.pue.source,
        training_intensity_g_per_kwh=metering.intensity.g_per_kwh,
        training_intensity_source=metering.intensity.source,
        serving=ServingSpec(runtimes=runtimes, threads=serve_threads, batch_sizes=batch_sizes),
        training_threads=train_threads,
        attribution=metering.attribution.name,
        attribution_method=metering.attribution.method,
        attribution_provenance=metering.attribution.provenance,
        warnings=_warnings(settings),
    )
    from greenforge.forge import output

    def save() -> None:
        _account(result, ctx, started)
        if out_dir is not None:
            output.write_forge_json(out_dir, result)

    remote: Any = None
    pending: list[tuple[CandidateResult, Any]] = []
    if executor == "ray":
        remote = _ray_evaluator(ray_init)

    def assess_now(cr: CandidateResult) -> None:
        q, taken = _evaluate_payload(cr.candidate, data.test, pool)
        ctx.measurements.extend(taken)
        cr.quality = q
        emit("evaluated", {"name": cr.name, "accuracy": q.accuracy})

    def add(cand: Candidate, first: bool) -> CandidateResult:
        ctx.add(cand)
        cr = CandidateResult(cand, lineage=tuple(c.name for c in ctx.lineage(cand.name)))
        result.results.append(cr)
        if first or remote is None:
            # the baseline is assessed at once: a tolerance target needs its accuracy
            assess_now(cr)
            if cand.name == "baseline":
                assert cr.quality is not None
                ctx.baseline = cand
                ctx.baseline_test_accuracy = cr.quality.accuracy
                result.target_accuracy = ctx.target_accuracy
        else:
            pending.append((cr, remote.remote(cand, data.test, pool)))
        return cr

    try:
        with thread_limit(train_threads):
            for i, (rspec, recipe) in enumerate(zip(task.recipes, recipes, strict=True)):
                emit("recipe", {"index": i, "total": len(recipes), "recipe": rspec.recipe})
                try:
                    made = recipe.run(ctx)
                except GreenForgeError as exc:
                    if i == 0:
                        raise
                    result.failures.append({"recipe": rspec.recipe, "error": str(exc)})
                    emit("failed", {"recipe": rspec.recipe, "error": str(exc)})
                    save()
                    continue
                for cand in made:
                    add(cand, i == 0)
                    save()
            if "onnxruntime" in runtimes:
                skipped = _export_to_onnx(ctx, result, pool, add, emit)
                result.serving = dataclasses.replace(result.serving, skipped=skipped)
                save()
        if pending:
            import ray

            for cr, ref in pending:
                q, taken = ray.get(ref)
                ctx.measurements.extend(taken)
                cr.quality = q
                emit("evaluated", {"name": cr.name, "accuracy": q.accuracy})
                save()
        _measure_inference(result, ctx, metering, pool, config, emit)
        save()
        _decide(result, ctx)
        save()
        if out_dir is not None:
            output.write_outputs(out_dir, result, ctx)
            save()
    except BaseException:
        result.status = "failed"
        result.reason = "the search stopped with an error; results so far are kept"
        save()
        raise
    return result


def _warnings(settings: Settings) -> list[str]:
    """The shared-host warnings ``greenforge doctor`` gives, for the forge's output."""
    from greenforge.meters.select import attribution_warning

    warning = attribution_warning(settings)
    if warning is None:
        return []
    return [f"{warning} (the forge itself charges only its own process's CPU time)"]


def _exportable(c: Candidate) -> bool:
    from torch import nn

    return c.runtime == "torch" and c.precision == "fp32" and isinstance(c.model, nn.Module)


def _export_to_onnx(
    ctx: ForgeContext,
    result: ForgeResult,
    pool: torch.Tensor,
    add: Callable[[Candidate, bool], CandidateResult],
    emit: EventFn,
) -> tuple[str, ...]:
    """Export every fp32 torch candidate to ONNX Runtime as ``<name>+onnx`` (the conversion is
    measured as its own cost); returns the reasons for candidates not exported."""
    from greenforge.forge.onnx import export_fp32, load_tooling

    skipped: list[str] = []
    for cr in list(result.results):
        c = cr.candidate
        if c.runtime != "torch":
            continue
        if c.precision.startswith("bf16"):
            skipped.append(f"{c.name}: {BF16_ORT_SKIP}")
            continue
        if not _exportable(c):
            continue
        name = f"{c.name}+onnx"
        if name in ctx.candidates:
            continue
        path = ctx.scratch(name) / "model.onnx"

        def export(model: Any = c.model, path: Path = path) -> Any:
            return export_fp32(model, pool[:2], path)

        try:
            ctx.load_tooling("onnx", load_tooling)
            model, m = ctx.measure(f"convert:{name}", export)
        except Exception as exc:  # an export failure loses one runtime, not the search
            skipped.append(f"{c.name}: ONNX export failed ({type(exc).__name__}: {exc})")
            emit("failed", {"recipe": f"onnx-export:{c.name}", "error": str(exc)})
            continue
        add(
            Candidate(
                name=name,
                recipe="onnx-export",
                config={"source": c.name, "runtime": "onnxruntime"},
                model=model,
                train=m,
                parent=c.name,
                precision="fp32",
                runtime="onnxruntime",
                notes=(f"the same fp32 weights as {c.name!r}, served by ONNX Runtime",),
                epochs_run=c.epochs_run,
                val_accuracy=c.val_accuracy,
                flops_weight=c.flops_weight,
            ),
            False,
        )
    return tuple(skipped)


def _serving_model(model: Any, threads: int) -> Any:
    from greenforge.forge.onnx import OnnxModel

    return model.with_threads(threads) if isinstance(model, OnnxModel) else model


def _measure_inference(
    result: ForgeResult,
    ctx: ForgeContext,
    metering: Metering,
    pool: torch.Tensor,
    config: ProtocolConfig,
    emit: EventFn,
) -> None:
    """Measure every assessed candidate's inference together (interleaved) and attach it."""
    todo = [r for r in result.results if r.quality is not None]
    if not todo:
        return
    models = {r.name: _serving_model(r.candidate.model, result.serving.threads) for r in todo}
    control = _control_copy(result)
    if control is not None:
        models[control[0]] = _serving_model(control[1], result.serving.threads)
    emit("measure", {"candidates": len(models), "budget_s": config.budget_s})
    run, m = ctx.measure(
        MEASUREMENT_STEP,
        lambda: measure_serving(
            models,
            pool,
            result.serving.batch_sizes,
            metering.attribution,
            threads=result.serving.threads,
            config=config,
        ),
    )
    bs = ctx.task.serving_batch_size
    for r in todo:
        assert r.quality is not None
        r.evaluation = Evaluation(r.quality, run.costs[(r.name, 1)], run.costs[(r.name, bs)])
    result.noise = run.noise
    rel_low, rel_high = _single_shot_spread(run.run)
    control_of = control_spread = None
    if control is not None:
        control_of = control[0].removesuffix(CONTROL_SUFFIX)
        control_spread = max(
            _relative_difference(
                run.costs[(control_of, b)].energy_j_per_1k,
                run.costs[(control[0], b)].energy_j_per_1k,
            )
            for b in dict.fromkeys(result.serving.batch_sizes)
        )
    result.protocol = ProtocolReport(
        rounds=run.run.rounds,
        stopped=run.run.stopped,
        wall_s=run.run.wall_s,
        repeat_s=config.repeat_s,
        warmup_s=config.warmup_s,
        budget_s=config.budget_s,
        rule=(
            f"{len(run.run.costs)} (candidate, batch size) workloads measured once per round, "
            f"each round in a fresh seeded random order, fixed work per repeat "
            f"(~{config.repeat_s:g} CPU s) after an unmeasured warm-up (~{config.warmup_s:g} "
            f"CPU s, at least one unit), repeat sizes from the median of {SIZE_ROUNDS} "
            "interleaved sizing rounds (discarded as the warm-up), "
            f"{config.min_rounds}-{config.max_rounds} rounds ({config.busy_max_rounds} when "
            f"busy) until every 95 % bootstrap interval half-width < "
            f"{config.rel_half_width:.0%} of the estimate, or {config.budget_s:g} CPU s spent "
            f"(wall limit {config.wall_limit_s:g} s); estimate = J/1k at the median round "
            "(median polish of log costs over workloads x rounds)"
            + (
                f"; self-check: an independent copy of {control_of!r} measured in the same "
                f"rounds must agree within {CONTROL_TOLERANCE:.0%}"
                if control_of is not None
                else ""
            )
        ),
        control_of=control_of,
        control_spread=control_spread,
        single_shot_rel_low=rel_low,
        single_shot_rel_high=rel_high,
    )
    emit("measured", {"rounds": run.run.rounds, "busy": run.noise.busy, "energy_j": m.energy_j})


def _single_shot_spread(run: InterleavedRun) -> tuple[float, float]:
    """How far one measurement falls below/above its workload's median (fractions, 95 %):
    percentiles of every repeat's cost relative to its median. Not widened when the machine was
    busy: the repeats were measured under that same load, so their spread already shows it."""
    import numpy as np

    rel = [
        np.asarray(c.energy_j_per_1k) / med
        for c in run.costs.values()
        if c.energy_j_per_1k and (med := float(np.median(c.energy_j_per_1k))) > 0
    ]
    if not rel:
        return 0.0, 0.0
    pooled = np.concatenate(rel)
    low, high = np.percentile(pooled, [2.5, 97.5])
    return min(max(1.0 - float(low), 0.0), 0.99), max(float(high) - 1.0, 0.0)


def _control_copy(result: ForgeResult) -> tuple[str, Any] | None:
    """An independent copy of the baseline (its own weights' memory), measured beside it as the
    protocol's self-check; ``None`` when the baseline cannot be copied."""
    base = result.baseline
    if base is None or base.quality is None:
        return None
    try:
        return base.name + CONTROL_SUFFIX, copy.deepcopy(base.candidate.model)
    except Exception:  # a model that cannot be copied only loses the self-check
        return None


def _relative_difference(a: float, b: float) -> float:
    """|a - b| relative to the smaller of the two (0 when both are 0)."""
    low = min(abs(a), abs(b))
    return 0.0 if a == b else (abs(a - b) / low if low > 0 else math.inf)


def _check_input_shape(ctx: ForgeContext, pool: torch.Tensor) -> None:
    from greenforge.errors import DataError

    try:
        model = ctx.build_model()
        with torch.no_grad():
            out = model.eval()(pool[:2])
    except GreenForgeError:
        raise
    except RuntimeError as exc:
        raise DataError(
            f"the {ctx.task.architecture!r} model does not accept inputs of shape "
            f"{list(ctx.input_shape)}: {exc}. Fix `input_shape` in the data table or the model options."
        ) from None
    if out.shape[-1] != ctx.num_classes:
        raise DataError(
            f"the model outputs {out.shape[-1]} classes but the data has {ctx.num_classes}; make "
            "the model factory use num_classes."
        )


def _summary(ctx: ForgeContext, started: float) -> SearchSummary:
    tot = total([m for _, m in ctx.measurements])
    meas = total([m for label, m in ctx.measurements if label == MEASUREMENT_STEP])
    wall = time.time() - started
    return SearchSummary(
        measurement_energy_j=meas.energy_j,
        measurement_co2e_g=meas.co2e_g,
        measurement_note=MEASUREMENT_NOTE,
        total_energy_j=tot.energy_j,
        total_energy_low_j=tot.low_j,
        total_energy_high_j=tot.high_j,
        total_co2e_g=tot.co2e_g,
        measured_s=tot.duration_s,
        wall_s=wall,
        unmeasured_s=max(wall - tot.duration_s, 0.0),
        methods=tot.method,
        energy_basis=energy_basis(tot.method),
        intensity_source=tot.intensity_source,
        steps=tuple(
            SearchStep(label, m.energy_j, m.co2e_g, m.duration_s, m.method)
            for label, m in ctx.measurements
        ),
    )


def _account(result: ForgeResult, ctx: ForgeContext, started: float) -> None:
    """Fill lineage costs, per-inference CO2e with intervals, lifetimes and the search totals
    (pure sums)."""
    result.search = _summary(ctx, started)
    total_g = result.search.total_co2e_g
    n = result.task.spec.expected_inferences
    intensity, pue = result.deploy_intensity_g_per_kwh, result.pue
    for r in result.results:
        r.train_co2e_g = sum(c.train_co2e_g for c in ctx.lineage(r.name))
        target = result.target_accuracy
        r.meets_target = target is not None and r.accuracy >= target
        r.below_target = r.quality is not None and target is not None and not r.meets_target
        if r.evaluation is None:
            continue
        s = r.evaluation.serving

        def g(j_per_1k: float) -> float:
            return co2e_g(j_per_1k, intensity, pue)

        r.inference_co2e_g_per_1k = g(s.energy_j_per_1k)
        r.inference_co2e_g_per_1k_low = g(s.energy_j_per_1k_low)
        r.inference_co2e_g_per_1k_high = g(s.energy_j_per_1k_high)
        r.search_share_co2e_g = (
            max(total_g - r.train_co2e_g, 0.0) if r.name == result.chosen else 0.0
        )
        r.lifetime_co2e_g = lifetime_co2e_g(
            r.train_co2e_g, r.inference_co2e_g_per_1k, n, r.search_share_co2e_g
        )
        # training and conversion were measured once: they carry the single-shot spread
        down = 1.0 - result.protocol.single_shot_rel_low
        up = 1.0 + result.protocol.single_shot_rel_high
        train_low, train_high = _train_bounds_g(ctx, r.name)
        r.lifetime_co2e_low_g = lifetime_co2e_g(train_low * down, r.inference_co2e_g_per_1k_low, n)
        r.lifetime_co2e_high_g = lifetime_co2e_g(train_high * up, r.inference_co2e_g_per_1k_high, n)
        r.lifetime_co2e_spread_low_g = lifetime_co2e_g(
            r.train_co2e_g * down, g(s.spread_low_j_per_1k), n
        )
        r.lifetime_co2e_spread_high_g = lifetime_co2e_g(
            r.train_co2e_g * up, g(s.spread_high_j_per_1k), n
        )
    done = [r for r in result.results if r.evaluation is not None]
    if done:
        mask = pareto_front([r.accuracy for r in done], [r.ranking_co2e_g for r in done])
        for r, p in zip(done, mask, strict=True):
            r.pareto = bool(p)
    result.headline = _headline(result)


def _train_bounds_g(ctx: ForgeContext, name: str) -> tuple[float, float]:
    """Low and high training-lineage CO2e (g): each step's CO2e scaled by its meter bounds."""
    low = high = 0.0
    for c in ctx.lineage(name):
        m = c.train
        if m is None:
            continue
        if m.energy_j > 0:
            low += m.co2e_g * m.low_j / m.energy_j
            high += m.co2e_g * m.high_j / m.energy_j
        else:
            low, high = low + m.co2e_g, high + m.co2e_g
    return low, high


def _headline(result: ForgeResult) -> Headline | None:
    """Baseline (alone) / chosen (with the search) lifetime, with the measurement interval and
    the runtime's share kept apart."""
    base = result.baseline
    if base is None or base.evaluation is None or result.chosen is None:
        return None
    ch = result.result(result.chosen)
    if ch.evaluation is None:
        return None
    share = ch.search_share_co2e_g
    ratio, low, high = ratio_interval(
        base.ranking_co2e_g,
        base.lifetime_co2e_spread_low_g,
        base.lifetime_co2e_spread_high_g,
        ch.lifetime_co2e_g,
        ch.lifetime_co2e_spread_low_g + share * (1.0 - result.protocol.single_shot_rel_low),
        ch.lifetime_co2e_spread_high_g + share * (1.0 + result.protocol.single_shot_rel_high),
    )
    same = ch.candidate.runtime == base.candidate.runtime
    onnx = result.find("baseline+onnx")
    runtime_factor = compression = None
    if onnx is not None and onnx.evaluation is not None and onnx.ranking_co2e_g > 0:
        runtime_factor = base.ranking_co2e_g / onnx.ranking_co2e_g
    ref = base if same else onnx
    if ref is not None and ref.evaluation is not None and ch.lifetime_co2e_g > 0:
        compression = ref.ranking_co2e_g / ch.lifetime_co2e_g
    if same:
        note = f"baseline and {ch.name!r} both run in {base.candidate.runtime}"
    elif compression is not None and runtime_factor is not None:
        note = (
            f"baseline runs in {base.candidate.runtime}, {ch.name!r} in "
            f"{ch.candidate.runtime}: the runtime alone (baseline -> baseline+onnx) gives "
            f"{runtime_factor:.2f}x, compression in the same runtime (baseline+onnx -> "
            f"{ch.name}) {compression:.2f}x"
        )
    else:
        note = (
            f"baseline runs in {base.candidate.runtime}, {ch.name!r} in "
            f"{ch.candidate.runtime}: the ratio includes the runtime's difference"
        )
    return Headline(ratio, low, high, same, note, runtime_factor, compression)


def _decide(result: ForgeResult, ctx: ForgeContext) -> None:
    _account(result, ctx, time.time())
    done = [r for r in result.results if r.evaluation is not None]
    target = result.target_accuracy
    if target is None or not done:
        result.status = "no-candidate"
        result.reason = "no candidate was evaluated"
        return
    evs = [r.evaluation for r in done]
    choice = choose(
        [r.name for r in done],
        [r.accuracy for r in done],
        [r.ranking_co2e_g for r in done],
        target,
        low_g=[r.lifetime_co2e_spread_low_g for r in done],
        high_g=[r.lifetime_co2e_spread_high_g for r in done],
        flops=[e.precision_weighted_flops if e is not None else math.inf for e in evs],
        size_bytes=[e.size_bytes if e is not None else math.inf for e in evs],
    )
    if choice.index is None:
        result.status = "no-candidate"
        result.chosen = None
        result.reason = choice.reason
        result.closest = [done[i].name for i in choice.closest]
        result.decision = Decision()
    else:
        result.status = "chosen"
        result.chosen = done[choice.index].name
        result.decision = Decision(
            within_noise=choice.within_noise,
            tie_break=choice.tie_break,
            contenders=tuple(done[i].name for i in choice.contenders),
        )
        result.reason = choice.reason + (
            ". The rest of the search's CO2e is then charged to it as its search share."
        )
    _account(result, ctx, time.time())


def _ray_evaluator(ray_init: Mapping[str, Any] | None) -> Any:
    # without an address: a local Ray on 127.0.0.1 only, no dashboard (greenforge.ray_local)
    from greenforge.ray_local import init_ray

    kwargs: dict[str, Any] = {"log_to_driver": False, **(ray_init or {})}
    ray = init_ray(kwargs.pop("address", None), what="--executor ray", **kwargs)
    return ray.remote(num_cpus=1)(_evaluate_payload)


def result_json(path: Path) -> dict[str, Any]:
    """Read a forge.json."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
