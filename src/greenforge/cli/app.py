"""Entry point of the ``greenforge`` CLI. Each command group lives in its own module and
registers itself with :func:`register`. Errors map to documented exit codes (see
:mod:`greenforge.errors`)."""

from __future__ import annotations

import contextlib
import sys
import typing
import warnings
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from greenforge import __version__
from greenforge.errors import GreenForgeError

_LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "run",
        "Run CMD ARGS..., measure its whole process tree, store the run, keep its exit code.",
    ),
    "doctor": (
        "doctor",
        "Show which energy meters work here, which do not, and how to enable them.",
    ),
    "plan": (
        "schedule",
        "Plan a job: the cleanest time (and zone) to run it before its deadline.",
    ),
    "backtest": (
        "schedule",
        "Replay history: what would carbon-aware planning have saved, vs running now and oracle?",
    ),
    "schedule": (
        "queue",
        "Run CMD at the cleanest time (and zone) before the deadline, measured.",
    ),
    "forge": (
        "forge",
        "Try recipes (distillation, pruning, int8, bf16, mixed precision, early stopping), "
        "measure every candidate, and keep the one with the least lifetime CO2e that meets the "
        "target.",
    ),
    "runs": ("run", "List, show and export stored runs."),
    "grid": ("grid", "Know the grid: carbon intensity of a zone, past, typical and forecast."),
    "queue": ("queue", "The persistent queue of scheduled jobs: add, list, cancel, run."),
    "federated": (
        "federated",
        "Federated learning on Flower: compare FedAvg (random clients) with carbon-aware "
        "selection, with and without slack, on a bundled example; or show a run's carbon ledger.",
    ),
    "report": (
        "report",
        "Write a self-contained HTML report of stored runs, a forge directory, a back-test "
        "result or a plan.",
    ),
    "recommend": (
        "recommend",
        "Recommend where and on what to run a job: cloud provider, region and "
        "instance/accelerator ranked by total CO2e (operational x PUE + embodied), with bounds, "
        "run time, carbon-free-energy shares where reported, and sources.",
    ),
    "tune": (
        "tune",
        "Tune the knobs that cut energy: CPU threads and batch size, GPU power limits.",
    ),
    "edge": (
        "edge",
        "Edge AI: export forge candidates to ONNX, energy per inference here and modelled on "
        "devices, and edge vs cloud serving CO2e.",
    ),
}
"""Every command: the ``greenforge.cli`` module that registers it and the one-line help that
``greenforge --help`` shows (the first paragraph of the command's own help; a test keeps the
two equal). A module is imported only when one of its commands runs or shows its own help."""


