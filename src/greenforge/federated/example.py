"""The example that proves the federated features: FedAvg with random clients vs carbon-aware
selection vs carbon-aware selection with slack, on the same non-IID federation.

``greenforge federated --example digits`` (or ``mnist5k``): ``clients`` clients (default 16,
one per zone with an embedded hourly profile, round-robin beyond), each holding a
Dirichlet(``alpha``) label-skewed, seeded share of the training split; a tiny MLP; each arm
runs ``rounds`` rounds on Flower's simulation engine (Ray started on 127.0.0.1, no dashboard,
``cpus`` CPUs) or in this process (``backend="inprocess"``), under one simulated clock (round
``r`` at hour ``r - 1`` after ``start``) and the embedded 2021-2023 hourly profiles. The global
model is evaluated on the test split after every round (server side, not part of training CO2e).

Every arm trains the same way (local SGD, FedAvgM on the server with ``server_momentum``).
Reported per arm: accuracy per round, cumulative training CO2e (clients' compute + network +
server aggregation, with bounds) per round, rounds and CO2e to the target accuracy (by default
``target_fraction`` x the best ``smooth_rounds``-round trailing mean of FedAvg-random, which
is the mean of ``random_repeats`` runs with other random picks), judged on the trailing mean
and, next to it, on the raw first hit; participation per client and per zone, and the ledger
file.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from greenforge.errors import ConfigError
from greenforge.federated.ledger import Ledger

if TYPE_CHECKING:
    from flwr.app import Context, Message
    from flwr.clientapp import ClientApp

    from greenforge.config import Settings

EXAMPLES = ("digits", "mnist5k")
MAX_ROUNDS_RATIO = 1.10
"""Issue 11: the carbon-aware arms reach the target within 10 % more rounds than FedAvg ..."""
MIN_SAVING = 0.30
"""... with >= 30 % less training CO2e to get there."""
ARMS = ("fedavg-random", "carbon-aware", "carbon-aware+slack")
DEFAULT_START = "2023-03-06T00:00:00Z"
"""Simulated start (a Monday in March 2023, inside the embedded 2021-2023 profile years)."""


@dataclasses.dataclass(frozen=True)
class ExampleConfig:
    """Everything one comparison depends on (JSON round-trip via ``to_dict``)."""

    example: str = "digits"
    clients: int = 32
    """Two per zone with an embedded hourly profile by default."""
    clients_per_round: int = 8
    rounds: int = 30
    alpha: float = 0.5
    """Dirichlet concentration of the label skew (smaller = more non-IID)."""
    seed: int = 0
    local_epochs: int = 2
    batch_size: int = 16
    lr: float = 0.05
    hidden: int = 64
    server_momentum: float = 0.7
    """Server-side momentum (FedAvgM, Hsu et al. 2019) of every arm; 0 = plain FedAvg. On
    label-skewed clients the average of 8 picks jumps towards their classes; momentum over
    rounds damps that swing (and is the same for all arms)."""
    server_lr: float = 1.0
    min_share: float = 0.1
    rule: str = "budget"
    fairness_alpha: float = 1.0
    blocklist_factor: float = 1.5
    budget_share: float = 0.55
    slack_h: float = 6.0
    forecaster: str = "embedded-profile"
    start_s: float = 1678060800.0  # DEFAULT_START
    server_zone: str = "DE"
    target: float | None = None
    """Target test accuracy; None = ``target_fraction`` x the best accuracy of FedAvg-random."""
    target_fraction: float = 0.98
    random_repeats: int = 1
    """FedAvg-random runs this many times (other seeds of its random picks only); the
    baseline is their mean accuracy and CO2e curves, so one lucky or unlucky draw of clients
    does not set the bar."""
    smooth_rounds: int = 3
    """Rounds to target are judged on the trailing mean of this many rounds' test accuracy
    (1 = the raw first hit), so one lucky round does not count as reaching the target; at
    most ``rounds``."""

    @property
    def window(self) -> int:
        """The trailing-mean window actually used: ``smooth_rounds``, at most ``rounds``."""
        return min(self.smooth_rounds, self.rounds)

    backend: str = "ray"
    cpus: int = 2

    def __post_init__(self) -> None:
        if self.example not in EXAMPLES:
            raise ConfigError(
                f"unknown example {self.example!r}: use one of {', '.join(EXAMPLES)}."
            )
        from greenforge.grid.profile import profile_zones

        n_zones = len(profile_zones())
        if self.clients < n_zones:
            raise ConfigError(
                f"bad clients {self.clients!r}: use at least {n_zones}, one per zone with an "
                "embedded hourly profile."
            )
        if not 1 <= self.clients_per_round <= self.clients:
            raise ConfigError(
                f"bad clients_per_round {self.clients_per_round!r}: use 1..{self.clients}."
            )
        if self.rounds < 1:
            raise ConfigError(f"bad rounds {self.rounds!r}: use >= 1.")
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ConfigError(f"bad Dirichlet alpha {self.alpha!r}: use a value > 0 (e.g. 0.5).")
        if self.backend not in ("ray", "inprocess"):
            raise ConfigError(f"bad backend {self.backend!r}: use 'ray' or 'inprocess'.")
        if self.cpus < 1:
            raise ConfigError(f"bad cpus {self.cpus!r}: use >= 1.")
        if not (math.isfinite(self.server_momentum) and 0 <= self.server_momentum < 1):
            raise ConfigError(
                f"bad server_momentum {self.server_momentum!r}: use 0 (plain FedAvg) to < 1."
            )
        if not (math.isfinite(self.server_lr) and self.server_lr > 0):
            raise ConfigError(f"bad server_lr {self.server_lr!r}: use a value > 0 (1 = FedAvg).")
        if self.random_repeats < 1:
            raise ConfigError(
                f"bad random_repeats {self.random_repeats!r}: use >= 1 FedAvg-random runs."
            )
        if self.smooth_rounds < 1:
            raise ConfigError(
                f"bad smooth_rounds {self.smooth_rounds!r}: use 1 (the raw first hit) or more "
                "(e.g. 3: a 3-round trailing mean)."
            )
        if self.target is not None and not 0 < self.target <= 1:
            raise ConfigError(f"bad target accuracy {self.target!r}: use a value in (0, 1].")

    def zones(self) -> list[str]:
        """Zone of each client: the 16 profile zones, round-robin."""
        from greenforge.grid.profile import profile_zones

        z = profile_zones()
        return [z[i % len(z)] for i in range(self.clients)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------ data


def dirichlet_partition(
    labels: npt.ArrayLike, clients: int, alpha: float, seed: int, min_size: int = 8
) -> list[npt.NDArray[np.int64]]:
    """Sample indices per client: each class split over clients by Dirichlet(alpha) shares.

    Seeded; redrawn (up to 100 times) until every client has ``min_size`` samples.
    """
    y = np.asarray(labels)
    if y.size < clients * min_size:
        raise ConfigError(
            f"{y.size} samples cannot give {clients} clients {min_size} each: use fewer clients."
        )
    rng = np.random.default_rng(seed)
    for _ in range(100):
        parts: list[list[int]] = [[] for _ in range(clients)]
        for cls in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == cls))
            shares = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * idx.size).astype(np.int64)
            for c, chunk in enumerate(np.split(idx, cuts)):
                parts[c].extend(int(i) for i in chunk)
        if min(len(p) for p in parts) >= min_size:
            return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    raise ConfigError(
        f"Dirichlet alpha {alpha} left a client with fewer than {min_size} samples in 100 draws: "
        "raise alpha or use fewer clients."
    )


@functools.lru_cache(maxsize=4)
def _task(example: str, seed: int) -> tuple[Any, Any, Any, Any, int, int]:
    """(x_train, y_train, x_test, y_test, n_features, n_classes) as torch tensors.

    The held-out set is the example's validation and test splits together (neither is used
    for training or any choice here): 540 digits instead of 270, so the accuracy after a round
    is measured with ~1 point instead of ~1.4 points of sampling noise."""
    import torch

    from greenforge.forge.datasets import load_example

    data = load_example(example, seed=seed)
    train = data.train
    x = torch.stack([train[i][0] for i in range(len(train))]).flatten(1)  # type: ignore[arg-type]
    y = torch.stack([train[i][1] for i in range(len(train))])  # type: ignore[arg-type]
    held = [data.val[i] for i in range(len(data.val))]  # type: ignore[arg-type]
    held += [data.test[i] for i in range(len(data.test))]  # type: ignore[arg-type]
    xt = torch.stack([h[0] for h in held]).flatten(1)
    yt = torch.stack([h[1] for h in held])
    return x, y, xt, yt, int(x.shape[1]), int(data.num_classes)


@functools.lru_cache(maxsize=4)
def _partitions(cfg: ExampleConfig) -> list[npt.NDArray[np.int64]]:
    _, y, _, _, _, _ = _task(cfg.example, cfg.seed)
    return dirichlet_partition(y.numpy(), cfg.clients, cfg.alpha, cfg.seed)


def _model(cfg: ExampleConfig) -> Any:
    import torch

    _, _, _, _, n_in, n_out = _task(cfg.example, cfg.seed)
    torch.manual_seed(cfg.seed)
    return torch.nn.Sequential(
        torch.nn.Linear(n_in, cfg.hidden), torch.nn.ReLU(), torch.nn.Linear(cfg.hidden, n_out)
    )


def _arrays(model: Any) -> list[npt.NDArray[np.float32]]:
    return [p.detach().cpu().numpy().copy() for p in model.state_dict().values()]


def _load(model: Any, arrays: Sequence[npt.NDArray[Any]]) -> None:
    import torch

    keys = list(model.state_dict())
    model.load_state_dict(
        {k: torch.from_numpy(np.asarray(a)) for k, a in zip(keys, arrays, strict=True)}
    )


def accuracy(cfg: ExampleConfig, arrays: Sequence[npt.NDArray[Any]]) -> float:
    """Test accuracy (0-1) of the global model."""
    import torch

    from greenforge.forge.protocol import thread_limit

    _, _, xt, yt, _, _ = _task(cfg.example, cfg.seed)
    model = _model(cfg)
    _load(model, arrays)
    with thread_limit(1), torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())


def local_train(
    cfg: ExampleConfig, partition: int, arrays: Sequence[npt.NDArray[Any]]
) -> tuple[list[npt.NDArray[np.float32]], int, float]:
    """(new arrays, examples, mean loss) after ``local_epochs`` of SGD on one client's data."""
    import torch

    from greenforge.forge.protocol import thread_limit

    x, y, _, _, _, _ = _task(cfg.example, cfg.seed)
    idx = torch.from_numpy(_partitions(cfg)[partition])
    xs, ys = x[idx], y[idx]
    model = _model(cfg)
    _load(model, arrays)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + partition)
    losses: list[float] = []
    with thread_limit(1):
        for _ in range(cfg.local_epochs):
            order = torch.randperm(len(ys), generator=gen)
            for start in range(0, len(ys), cfg.batch_size):
                b = order[start : start + cfg.batch_size]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(xs[b]), ys[b])
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                losses.append(loss.item())
    return _arrays(model), len(ys), float(np.mean(losses))


