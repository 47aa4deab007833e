"""`trustbits export SPEC --trial N --format F -o DIR`: a front trial as a deployable config."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trustbits.search.export import FORMATS

    parser.add_argument("spec", help="the study spec (.toml)")
    parser.add_argument("--trial", type=int, required=True, help="trial number (see `trustbits pareto`)")
    parser.add_argument("--format", default="json", help=f"one of: {', '.join(FORMATS)} (default: json)")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.add_argument("--storage", default=None, help="the study's storage, if not the spec's default")
    parser.add_argument("--study", default=None, metavar="NAME", help="a study forked from this spec (search --fork NAME)")
    parser.add_argument("--allow-off-front", action="store_true", help="export a complete trial that is not on the front (e.g. a baseline)")


def run(args) -> int:
    from trustbits.search.console import console
    from trustbits.search.export import check_format, export_trial
    from trustbits.search.study_access import open_study

    check_format(args.format)
    opened = open_study(args.spec, storage=args.storage, study_name=args.study)
    written = export_trial(opened.study, args.trial, args.format, args.output, allow_off_front=args.allow_off_front)
    for p in written:
        console().print(f"wrote {p}", highlight=False)
    return 0
