"""Rich consoles shared by the commands: results on stdout, errors and progress on stderr.

When the output is not a terminal (CI logs, a pipe, a file) rich would wrap tables at 80
columns; results tables are wide, so such outputs get 160 columns instead.
"""

from __future__ import annotations

from functools import cache

_PIPE_WIDTH = 160


def _make(stderr: bool):
    from rich.console import Console

    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=_PIPE_WIDTH)


@cache
def console():
    return _make(stderr=False)


@cache
def error_console():
    return _make(stderr=True)
