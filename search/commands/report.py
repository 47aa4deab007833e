"""`trustbits report SPEC -o DIR`: a Markdown report of a study with tables and plots."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="the study spec (.toml)")
    parser.add_argument("-o", "--output", required=True, help="folder for README.md and its figures")
    parser.add_argument("--storage", default=None, help="the study's storage, if not the spec's default")
    parser.add_argument("--study", default=None, metavar="NAME", help="a study forked from this spec")
    parser.add_argument("--no-certify", action="store_true", help="skip the generate-mode certification of the front (it runs the model)")
    parser.add_argument("--max-certify", type=int, default=6, help="certify at most this many front configurations (default 6)")


def run(args) -> int:
    from pathlib import Path

    from trustbits.search.console import console, error_console
    from trustbits.search.report import write_report
    from trustbits.search.study_access import open_study

    opened = open_study(args.spec, storage=args.storage, study_name=args.study)
    from rich.progress import Progress

    from trustbits.progress import bar_columns

    with Progress(*bar_columns(), console=error_console()) as bar:
        task = bar.add_task("certify", total=1, visible=False)

        def progress(description, done, total):
            bar.update(task, description=description, completed=done, total=total, visible=True)

        path = write_report(opened, Path(args.output), certify_front=not args.no_certify, max_certify=args.max_certify, progress=progress)
    console().print(f"wrote {path}", highlight=False)
    return 0
