"""A small progress-bar helper shared by the simulations' long steps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn


@contextmanager
def step_progress(
    console: Console, description: str, *, total: int
) -> Iterator[Callable[[int, int], None]]:
    """Show a progress bar; yield a ``(done, total)`` callback that advances it."""
    with Progress(
        TextColumn("    {task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=max(total, 1))

        def advance(done: int, new_total: int) -> None:
            bar.update(task, completed=done, total=max(new_total, 1))

        yield advance
