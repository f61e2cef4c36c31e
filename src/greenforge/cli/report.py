"""CLI: ``greenforge report RUN_ID ...`` and ``greenforge report --forge DIR``.

Writes one self-contained HTML file (inline CSS and SVG, no network at view time) made by
:mod:`greenforge.report.html`; the page's rendering is tested in headless Chromium.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from greenforge.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("report")
    def report(
        run_ids: list[str] | None = typer.Argument(
            None, metavar="RUN_ID", help="Run ids (or unique prefixes) to report."
        ),
        forge: Path | None = typer.Option(
            None, "--forge", help="Report a forge output directory (the one with forge.json)."
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            help="HTML file to write (default: greenforge-report.html in the current directory).",
        ),
    ) -> None:
        """Write a self-contained HTML report of stored runs or of a forge directory.

        Inline CSS and SVG plots, no scripts, no network: opens from file:// and by e-mail.
        """
        from greenforge.report import html as report_html

        ids = list(run_ids or [])
        if forge is not None and ids:
            raise ConfigError("give run ids or --forge DIR, not both: one report is one kind.")
        if forge is None and not ids:
            raise ConfigError(
                "nothing to report: name run ids (see `greenforge runs list`) or --forge DIR."
            )
        if forge is not None:
            text = report_html.forge_report(forge)
        else:
            from greenforge.config import load_settings
            from greenforge.report.store import RunStore

            with RunStore.for_settings(load_settings(), read_only=True) as store:
                records = [store.get(i) for i in ids]
            text = report_html.run_report(records)
        target = out if out is not None else Path("greenforge-report.html")
        from greenforge.forge.output import write_text_atomic

        write_text_atomic(target, text)
        Console(stderr=True).print(f"wrote {escape(str(target))}", highlight=False)
