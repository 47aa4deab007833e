"""Progress through rich: a context manager yielding the `progress(done, total, description)`
callable that `apply_plan` and `LayerCache.build` accept."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def rich_progress(transient: bool = True):
    """One rich bar (with ETA) per description, on stderr."""
    from rich.console import Console
    from rich.progress import Progress

    from trustbits.progress import bar_columns

    tasks: dict[str, int] = {}
    with Progress(*bar_columns(), console=Console(stderr=True), transient=transient) as bar:

        def update(done: int, total: int, description: str) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=done, total=total)

        yield update
