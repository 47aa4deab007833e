"""The one exception base and its CLI rendering: one line, exit code 2, traceback with --debug."""

from __future__ import annotations

import pytest

from trustbits import TrustbitsError, did_you_mean
from trustbits.search import cli


def test_message_is_one_sentence_with_problem_and_fix():
    e = TrustbitsError("unknown model 'x'.", "use builtin:smollm2-135m-instruct")
    assert e.message == "unknown model 'x'; use builtin:smollm2-135m-instruct."
    assert str(e) == e.message
    assert TrustbitsError("disk full").message == "disk full."


def test_did_you_mean():
    assert did_you_mean("ethcs", ["adv", "ethics", "ood"]) == "did you mean 'ethics'?"
    assert did_you_mean("zzz", ["b", "a"]) == "expected one of: a, b"


def test_cli_prints_one_line_and_exits_2(capsys):
    code = cli.main(["info", "--model", "builtin:nope"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "unknown builtin model 'builtin:nope'" in lines[0] and "builtin:smollm2-135m-instruct" in lines[0]


def test_cli_debug_shows_the_traceback():
    with pytest.raises(TrustbitsError):
        cli.main(["info", "--debug", "--model", "builtin:nope"])


def test_cli_without_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "usage: trustbits" in capsys.readouterr().out
