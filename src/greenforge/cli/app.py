"""Entry point of the ``greenforge`` CLI. Each command group lives in its own module and
registers itself with :func:`register`. Errors map to documented exit codes (see
:mod:`greenforge.errors`)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from greenforge import __version__
from greenforge.errors import GreenForgeError

app = typer.Typer(
    name="greenforge",
    help="Create AI models with minimal carbon footprint: measure, know the grid, shift, shrink.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"greenforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """GreenForge command line."""


def _register_all() -> None:
    from greenforge.cli import doctor, forge, grid, queue, run, schedule

    for module in (run, doctor, grid, schedule, queue, forge):
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map GreenForge errors to their exit codes with a one-line message."""
    try:
        result = app(args=argv, standalone_mode=False)
    except GreenForgeError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except typer.Abort:
        return 1
    except Exception as exc:  # click usage errors (bad option values, unknown options)
        import click

        # Recent typer versions raise the exceptions of their own vendored click
        # (``typer._click``), which are not subclasses of ``click.ClickException``: recognise
        # both by their interface, so a bad value never ends in a traceback.
        show = getattr(exc, "show", None)
        code = getattr(exc, "exit_code", None)
        if isinstance(exc, click.exceptions.ClickException) or (
            callable(show) and isinstance(code, int)
        ):
            exc.show()  # type: ignore[attr-defined]
            return int(exc.exit_code)  # type: ignore[attr-defined]
        if isinstance(exc, click.exceptions.Abort):
            return 1
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
