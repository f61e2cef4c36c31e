"""CLI: ``greenforge report RUN_ID ... [--per UNIT]``, ``--forge DIR``, ``--backtest FILE``,
``--plan FILE``, ``--ledger [FILE_OR_ID] [--json]``.

Writes one self-contained HTML file (inline CSS and SVG, no network at view time) made by
:mod:`greenforge.report.html` (runs, forge), :mod:`greenforge.report.schedule_html`
(back-test, plan) or :mod:`greenforge.report.federated_html` (a federated carbon ledger); the
pages' rendering is tested in headless Chromium.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from greenforge.errors import ConfigError

if TYPE_CHECKING:
    from greenforge.report.sci import FunctionalUnit


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("report")
    def report(
        run_ids: list[str] | None = typer.Argument(
            None,
            metavar="RUN_ID",
            help="Run ids (or unique prefixes) to report; with --ledger, a ledger file or id.",
        ),
        forge: Path | None = typer.Option(
            None, "--forge", help="Report a forge output directory (the one with forge.json)."
        ),
        backtest: Path | None = typer.Option(
            None,
            "--backtest",
            help="Report a back-test result: the JSON of `greenforge backtest --out FILE`.",
        ),
        plan: Path | None = typer.Option(
            None, "--plan", help="Report a plan: the JSON of `greenforge plan --json`."
        ),
        ledger: bool = typer.Option(
            False,
            "--ledger",
            help="Report a federated run's carbon ledger: the newest, or the one the argument "
            "names (a ledger file, or an id or its prefix from `greenforge federated show`).",
        ),
        as_json: bool = typer.Option(
            False, "--json", help="With --ledger: print the ledger's aggregates as JSON instead."
        ),
        per: str | None = typer.Option(
            None,
            "--per",
            help="SCI's functional unit for run reports (default run): epoch, a count, or "
            "prediction:N / 1k-predictions:N / sample:N.",
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            help="HTML file to write (default: greenforge-report.html in the current directory).",
        ),
    ) -> None:
        """Write a self-contained HTML report of stored runs, a forge directory, a back-test
        result or a plan.

        Or of a federated run's carbon ledger: `greenforge report --ledger [FILE_OR_ID]`
        (`--json` prints its aggregates). Inline CSS and SVG plots, no scripts, no network:
        opens from file:// and by e-mail.
        """
        ids = list(run_ids or [])
        given = [
            name
            for name, value in (
                ("run ids", None if ledger else ids or None),
                ("--forge", forge),
                ("--backtest", backtest),
                ("--plan", plan),
                ("--ledger", ledger or None),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise ConfigError(
                f"give one of run ids, --forge DIR, --backtest FILE, --plan FILE or --ledger "
                f"[FILE_OR_ID], not {' and '.join(given)}: one report is one kind."
            )
        if not given:
            raise ConfigError(
                "nothing to report: name run ids (see `greenforge runs list`), --forge DIR, "
                "--backtest FILE, --plan FILE or --ledger [FILE_OR_ID]."
            )
        if as_json and not ledger:
            raise ConfigError(
                "--json prints a federated ledger's aggregates: use it with --ledger "
                "(the other reports are HTML pages)."
            )
        if per is not None and (ledger or not ids):
            raise ConfigError(
                f"--per {per!r} sets the SCI unit of run reports: name run ids with it (a forge "
                "report gives SCI per 1k predictions)."
            )
        if ledger:
            _ledger(ids, as_json, out)
            return
        from greenforge.report.sci import parse_unit

        unit = None if per is None else parse_unit(per)  # a bad --per fails before the store
        text = _render(ids, forge, backtest, plan, unit)
        target = out if out is not None else Path("greenforge-report.html")
        from greenforge.forge.output import write_text_atomic

        write_text_atomic(target, text)
        Console(stderr=True).print(f"wrote {escape(str(target))}", highlight=False)


def _ledger(names: list[str], as_json: bool, out: Path | None) -> None:
    """``report --ledger [FILE_OR_ID]``: the page (or, with ``as_json``, its aggregates)."""
    if len(names) > 1:
        raise ConfigError(
            f"--ledger reports one ledger, not {len(names)} ({', '.join(names)}): name one file "
            "or id, or none for the newest."
        )
    from greenforge.config import load_settings
    from greenforge.federated.ledger import Ledger, find_ledger

    path = find_ledger(names[0] if names else None, load_settings().resolved_home())
    led = Ledger.load(path)
    if as_json:
        from greenforge import jsonsafe
        from greenforge.report.federated_html import ledger_summary

        typer.echo(jsonsafe.dumps(ledger_summary(led)))
        if out is None:
            return
    from greenforge.forge.output import write_text_atomic
    from greenforge.report.federated_html import ledger_report

    target = out if out is not None else Path("greenforge-report.html")
    write_text_atomic(target, ledger_report(led))
    Console(stderr=True).print(f"wrote {escape(str(target))}", highlight=False)


def _render(
    ids: list[str],
    forge: Path | None,
    backtest: Path | None,
    plan: Path | None,
    per: FunctionalUnit | None = None,
) -> str:
    """Returns the HTML page of the one thing asked for."""
    if forge is not None:
        from greenforge.report.html import forge_report

        return forge_report(forge)
    if backtest is not None or plan is not None:
        from greenforge.report import schedule_html

        if backtest is not None:
            return schedule_html.backtest_report(schedule_html.load_document(backtest, "backtest"))
        assert plan is not None
        return schedule_html.plan_report(schedule_html.load_document(plan, "plan"))
    from greenforge.config import load_settings
    from greenforge.report.html import run_report
    from greenforge.report.store import RunStore

    with RunStore.for_settings(load_settings(), read_only=True) as store:
        records = [store.get(i) for i in ids]
    return run_report(records, per=per)
