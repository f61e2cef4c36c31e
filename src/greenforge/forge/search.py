"""The forge search: run the recipes, measure every candidate, choose, and write the results.

:func:`run_forge` is the whole job behind ``greenforge forge``. It writes ``forge.json`` after
every step (partial results are kept if a later step fails) and returns a :class:`ForgeResult`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from greenforge.config import Settings
from greenforge.errors import ConfigError, GreenForgeError
from greenforge.forge.datasets import TaskData, load_data, load_example
from greenforge.forge.evaluate import Evaluation, evaluate
from greenforge.forge.measure import Measurement, deployment_intensity, energy_basis, total
from greenforge.forge.pareto import choose, lifetime_co2e_g, pareto_front
from greenforge.forge.recipes.base import Candidate, ForgeContext, Recipe, create_recipe
from greenforge.forge.task import ForgeTask
from greenforge.units import co2e_g

Executor = Literal["local", "ray"]
EXECUTORS: tuple[str, ...] = ("local", "ray")
EventFn = Callable[[str, Mapping[str, Any]], None]
SCHEMA_VERSION = 1


@dataclasses.dataclass
class CandidateResult:
    """A candidate with its evaluation and accounting."""

    candidate: Candidate
    evaluation: Evaluation | None = None
    lineage: tuple[str, ...] = ()
    train_co2e_g: float = 0.0
    inference_co2e_g_per_1k: float = float("nan")
    search_share_co2e_g: float = 0.0
    lifetime_co2e_g: float = float("nan")
    meets_target: bool = False
    pareto: bool = False
    error: str | None = None

    @property
    def name(self) -> str:
        return self.candidate.name

    @property
    def accuracy(self) -> float:
        return float("nan") if self.evaluation is None else self.evaluation.accuracy

    def to_dict(self, expected_inferences: int) -> dict[str, Any]:
        c = self.candidate
        out: dict[str, Any] = {
            "name": c.name,
            "recipe": c.recipe,
            "config": dict(c.config),
            "parent": c.parent,
            "lineage": list(self.lineage),
            "precision": c.precision,
            "runtime": c.runtime,
            "notes": list(c.notes),
            "epochs_run": c.epochs_run,
            "val_accuracy": c.val_accuracy,
            "accuracy": self.accuracy,
            "own_train": None if c.train is None else c.train.to_dict(),
            "own_train_co2e_g": c.train_co2e_g,
            "train_co2e_g": self.train_co2e_g,
            "inference_co2e_g_per_1k": self.inference_co2e_g_per_1k,
            "inference_lifetime_co2e_g": expected_inferences
            / 1000.0
            * self.inference_co2e_g_per_1k,
            "search_share_co2e_g": self.search_share_co2e_g,
            "lifetime_co2e_g": self.lifetime_co2e_g,
            "meets_target": self.meets_target,
            "pareto": self.pareto,
            "error": self.error,
        }
        if self.evaluation is not None:
            out.update(self.evaluation.to_dict())
            out["inference_energy_j_per_1k"] = self.evaluation.serving.energy_j_per_1k
            out["latency_s_per_1k"] = self.evaluation.serving.latency_s_per_1k
        return out


@dataclasses.dataclass
class ForgeResult:
    """The outcome of a search."""

    task: ForgeTask
    data: TaskData
    results: list[CandidateResult]
    status: Literal["running", "chosen", "no-candidate", "failed"]
    target_accuracy: float | None
    chosen: str | None
    reason: str
    closest: list[str]
    deploy_zone: str
    deploy_intensity_g_per_kwh: float
    deploy_intensity_source: str
    pue: float
    search: dict[str, Any]
    out_dir: Path | None
    executor: str
    failures: list[dict[str, str]]
    files: dict[str, str] = dataclasses.field(default_factory=dict)
    training_zone: str | None = None
    """Where the search ran (its training CO2e uses this zone's intensity)."""

    def result(self, name: str) -> CandidateResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def baseline(self) -> CandidateResult | None:
        return next((r for r in self.results if r.name == "baseline"), None)

    def comparison(self) -> dict[str, Any]:
        """Chosen (with the whole search charged to it) vs the fp32 baseline alone."""
        base = self.baseline
        out: dict[str, Any] = {}
        if base is None or base.evaluation is None:
            return out
        out["baseline_lifetime_co2e_g"] = base.train_co2e_g + (
            self.task.spec.expected_inferences / 1000.0 * base.inference_co2e_g_per_1k
        )
        out["baseline_accuracy"] = base.accuracy
        if self.chosen is not None:
            ch = self.result(self.chosen)
            out["chosen_lifetime_co2e_g"] = ch.lifetime_co2e_g
            out["lifetime_reduction_factor"] = (
                out["baseline_lifetime_co2e_g"] / ch.lifetime_co2e_g
                if ch.lifetime_co2e_g > 0
                else float("inf")
            )
            out["accuracy_loss_points"] = 100.0 * (base.accuracy - ch.accuracy)
        int8 = [
            r
            for r in self.results
            if r.evaluation is not None
            and r.candidate.precision.startswith("int8")
            and r.candidate.parent == "baseline"
        ]
        if int8:
            q = int8[0]
            assert q.evaluation is not None
            assert base.evaluation is not None
            out["int8_candidate"] = q.name
            out["int8_speedup_batch1"] = (
                base.evaluation.batch1.latency_s_per_1k / q.evaluation.batch1.latency_s_per_1k
            )
            out["int8_speedup_serving"] = (
                base.evaluation.serving.latency_s_per_1k / q.evaluation.serving.latency_s_per_1k
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        spec = self.task.spec
        return {
            "schema": SCHEMA_VERSION,
            "status": self.status,
            "task": {
                "name": spec.name,
                "target_accuracy": spec.target_accuracy,
                "tolerance": spec.tolerance,
                "expected_inferences": spec.expected_inferences,
                "serving_batch_size": spec.serving_batch_size,
                "epochs": spec.epochs,
                "batch_size": spec.batch_size,
                "lr": spec.lr,
                "seed": spec.seed,
                "architecture": spec.architecture,
                "architecture_options": {
                    k: list(v) if isinstance(v, tuple) else v
                    for k, v in spec.architecture_options.items()
                },
                "recipes": [r.to_dict() for r in self.task.recipes],
            },
            "data": {
                "name": self.data.name,
                "source": self.data.source,
                "num_classes": self.data.num_classes,
                "input_shape": list(self.data.input_shape),
                "train": len(self.data.train),  # type: ignore[arg-type]
                "val": len(self.data.val),  # type: ignore[arg-type]
                "test": len(self.data.test),  # type: ignore[arg-type]
            },
            "target_accuracy": self.target_accuracy,
            "deployment": {
                "zone": self.deploy_zone,
                "intensity_g_per_kwh": self.deploy_intensity_g_per_kwh,
                "intensity_source": self.deploy_intensity_source,
                "pue": self.pue,
                "expected_inferences": spec.expected_inferences,
                "serving_batch_size": spec.serving_batch_size,
            },
            "training": {"zone": self.training_zone},
            "accounting": (
                "lifetime_co2e_g = train_co2e_g (the candidate's and its ancestors' measured "
                "training/conversion) + search_share_co2e_g (the rest of the search, charged to "
                "the chosen model only) + expected_inferences/1000 x inference_co2e_g_per_1k "
                "(measured at the serving batch size, deployment-zone intensity)"
            ),
            "baseline": "baseline",
            "chosen": self.chosen,
            "reason": self.reason,
            "closest": self.closest,
            "candidates": [r.to_dict(spec.expected_inferences) for r in self.results],
            "failures": self.failures,
            "search": self.search,
            "comparison": self.comparison(),
            "executor": self.executor,
            "machine": machine_description(),
            "files": self.files,
        }


def machine_description() -> str:
    """CPU model and core count (for the model card's hardware_used)."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} logical CPUs)"


def load_task_data(task: ForgeTask) -> TaskData:
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
    candidate: Candidate,
    test: Any,
    pool: torch.Tensor,
    serving_batch_size: int,
    settings: Settings,
    min_duration_s: float,
    measure_kwargs: Mapping[str, Any],
) -> tuple[Evaluation, list[tuple[str, Measurement]]]:
    """Evaluate one candidate, returning the evaluation and the measurements it took."""
    from torch.utils.data import DataLoader

    from greenforge.forge.measure import measure

    taken: list[tuple[str, Measurement]] = []

    def mfn(label: str, fn: Callable[[], Any]) -> tuple[Any, Measurement]:
        res, m = measure(fn, settings, name=label, **dict(measure_kwargs))
        taken.append((label, m))
        return res, m

    ev = evaluate(
        candidate,
        DataLoader(test, batch_size=512),
        pool,
        serving_batch_size,
        settings,
        min_duration_s=min_duration_s,
        measure_fn=mfn,
    )
    return ev, taken


def run_forge(
    task: ForgeTask,
    settings: Settings,
    *,
    out_dir: Path | None = None,
    executor: Executor = "local",
    measure_kwargs: Mapping[str, Any] | None = None,
    min_duration_s: float = 0.5,
    on_event: EventFn | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    data: TaskData | None = None,
    ray_init: Mapping[str, Any] | None = None,
    threads: int | None = None,
) -> ForgeResult:
    """Run the search for ``task`` and write the outputs to ``out_dir`` (when given).

    ``threads`` sets torch's intra-op threads for the search only (restored afterwards); on a
    busy machine fewer threads than cores avoids oversubscription.
    """

    def search() -> ForgeResult:
        return _run_forge(
            task,
            settings,
            out_dir,
            executor,
            measure_kwargs,
            min_duration_s,
            on_event,
            progress,
            data,
            ray_init,
        )

    if threads is None:
        return search()
    if threads < 1:
        raise ConfigError(f"threads {threads!r} must be >= 1.")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return search()
    finally:
        torch.set_num_threads(before)


def _run_forge(
    task: ForgeTask,
    settings: Settings,
    out_dir: Path | None,
    executor: Executor,
    measure_kwargs: Mapping[str, Any] | None,
    min_duration_s: float,
    on_event: EventFn | None,
    progress: Callable[[str, int, int], None] | None,
    data: TaskData | None,
    ray_init: Mapping[str, Any] | None,
) -> ForgeResult:
    if executor not in EXECUTORS:
        from greenforge.errors import UnknownNameError

        raise UnknownNameError("executor", executor, EXECUTORS)
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
    mkw = dict(measure_kwargs or {})
    if "intensity_g_per_kwh" in mkw:
        deploy_i, deploy_src = (
            float(mkw["intensity_g_per_kwh"]),
            str(mkw.get("intensity_source", "injected")),
        )
    else:
        deploy_i, deploy_src = deployment_intensity(run_settings, deploy_zone)
    pue = settings.pue if settings.pue is not None else 1.0
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
        measure_kwargs=mkw,
        progress=progress,
    )
    pool = _pool(data)
    _check_input_shape(ctx, pool)
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
        deploy_intensity_g_per_kwh=deploy_i,
        deploy_intensity_source=deploy_src,
        pue=pue,
        search={},
        out_dir=out_dir,
        executor=executor,
        failures=[],
        training_zone=run_settings.zone,
    )
    from greenforge.forge import output

    def save() -> None:
        _account(result, ctx, started)
        if out_dir is not None:
            output.write_forge_json(out_dir, result)

    eval_args = (data.test, pool, task.spec.serving_batch_size, run_settings, min_duration_s, mkw)
    remote: Any = None
    pending: list[tuple[CandidateResult, Any]] = []
    if executor == "ray":
        remote = _ray_evaluator(ray_init)

    def evaluate_now(cr: CandidateResult) -> None:
        ev, taken = _evaluate_payload(cr.candidate, *eval_args)
        ctx.measurements.extend(taken)
        cr.evaluation = ev
        emit("evaluated", {"name": cr.name, "accuracy": ev.accuracy})

    try:
        for i, (spec, recipe) in enumerate(zip(task.recipes, recipes, strict=True)):
            emit("recipe", {"index": i, "total": len(recipes), "recipe": spec.recipe})
            try:
                made = recipe.run(ctx)
            except GreenForgeError as exc:
                if i == 0:
                    raise
                result.failures.append({"recipe": spec.recipe, "error": str(exc)})
                emit("failed", {"recipe": spec.recipe, "error": str(exc)})
                save()
                continue
            for cand in made:
                ctx.add(cand)
                cr = CandidateResult(cand, lineage=tuple(c.name for c in ctx.lineage(cand.name)))
                result.results.append(cr)
                if i == 0 or remote is None:
                    # the baseline is evaluated at once: a tolerance target needs its accuracy
                    evaluate_now(cr)
                    if cand.name == "baseline":
                        assert cr.evaluation is not None
                        ctx.baseline = cand
                        ctx.baseline_test_accuracy = cr.evaluation.accuracy
                        result.target_accuracy = ctx.target_accuracy
                else:
                    pending.append((cr, remote.remote(cand, *eval_args)))
                save()
        if pending:
            import ray

            for cr, ref in pending:
                ev, taken = ray.get(ref)
                ctx.measurements.extend(taken)
                cr.evaluation = ev
                emit("evaluated", {"name": cr.name, "accuracy": ev.accuracy})
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


def _account(result: ForgeResult, ctx: ForgeContext, started: float) -> None:
    """Fill lineage costs, per-inference CO2e, lifetimes and the search totals (pure sums)."""
    steps = [(label, m) for label, m in ctx.measurements]
    tot = total([m for _, m in steps])
    wall = time.time() - started
    result.search = {
        "total_energy_j": tot.energy_j,
        "total_energy_low_j": tot.low_j,
        "total_energy_high_j": tot.high_j,
        "total_co2e_g": tot.co2e_g,
        "measured_s": tot.duration_s,
        "wall_s": wall,
        "unmeasured_s": max(wall - tot.duration_s, 0.0),
        "methods": tot.method,
        "energy_basis": energy_basis(tot.method),
        "intensity_source": tot.intensity_source,
        "steps": [
            {
                "label": label,
                "energy_j": m.energy_j,
                "co2e_g": m.co2e_g,
                "duration_s": m.duration_s,
                "method": m.method,
            }
            for label, m in steps
        ],
        "note": "every training, conversion and evaluation step is metered with the methods "
        "named (energy_basis says whether they are hardware readings or model:* estimates); "
        "unmeasured_s is the wall time outside those steps (data loading, exports, bookkeeping)",
    }
    n = result.task.spec.expected_inferences
    for r in result.results:
        r.train_co2e_g = sum(c.train_co2e_g for c in ctx.lineage(r.name))
        if r.evaluation is not None:
            r.inference_co2e_g_per_1k = co2e_g(
                r.evaluation.serving.energy_j_per_1k,
                result.deploy_intensity_g_per_kwh,
                result.pue,
            )
            r.search_share_co2e_g = (
                max(tot.co2e_g - r.train_co2e_g, 0.0) if r.name == result.chosen else 0.0
            )
            r.lifetime_co2e_g = lifetime_co2e_g(
                r.train_co2e_g, r.inference_co2e_g_per_1k, n, r.search_share_co2e_g
            )
        target = result.target_accuracy
        r.meets_target = target is not None and r.accuracy >= target
    done = [r for r in result.results if r.evaluation is not None]
    if done:
        mask = pareto_front(
            [r.accuracy for r in done], [r.lifetime_co2e_g - r.search_share_co2e_g for r in done]
        )
        for r, p in zip(done, mask, strict=True):
            r.pareto = bool(p)


def _decide(result: ForgeResult, ctx: ForgeContext) -> None:
    _account(result, ctx, time.time())
    done = [r for r in result.results if r.evaluation is not None]
    target = result.target_accuracy
    if target is None or not done:
        result.status = "no-candidate"
        result.reason = "no candidate was evaluated"
        return
    choice = choose(
        [r.name for r in done],
        [r.accuracy for r in done],
        [r.lifetime_co2e_g for r in done],
        target,
    )
    if choice.index is None:
        result.status = "no-candidate"
        result.chosen = None
        result.reason = choice.reason
        result.closest = [done[i].name for i in choice.closest]
    else:
        result.status = "chosen"
        result.chosen = done[choice.index].name
        result.reason = choice.reason + (
            ". The rest of the search's CO2e is then charged to it as its search share."
        )


def _ray_evaluator(ray_init: Mapping[str, Any] | None) -> Any:
    try:
        import ray
    except ImportError:
        from greenforge.errors import MissingExtraError

        raise MissingExtraError("ray", "ray", "--executor ray") from None
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        kwargs.update(ray_init or {})
        if "address" not in kwargs and os.environ.get("RAY_ADDRESS"):
            kwargs["address"] = os.environ["RAY_ADDRESS"]
        ray.init(**kwargs)
    return ray.remote(num_cpus=1)(_evaluate_payload)


def result_json(path: Path) -> dict[str, Any]:
    """Read a forge.json."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
