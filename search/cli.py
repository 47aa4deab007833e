"""The `trustbits` command line.

Each subcommand lives in its own module (`trustbits.search.commands.<name>`) that defines
`add_arguments(parser)` and `run(args) -> int`, and imports torch and friends only inside
`run`, so `trustbits --help` answers without importing torch.

Errors: a `TrustbitsError` (bad input, missing file, ...) is printed as one line and exits
with code 2; `--debug` shows its traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys

from trustbits import TrustbitsError, __version__

# name -> one-line help. Order is the order `--help` lists them.
COMMANDS = {
    "info": "show a model's architecture and quantizable linear modules",
    "eval": "score a model (or a plan) on the DecodingTrust perspectives",
    "quantize": "quantize a model with a plan and write a deployable artifact",
    "latency": "measure decode and prefill latency of a model or a plan",
    "search": "launch or resume a study: a multi-objective search over plans and ensembles",
    "pareto": "show a study's Pareto front as a table and a plot",
    "export": "export a trial of a study as a plan, a library config or an ensemble manifest",
    "report": "write a Markdown report of a study with tables and plots",
    "cache": "list, size or clear the quantized-layer and model caches",
}


def _available_commands() -> dict[str, object]:
    """Command modules present in this installation (commands land issue by issue)."""
    found = {}
    for name in COMMANDS:
        try:
            found[name] = importlib.import_module(f"trustbits.search.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"trustbits.search.commands.{name}":
                raise
    return found


_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
# SQLite says "database or disk is full" for ENOSPC and "disk I/O error" when a write fails
# otherwise (a file-size limit, a quota, a failing disk).
_DISK_FULL_TEXT = ("database or disk is full", "no space left on device", "file too large", "disk quota exceeded", "disk i/o error")


def disk_full(exc: BaseException) -> TrustbitsError | None:
    """A full disk (or a file-size limit) anywhere in the exception chain, as a user error.

    Writes that fail this way leave nothing half-written that is read later: caches write to a
    temporary file and rename, SQLite rolls back its transaction."""
    seen = 0
    while exc is not None and seen < 10:
        text = str(exc).lower()
        if (isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS) or any(t in text for t in _DISK_FULL_TEXT):
            where = getattr(exc, "filename", None)
            return TrustbitsError(
                f"a write to disk failed{f' ({where})' if where else ''}: the disk is full or failing ({str(exc).splitlines()[0][:120]})",
                "free some space (or point TRUSTBITS_CACHE at a larger disk) and run the same command again: finished trials and cached layers are kept",
            )
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trustbits",
        description="Find quantization configurations of an LLM that stay trustworthy.",
    )
    parser.add_argument("--version", action="version", version=f"trustbits {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _available_commands().items():
        p = sub.add_parser(name, help=COMMANDS[name], description=COMMANDS[name])
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug logs")
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except Exception as e:  # only user errors and a full disk are turned into one line
        user_error = e if isinstance(e, TrustbitsError) else disk_full(e)
        if user_error is None or args.debug:
            raise
        from trustbits.search.console import error_console

        error_console().print(f"[bold red]error:[/] {user_error.message}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