# ------------------------------------------------------------------------------ Flower apps


def client_app(cfg: ExampleConfig, settings: Settings | None = None) -> ClientApp:
    """The example's ClientApp: local SGD, measured by ``carbon_mod`` in the client's zone."""
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    from greenforge.federated.client import carbon_mod, register_zone_query

    zones = cfg.zones()

    def zone_of(context: Context) -> str:
        return zones[int(context.node_config["partition-id"])]

    app = ClientApp(mods=[carbon_mod(zone=zone_of, settings=settings)])
    register_zone_query(app)

    @app.lifespan()
    def warm(context: Context) -> Iterator[None]:
        # load the data outside the measured step: the first message of each Ray actor
        # would otherwise charge the import of torch and the dataset to one training round
        _partitions(cfg)
        yield

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        arrays = msg.content.array_records["arrays"].to_numpy_ndarrays()
        new, n, loss = local_train(cfg, int(context.node_config["partition-id"]), arrays)
        content = RecordDict(
            {
                "arrays": ArrayRecord(new),
                "metrics": MetricRecord({"num-examples": n, "train_loss": loss}),
            }
        )
        reply: Message = Message(content, reply_to=msg)
        return reply

    return app


@dataclasses.dataclass(frozen=True)
class ArmResult:
    """One arm of the comparison."""

    arm: str
    accuracy: tuple[float, ...]
    """Test accuracy after rounds 1..R (index 0 = round 1)."""
    cumulative_co2e_g: tuple[float, ...]
    cumulative_low_g: tuple[float, ...]
    cumulative_high_g: tuple[float, ...]
    energy_j: float
    network_energy_j: float
    participation: dict[str, int]
    zones: dict[str, str]
    deferred_h: float
    ledger_path: str
    wall_s: float
    stopped: str = ""
    participation_range: tuple[int, int] | None = None
    """(min, max) rounds per client over the runs averaged into this arm; None: one run."""
    repeat_accuracy: tuple[tuple[float, ...], ...] = ()
    """Each averaged run's own accuracy curve (empty for a single run)."""
    repeat_ledgers: tuple[str, ...] = ()
    """Each averaged run's ledger file (``ledger_path`` is the first's)."""

    def smoothed(self, window: int = 1) -> tuple[float, ...]:
        """Trailing mean of ``window`` rounds' accuracy (index 0 = round 1; NaN before round
        ``window``)."""
        return trailing_mean(self.accuracy, window)

    def rounds_to(self, target: float, window: int = 1) -> int | None:
        """First round (1-based) whose trailing ``window``-round mean accuracy reaches
        ``target`` (``window=1``: the raw first hit), else None."""
        for r, acc in enumerate(self.smoothed(window), start=1):
            if math.isfinite(acc) and acc >= target - 1e-12:
                return r
        return None

    def co2e_to(self, rounds: int | None) -> tuple[float, float, float] | None:
        """(g, low, high) spent in the first ``rounds`` rounds."""
        if rounds is None or rounds > len(self.cumulative_co2e_g):
            return None
        i = rounds - 1
        return self.cumulative_co2e_g[i], self.cumulative_low_g[i], self.cumulative_high_g[i]

    def zone_participation(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for client, n in self.participation.items():
            out[self.zones.get(client, "?")] = out.get(self.zones.get(client, "?"), 0) + n
        return out


def trailing_mean(values: Sequence[float], window: int) -> tuple[float, ...]:
    """Mean of each value and the ``window - 1`` before it; NaN where fewer exist."""
    if window < 1:
        raise ConfigError(f"bad window {window!r}: use >= 1 rounds.")
    v = [float(x) for x in values]
    return tuple(
        math.nan if r + 1 < window else sum(v[r + 1 - window : r + 1]) / window
        for r in range(len(v))
    )


def _strategy(
    cfg: ExampleConfig, arm: str, ledger: Ledger, settings: Settings | None, repeat: int = 0
) -> Any:
    from flwr.serverapp.strategy import FedAvgM

    from greenforge.federated.clock import SimulatedClock
    from greenforge.federated.selection import Fairness
    from greenforge.federated.strategy import CarbonAwareSelection, CarbonLedger

    k = cfg.clients_per_round
    inner = FedAvgM(  # FedAvg when server_momentum=0 and server_lr=1
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=1,
        min_available_nodes=1,
        server_learning_rate=cfg.server_lr,
        server_momentum=cfg.server_momentum,
    )
    clock = SimulatedClock(cfg.start_s)
    ledger_strategy = CarbonLedger(
        inner, ledger=ledger, settings=settings, server_zone=cfg.server_zone, clock=clock
    )
    return CarbonAwareSelection(
        ledger_strategy,
        clients_per_round=k,
        policy="random" if arm == "fedavg-random" else "carbon",
        fairness=Fairness(
            min_share=cfg.min_share,
            rule=cfg.rule,
            alpha=cfg.fairness_alpha,
            blocklist_factor=cfg.blocklist_factor,
            budget_share=cfg.budget_share,
        ),
        slack_h=cfg.slack_h if arm == "carbon-aware+slack" else 0.0,
        forecaster=cfg.forecaster,
        seed=cfg.seed + 1_000_003 * repeat,  # repeat 0: the seed itself
        min_clients=cfg.clients,
    )


def run_arm(
    cfg: ExampleConfig,
    arm: str,
    *,
    settings: Settings | None = None,
    ledger_dir: Path | None = None,
    repeat: int = 0,
) -> ArmResult:
    """Runs one arm on the configured backend; returns its curves and ledger figures.

    ``repeat`` > 0 draws FedAvg-random's clients from another seed (same data and model)."""
    from flwr.app import ArrayRecord, MetricRecord

    from greenforge.config import load_settings

    if arm not in ARMS:
        raise ConfigError(f"unknown arm {arm!r}: use one of {', '.join(ARMS)}.")
    settings = settings or load_settings()
    home = ledger_dir or settings.resolved_home() / "federated"
    ledger = Ledger(metadata={"example": cfg.to_dict(), "arm": arm})
    draw = f"-draw{repeat}" if repeat else ""
    ledger.path = home / f"{cfg.example}-{arm}-seed{cfg.seed}{draw}-{ledger.id}.json"
    accs: dict[int, float] = {}

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0:
            return None
        accs[server_round] = accuracy(cfg, arrays.to_numpy_ndarrays())
        return MetricRecord({"accuracy": accs[server_round]})

    def serve(grid: Any) -> None:
        strategy = _strategy(cfg, arm, ledger, settings, repeat)
        initial = ArrayRecord(_arrays(_model(cfg)))
        # the server's test accuracy goes into the ledger too ('report --ledger' plots it)
        evaluate_fn = strategy.ledger_strategy.central_evaluation(evaluate)
        strategy.start(grid, initial, num_rounds=cfg.rounds, evaluate_fn=evaluate_fn)

    t0 = time.perf_counter()
    if cfg.backend == "inprocess":
        from greenforge.federated.local import InProcessGrid

        serve(InProcessGrid(client_app(cfg, settings), cfg.clients))
    else:
        from greenforge.federated.simulation import run_simulation

        run_simulation(serve, client_app(cfg, settings), cfg.clients, cpus=cfg.cpus)
    wall = time.perf_counter() - t0
    ledger.save()
    return _arm_result(cfg, arm, ledger, accs, wall)


def _arm_result(
    cfg: ExampleConfig, arm: str, ledger: Ledger, accs: dict[int, float], wall: float
) -> ArmResult:
    cum = {r: (c, lo, hi) for r, c, lo, hi in ledger.cumulative()}
    rows: list[tuple[float, float, float]] = []
    last = (0.0, 0.0, 0.0)
    for r in range(1, cfg.rounds + 1):
        last = cum.get(r, last)
        rows.append(last)
    acc = [accs.get(r, math.nan) for r in range(1, cfg.rounds + 1)]
    labels = [f"client-{i}" for i in range(cfg.clients)]
    zones = dict(zip(labels, cfg.zones(), strict=True))
    total = ledger.total()
    return ArmResult(
        arm=arm,
        accuracy=tuple(acc),
        cumulative_co2e_g=tuple(r[0] for r in rows),
        cumulative_low_g=tuple(r[1] for r in rows),
        cumulative_high_g=tuple(r[2] for r in rows),
        energy_j=total.energy_j,
        network_energy_j=total.network_energy_j,
        participation=ledger.participation(labels),
        zones=zones,
        deferred_h=sum(p.deferred_s for p in ledger.plans) / 3600.0,
        ledger_path=str(ledger.path),
        wall_s=wall,
        stopped=ledger.stopped,
    )


# ------------------------------------------------------------------------------ comparison


@dataclasses.dataclass(frozen=True)
class ArmSummary:
    """One row of the comparison table."""

    arm: str
    rounds_to_target: int | None
    """First round whose trailing ``smooth_rounds``-round mean accuracy reaches the target."""
    rounds_to_target_raw: int | None
    """First round whose own accuracy reaches the target (one lucky round counts)."""
    rounds_to_target_draws: tuple[int | None, ...]
    """For an arm averaged over several runs: each run's own raw first hit."""
    co2e_to_target_g: float | None
    co2e_to_target_low_g: float | None
    co2e_to_target_high_g: float | None
    co2e_total_g: float
    final_accuracy: float
    best_accuracy: float
    saving_vs_random: float | None
    """1 - CO2e to target / FedAvg-random's CO2e to target (None when either misses it)."""
    rounds_ratio: float | None
    """Rounds to target / FedAvg-random's rounds to target (both smoothed)."""
    saving_vs_random_raw: float | None
    """As ``saving_vs_random``, both arms judged on their raw first hit."""
    rounds_ratio_raw: float | None
    """As ``rounds_ratio``, on the raw first hits."""
    min_participation: int
    max_participation: int
    min_share: float
    """Lowest participation share (rounds taken part in / rounds run)."""
    deferred_h: float


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The three arms on one configuration, with the target they are judged on."""

    config: ExampleConfig
    target: float
    target_note: str
    arms: tuple[ArmResult, ...]
    summaries: tuple[ArmSummary, ...]

    def arm(self, name: str) -> ArmResult:
        return next(a for a in self.arms if a.arm == name)

    @property
    def floor(self) -> int:
        """Rounds every client takes part in at least (``floor(min_share x rounds)``)."""
        return math.floor(self.config.min_share * self.config.rounds + 1e-9)

    def meets(
        self,
        name: str,
        *,
        max_rounds_ratio: float = MAX_ROUNDS_RATIO,
        min_saving: float = MIN_SAVING,
        raw: bool = False,
    ) -> bool:
        """Issue 11's requirement for arm ``name``: it reaches FedAvg-random's target within
        ``max_rounds_ratio`` x its rounds, with >= ``min_saving`` less training CO2e to get
        there, every client at or above the floor. ``raw=True`` judges the raw first hits."""
        s = next(x for x in self.summaries if x.arm == name)
        ratio = s.rounds_ratio_raw if raw else s.rounds_ratio
        saving = s.saving_vs_random_raw if raw else s.saving_vs_random
        return (
            ratio is not None
            and ratio <= max_rounds_ratio + 1e-9
            and saving is not None
            and saving >= min_saving - 1e-9
            and s.min_participation >= self.floor
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "target": self.target,
            "target_note": self.target_note,
            "floor": self.floor,
            "smooth_rounds": self.config.window,
            "summaries": [dataclasses.asdict(s) for s in self.summaries],
            "arms": [
                {
                    **dataclasses.asdict(a),
                    "zone_participation": a.zone_participation(),
                    "smoothed_accuracy": a.smoothed(self.config.window),
                }
                for a in self.arms
            ],
        }


def summarise(cfg: ExampleConfig, arms: Sequence[ArmResult]) -> Comparison:
    """Judges the arms on the target accuracy (``cfg.target`` or derived from FedAvg-random)."""
    base = next(a for a in arms if a.arm == "fedavg-random")
    w = cfg.window
    finite = [a for a in base.smoothed(w) if math.isfinite(a)]
    if cfg.target is not None:
        target, note = cfg.target, "given"
    else:
        target = cfg.target_fraction * (max(finite) if finite else 0.0)
        what = "test accuracy" if w == 1 else f"{w}-round mean test accuracy"
        note = (
            f"{cfg.target_fraction:g} x the best {what} FedAvg-random reached in "
            f"{cfg.rounds} rounds"
        )
    base_rounds = base.rounds_to(target, w)
    base_co2e = base.co2e_to(base_rounds)
    base_raw = base.rounds_to(target)
    base_co2e_raw = base.co2e_to(base_raw)
    rows: list[ArmSummary] = []
    for a in arms:
        n = a.rounds_to(target, w)
        c = a.co2e_to(n)
        n_raw = a.rounds_to(target)
        c_raw = a.co2e_to(n_raw)
        counts = list(a.participation.values()) or [0]
        lo_p, hi_p = a.participation_range or (min(counts), max(counts))
        rows.append(
            ArmSummary(
                arm=a.arm,
                rounds_to_target=n,
                rounds_to_target_raw=n_raw,
                rounds_to_target_draws=tuple(
                    dataclasses.replace(a, accuracy=acc).rounds_to(target)
                    for acc in a.repeat_accuracy
                ),
                co2e_to_target_g=None if c is None else c[0],
                co2e_to_target_low_g=None if c is None else c[1],
                co2e_to_target_high_g=None if c is None else c[2],
                co2e_total_g=a.cumulative_co2e_g[-1] if a.cumulative_co2e_g else 0.0,
                final_accuracy=a.accuracy[-1],
                best_accuracy=max((x for x in a.accuracy if math.isfinite(x)), default=math.nan),
                saving_vs_random=_saving(c, base_co2e),
                rounds_ratio=None if n is None or not base_rounds else n / base_rounds,
                saving_vs_random_raw=_saving(c_raw, base_co2e_raw),
                rounds_ratio_raw=None if n_raw is None or not base_raw else n_raw / base_raw,
                min_participation=lo_p,
                max_participation=hi_p,
                min_share=lo_p / cfg.rounds,
                deferred_h=a.deferred_h,
            )
        )
    return Comparison(cfg, target, note, tuple(arms), tuple(rows))


def _saving(
    co2e: tuple[float, float, float] | None, base: tuple[float, float, float] | None
) -> float | None:
    """1 - CO2e / baseline CO2e (None when either did not reach the target)."""
    if co2e is None or base is None or base[0] <= 0:
        return None
    return 1.0 - co2e[0] / base[0]


def compare(
    cfg: ExampleConfig,
    *,
    settings: Settings | None = None,
    ledger_dir: Path | None = None,
    arms: Sequence[str] = ARMS,
) -> Comparison:
    """Runs the arms one after the other (one Ray for all of them) and judges them."""
    if "fedavg-random" not in arms:
        raise ConfigError("the comparison needs the fedavg-random arm (the baseline).")
    results: list[ArmResult] = []
    for a in arms:
        if a == "fedavg-random":
            draws = [
                run_arm(cfg, a, settings=settings, ledger_dir=ledger_dir, repeat=r)
                for r in range(cfg.random_repeats)
            ]
            results.append(average_arms(draws))
        else:
            results.append(run_arm(cfg, a, settings=settings, ledger_dir=ledger_dir))
    return summarise(cfg, results)


def average_arms(runs: Sequence[ArmResult]) -> ArmResult:
    """One arm from several runs of it: the mean accuracy and cumulative CO2e (and bound)
    curves, mean energies and hours deferred, per-client participation rounded from the mean
    (its range over the runs in ``participation_range``), each run's accuracy curve kept in
    ``repeat_accuracy``. A single run is returned as it is."""
    if not runs:
        raise ConfigError("no runs to average: give at least one.")
    if len(runs) == 1:
        return runs[0]
    first = runs[0]

    def mean_curve(curves: Sequence[Sequence[float]]) -> tuple[float, ...]:
        return tuple(float(x) for x in np.mean(np.asarray(curves, dtype=np.float64), axis=0))

    counts = [c for r in runs for c in r.participation.values()] or [0]
    return dataclasses.replace(
        first,
        accuracy=mean_curve([r.accuracy for r in runs]),
        cumulative_co2e_g=mean_curve([r.cumulative_co2e_g for r in runs]),
        cumulative_low_g=mean_curve([r.cumulative_low_g for r in runs]),
        cumulative_high_g=mean_curve([r.cumulative_high_g for r in runs]),
        energy_j=float(np.mean([r.energy_j for r in runs])),
        network_energy_j=float(np.mean([r.network_energy_j for r in runs])),
        participation={
            c: round(float(np.mean([r.participation.get(c, 0) for r in runs])))
            for c in first.participation
        },
        deferred_h=float(np.mean([r.deferred_h for r in runs])),
        repeat_ledgers=tuple(r.ledger_path for r in runs),
        wall_s=sum(r.wall_s for r in runs),
        stopped="; ".join(r.stopped for r in runs if r.stopped),
        participation_range=(min(counts), max(counts)),
        repeat_accuracy=tuple(r.accuracy for r in runs),
    )


def plot_comparison(out_dir: Path, comparison: Comparison) -> list[Path]:
    """Writes ``accuracy.png`` (test accuracy vs round) and ``co2e.png`` (cumulative training
    CO2e vs round, with the ledger's low-high band); returns the files."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from greenforge.forge.output import write_atomic

    colors = {
        "fedavg-random": "#E69F00",
        "carbon-aware": "#009E73",
        "carbon-aware+slack": "#0072B2",
    }
    out: list[Path] = []
    for name, draw in (("accuracy.png", _draw_accuracy), ("co2e.png", _draw_co2e)):
        fig = Figure(figsize=(6.4, 4.0), dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        draw(ax, comparison, colors)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out.append(write_atomic(out_dir / name, functools.partial(_save_png, fig)))
    return out


def _save_png(fig: Any, path: Path) -> None:
    fig.savefig(path, format="png")


def _draw_accuracy(ax: Any, comparison: Comparison, colors: dict[str, str]) -> None:
    for a in comparison.arms:
        rounds = range(1, len(a.accuracy) + 1)
        ax.plot(rounds, [100 * x for x in a.accuracy], label=a.arm, color=colors.get(a.arm))
    ax.axhline(100 * comparison.target, color="grey", ls="--", lw=1, label="target")
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{comparison.config.example}: global model accuracy")


def _draw_co2e(ax: Any, comparison: Comparison, colors: dict[str, str]) -> None:
    for a in comparison.arms:
        rounds = range(1, len(a.cumulative_co2e_g) + 1)
        mg = [1000 * x for x in a.cumulative_co2e_g]
        ax.plot(rounds, mg, label=a.arm, color=colors.get(a.arm))
        ax.fill_between(
            rounds,
            [1000 * x for x in a.cumulative_low_g],
            [1000 * x for x in a.cumulative_high_g],
            color=colors.get(a.arm),
            alpha=0.15,
            lw=0,
        )
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative training CO2e (mg)")
    ax.set_title(f"{comparison.config.example}: clients + network + aggregation")


def table_rows(comparison: Comparison) -> list[list[str]]:
    """The terminal table: one row per arm."""
    rows: list[list[str]] = []
    for s in comparison.summaries:
        co2e = (
            "-"
            if s.co2e_to_target_g is None
            else f"{1000 * s.co2e_to_target_g:.3g} [{1000 * (s.co2e_to_target_low_g or 0):.3g}-"
            f"{1000 * (s.co2e_to_target_high_g or 0):.3g}]"
        )
        rows.append(
            [
                s.arm,
                f"{_opt(s.rounds_to_target)} ({_opt(s.rounds_to_target_raw)})",
                co2e,
                "-" if s.saving_vs_random is None else f"{100 * s.saving_vs_random:.0f} %",
                f"{1000 * s.co2e_total_g:.3g}",
                f"{100 * s.final_accuracy:.1f}",
                f"{s.min_participation}-{s.max_participation}",
                f"{s.deferred_h:.0f}",
            ]
        )
    return rows


def _opt(n: int | None) -> str:
    return "-" if n is None else str(n)


TABLE_COLUMNS = (
    "arm",
    "rounds to target (raw first hit)",
    "CO2e to target mg [low-high]",
    "saving",
    "CO2e all rounds mg",
    "final acc %",
    "participation min-max",
    "deferred h",
)


def write_outputs(out_dir: Path, comparison: Comparison) -> list[Path]:
    """Writes ``federated.json`` and the two plots into ``out_dir``; returns the files."""
    from greenforge.forge.output import write_json_atomic

    files = [write_json_atomic(out_dir / "federated.json", comparison.to_dict())]
    files += plot_comparison(out_dir, comparison)
    return files
