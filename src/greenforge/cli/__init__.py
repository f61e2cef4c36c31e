"""The ``greenforge`` command line (typer); one module per command group."""
