"""CLI: ``greenforge federated --example digits`` (the three-way comparison) and
``greenforge federated show [LEDGER] [--json]`` (a run's carbon ledger).

Parses, calls :mod:`greenforge.federated`, prints; the work lives in the package.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from greenforge.errors import ConfigError

federated_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
)


@federated_app.callback()
def federated(
    ctx: typer.Context,
    example: str | None = typer.Option(
        None, "--example", help="Run the comparison on a bundled example: digits or mnist5k."
    ),
    clients: int = typer.Option(
        32, "--clients", help="Clients (>= 16: at least one per zone with an hourly profile)."
    ),
    per_round: int = typer.Option(8, "--per-round", help="Clients picked per round."),
    rounds: int = typer.Option(30, "--rounds", help="Rounds per arm."),
    alpha: float = typer.Option(0.5, "--alpha", help="Dirichlet label-skew concentration."),
    seed: int = typer.Option(0, "--seed", help="Seed of partitions, model and random picks."),
    min_share: float = typer.Option(
        0.1, "--min-share", help="Minimum participation share of every client (0-1)."
    ),
    rule: str = typer.Option(
        "budget", "--rule", help="Selection rule: budget (default), alpha, blocklist, none."
    ),
    fairness_alpha: float = typer.Option(
        1.0, "--fairness-alpha", help="Alpha of the alpha-fair rule (0 = carbon only)."
    ),
    slack_h: float = typer.Option(6.0, "--slack-h", help="Slack window of arm (c), hours."),
    random_repeats: int = typer.Option(
        1, "--random-repeats", help="FedAvg-random runs (other random picks) averaged."
    ),
    smooth: int = typer.Option(
        3, "--smooth", help="Rounds to target on this many rounds' trailing mean (1 = raw)."
    ),
    target: float | None = typer.Option(
        None, "--target", help="Target test accuracy 0-1 (default: 0.98 x FedAvg's best smoothed)."
    ),
    backend: str = typer.Option(
        "ray", "--backend", help="ray (Flower's simulation engine) or inprocess."
    ),
    cpus: int = typer.Option(2, "--cpus", help="CPUs the local Ray may use."),
    out: Path = typer.Option(
        Path("greenforge-federated"), "--out", help="Folder for federated.json and the plots."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Federated learning on Flower: compare FedAvg (random clients) with carbon-aware
    selection, with and without slack, on a bundled example; or show a run's carbon ledger.
    """
    if ctx.invoked_subcommand is not None:
        if example is not None:
            raise ConfigError("--example runs the comparison; give it without a subcommand.")
        return
    if example is None:
        raise ConfigError(
            "nothing to do: give --example digits (or mnist5k), or `greenforge federated show`."
        )
    from greenforge import jsonsafe
    from greenforge.federated.example import (
        TABLE_COLUMNS,
        ExampleConfig,
        compare,
        table_rows,
        write_outputs,
    )

    cfg = ExampleConfig(
        example=example,
        clients=clients,
        clients_per_round=per_round,
        rounds=rounds,
        alpha=alpha,
        seed=seed,
        min_share=min_share,
        rule=rule,
        fairness_alpha=fairness_alpha,
        slack_h=slack_h,
        random_repeats=random_repeats,
        smooth_rounds=smooth,
        target=target,
        backend=backend,
        cpus=cpus,
    )
    err = Console(stderr=True)
    err.print(
        f"running 3 arms x {rounds} rounds, {clients} clients ({per_round} per round) on "
        f"{backend} ...",
        highlight=False,
    )
    comparison = compare(cfg)
    files = write_outputs(out, comparison)
    if as_json:
        typer.echo(jsonsafe.dumps(comparison.to_dict()))
        return
    from greenforge.cli.tables import compact_table

    table = compact_table(
        f"{example}: target accuracy {100 * comparison.target:.1f} % ({comparison.target_note})",
        TABLE_COLUMNS,
        right=TABLE_COLUMNS[1:],
    )
    for row in table_rows(comparison):
        table.add_row(*row)
    console = Console()
    console.print(table)
    console.print(
        f"rounds to target: the first round whose {cfg.window}-round trailing mean test "
        "accuracy reaches the target (raw first hit in brackets); FedAvg-random: the mean of "
        f"{random_repeats} run(s)",
        highlight=False,
    )
    console.print(
        f"fairness floor: every client in >= {comparison.floor} of {rounds} rounds "
        f"(min share {min_share})",
        highlight=False,
    )
    for arm in comparison.arms:
        zones = ", ".join(f"{z} {n}" for z, n in sorted(arm.zone_participation().items()))
        console.print(f"{arm.arm} participation by zone: {escape(zones)}", highlight=False)
    for f in files:
        err.print(f"wrote {escape(str(f))}", highlight=False)


@federated_app.command("show")
def show(
    ledger: str | None = typer.Argument(
        None, help="Ledger file or id (prefix); default: the newest ledger."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the ledger as JSON."),
) -> None:
    """Show a federated run's carbon ledger: CO2e per round, client and zone, cumulative,
    with bounds."""
    from greenforge import jsonsafe
    from greenforge.config import load_settings
    from greenforge.federated.ledger import Ledger, find_ledger

    path = find_ledger(ledger, load_settings().resolved_home())
    led = Ledger.load(path)
    if as_json:
        typer.echo(jsonsafe.dumps(led.to_dict()))
        return
    from greenforge.cli.tables import compact_table

    console = Console()
    total = led.total()
    console.print(
        f"ledger {led.id} ({escape(str(path))}): {total.co2e_g * 1000:.4g} mg CO2e "
        f"[{total.low_g * 1000:.4g}-{total.high_g * 1000:.4g}], "
        f"{total.energy_j:.4g} J compute + {total.network_energy_j:.4g} J network, "
        f"clock {led.metadata.get('clock', '?')}",
        highlight=False,
    )
    if led.stopped:
        console.print(f"stopped early: {escape(led.stopped)}", highlight=False)
    cumulative = {r: c for r, c, _, _ in led.cumulative()}
    cols = ("round", "CO2e mg", "low-high mg", "cumulative mg", "energy J", "net J", "entries")
    table = compact_table("per round", cols, right=cols)
    for t in led.by("round"):
        table.add_row(
            t.key,
            f"{t.co2e_g * 1000:.4g}",
            f"{t.low_g * 1000:.4g}-{t.high_g * 1000:.4g}",
            f"{cumulative.get(int(t.key), 0.0) * 1000:.4g}",
            f"{t.energy_j:.4g}",
            f"{t.network_energy_j:.3g}",
            str(t.entries),
        )
    console.print(table)
    zones = led.zones()
    parts = led.participation()
    by_zone = led.zone_participation()
    for field, title in (("client", "per client"), ("zone", "per zone")):
        first = "client" if field == "client" else "zone"
        cols2: tuple[str, ...] = (
            first,
            "zone" if field == "client" else "clients",
            "rounds",
            "CO2e mg",
            "low-high mg",
            "energy J",
        )
        table = compact_table(title, cols2, right=cols2[2:])
        for t in led.by(field):
            if field == "client":
                second, n = (
                    zones.get(t.key, "server" if t.key == "server" else "?"),
                    parts.get(t.key, 0),
                )
            else:
                members, n = by_zone.get(t.key, (0, 0))
                second = str(members)
            table.add_row(
                escape(t.key),
                escape(second),
                str(n),
                f"{t.co2e_g * 1000:.4g}",
                f"{t.low_g * 1000:.4g}-{t.high_g * 1000:.4g}",
                f"{t.energy_j:.4g}",
            )
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(federated_app, name="federated")
