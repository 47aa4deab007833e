"""Rich consoles shared by the commands: results on stdout, errors and progress on stderr."""

from __future__ import annotations

from functools import cache


@cache
def console():
    from rich.console import Console

    return Console()


@cache
def error_console():
    from rich.console import Console

    return Console(stderr=True)
