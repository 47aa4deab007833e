"""The one exception base class of trustbits.

Every error a user can cause (a bad spec, a missing model, a corrupt file) is a
`TrustbitsError`. Its message is one sentence naming the problem and the fix; the CLI prints
it on one line and exits with code 2 (the traceback only with `--debug`). Anything else that
escapes is a bug in trustbits and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TrustbitsError(Exception):
    """A problem the user can fix: bad input, a missing file, an unreachable resource.

    Args:
        problem: what is wrong, e.g. ``"unknown model 'builtin:foo'"``.
        fix: what to do about it, e.g. ``"use one of: builtin:smollm2-135m-instruct"``.
    """

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem.rstrip(". ")
        self.fix = fix.rstrip(". ") if fix else None
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.problem}; {self.fix}." if self.fix else f"{self.problem}."


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A 'did you mean X?' clause for an unknown name, or a list of the valid ones.

    >>> did_you_mean("ethcs", ["adv", "ethics"])
    "did you mean 'ethics'?"
    """
    choices = sorted(set(choices))
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "expected one of: " + ", ".join(choices)