class _LazyGroup(TyperGroup):
    """The root command group: imports a command's module only when the command is used, so
    ``greenforge --help`` and each command start without importing every other command's
    dependencies (numpy, the scheduler, the forge)."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(n for n in _LAZY_COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = self.commands.get(cmd_name)
        if cmd is not None or cmd_name not in _LAZY_COMMANDS:
            return cmd
        module, short_help = _LAZY_COMMANDS[cmd_name]
        if self._listing:  # the root help lists commands: a name and a line suffice
            return TyperCommand(name=cmd_name, help=short_help)
        return self._load(module, cmd_name)

    def _load(self, module: str, cmd_name: str) -> Any:
        import importlib

        sub = typer.Typer()
        sub.callback()(_no_op)  # a group even when the module registers one command
        importlib.import_module(f"greenforge.cli.{module}").register(sub)
        group = typer.main.get_command(sub)
        for name, cmd in getattr(group, "commands", {}).items():
            self.commands.setdefault(name, cmd)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except Exception as exc:  # click's UsageError: suggest from every command, loaded or not
            message = getattr(exc, "message", None)
            if isinstance(message, str) and args and "Did you mean" not in message:
                import difflib

                matches = difflib.get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    shown = ", ".join(repr(m) for m in matches)
                    exc.message = f"{message.rstrip('.')}. Did you mean {shown}?"  # type: ignore[attr-defined]
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def _no_op() -> None:
    """(callback of the throw-away app a lazily loaded command module registers with)"""


app = typer.Typer(
    name="greenforge",
    help="Create AI models with minimal carbon footprint: measure, know the grid, shift, shrink.",
    cls=_LazyGroup,
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


def _print_error(text: str) -> None:
    """``error: TEXT`` on stderr; one unbroken line when stderr is not a terminal, so a log or
    a ``2>&1 | grep`` sees the whole message (rich would hard-wrap it at 80 columns)."""
    err_console.print(
        f"[bold red]error:[/] {escape(text)}",
        highlight=False,
        soft_wrap=not err_console.is_terminal,
    )


def _print_warning(text: str) -> None:
    """``warning: TEXT`` on stderr, unwrapped when stderr is not a terminal."""
    err_console.print(
        f"[yellow]warning:[/] {escape(text)}",
        highlight=False,
        soft_wrap=not err_console.is_terminal,
    )


@contextlib.contextmanager
def _plain_warnings() -> Iterator[None]:
    """While a command runs, a Python warning prints as one ``warning: ...`` line (each text
    once), not Python's ``file:line: Category: text`` form with a source line. Only the format
    changes: filters stay (warnings that are errors stay errors), a caller recording warnings
    (``pytest.warns``) still gets them, and the previous format is restored after."""
    shown: set[str] = set()

    def plain(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        line: str | None = None,
    ) -> str:
        text = str(message)
        if text in shown:
            return ""
        shown.add(text)
        return f"warning: {text}\n"

    previous = warnings.formatwarning
    warnings.formatwarning = plain
    try:
        yield
    finally:
        warnings.formatwarning = previous


_CONVENTIONAL_TYPES = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "FLOAT",
    "bool": "BOOLEAN",
    "Path": "PATH",
    "datetime": "DATETIME",
}


def _conventional_type(param: Any, ctx: Any) -> str | None:
    """The help's type column in click's convention: ``TEXT``, ``INTEGER``, ``FLOAT``,
    ``PATH``; nothing for a flag; a repeatable option as its name (``ZONE...``); an explicit
    metavar as given. (Recent typer shows ``<str>``, ``<bool>``, ``<list[str]>``.)"""
    if param.metavar is not None:
        return str(param.metavar)
    if getattr(param, "is_flag", False):
        return None
    desc = param.type_descriptor
    if desc.is_choice:
        return "[" + "|".join(str(c) for c in desc.choices or ()) + "]"
    annotation = desc.annotation
    if desc.is_list:
        args = typing.get_args(annotation)
        annotation = args[0] if args else str
        if getattr(param, "multiple", False):  # --zone DE --zone FR
            flag = next((o for o in param.opts if o.startswith("--")), str(param.name))
            return f"{flag.lstrip('-').replace('-', '_').upper()}..."
    name = getattr(annotation, "__name__", str(annotation))
    label = _CONVENTIONAL_TYPES.get(name, "PATH" if "Path" in name else "TEXT")
    if desc.is_ranged:
        label = _CONVENTIONAL_TYPES.get(str(desc.ranged_type_name), label)
    return label


def _use_conventional_help_types() -> None:
    """Render parameter types in help as click does (see :func:`_conventional_type`), on the
    typer versions that print ``<type>`` (older ones already follow click)."""
    from typer import core

    for cls in (getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)):
        if cls is not None and hasattr(cls, "display_type_rich"):
            cls.display_type_rich = _conventional_type


_use_conventional_help_types()


def load_all_commands() -> Any:
    """Returns the root click group with every command module imported (for tests and tools
    that walk all commands; the CLI itself loads each module on first use)."""
    group = typer.main.get_command(app)
    for name in _LAZY_COMMANDS:
        group.get_command(None, name)  # type: ignore[attr-defined]
    return group


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map GreenForge errors to their exit codes with a one-line message."""
    try:
        with _plain_warnings():
            result = app(args=argv, standalone_mode=False)
    except GreenForgeError as exc:
        _print_error(str(exc))
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
