"""The live view of a running search: a bar over the trial budget (with ETA), a bar over the
current trial's examples, and one status line (best trust so far, front size, early stops).

It writes to stderr through rich, so stdout keeps only results; on a terminal it redraws in
place, elsewhere (CI, a pipe) rich prints plain lines.
"""

from __future__ import annotations

from rich.console import Group
from rich.live import Live
from rich.progress import Progress
from rich.text import Text

from trustbits.progress import bar_columns
from trustbits.search.console import error_console


class SearchView:
    """Progress of one search process (see the module docstring)."""

    def __init__(self, name: str, budget: int, done: int, *, enabled: bool = True):
        self.enabled = enabled
        self.progress = Progress(*bar_columns(), console=error_console())
        self.trials = self.progress.add_task(f"study {name}: trials", total=budget, completed=done)
        self.current = self.progress.add_task("waiting", total=1, visible=False)
        self.status = Text("")
        self._live = Live(Group(self.progress, self.status), console=error_console(), refresh_per_second=4, transient=False)

    def __enter__(self):
        if self.enabled:
            self._live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._live.__exit__(*exc)

    def stage(self, description: str, done: int, total: int) -> None:
        """Any long step of the current trial (or of setup): a bar with its own ETA."""
        self.progress.update(self.current, description=description, completed=done, total=max(total, 1), visible=True)

    def trial_started(self, number: int, label: str) -> None:
        self.stage(f"trial {number} ({label})", 0, 1)
        self.progress.reset(self.current)

    def trial_finished(self, done: int, status: str) -> None:
        self.progress.update(self.trials, completed=done)
        self.progress.update(self.current, visible=False)
        self.status.plain = status

    def note(self, text: str) -> None:
        if self.enabled:
            self._live.console.print(text, highlight=False)
