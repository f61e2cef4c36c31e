"""Tables for list commands that keep the columns that matter whole at 80 columns."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table


def compact_table(
    title: str,
    columns: Iterable[str],
    *,
    fold: Iterable[str] = (),
    right: Iterable[str] = (),
) -> Table:
    """A light table (an underlined header, one space between columns) whose columns never
    wrap or truncate, except those in ``fold`` (free text such as a name or a note), which fold
    and keep at least 8 characters; ``right`` columns are right-aligned (numbers)."""
    folding, right_aligned = set(fold), set(right)
    table = Table(
        title=title,
        box=None,  # a box costs a character between columns
        pad_edge=False,
        padding=(0, 1, 0, 0),
        header_style="bold underline",
    )
    for col in columns:
        table.add_column(
            col,
            no_wrap=col not in folding,
            overflow="fold",
            min_width=8 if col in folding else None,
            justify="right" if col in right_aligned else "left",
        )
    return table
