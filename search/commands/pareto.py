"""`trustbits pareto SPEC`: the study's Pareto front as a table, a PNG and an HTML plot."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="the study spec (.toml)")
    parser.add_argument("--storage", default=None, help="the study's storage, if not the spec's default")
    parser.add_argument("--plot", default=None, metavar="DIR", help="where to write pareto.png and pareto.html (default: studies/NAME/)")
    parser.add_argument("--no-plot", action="store_true", help="print the table only")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the front as JSON ('-': JSON only, to stdout)")
    parser.add_argument("--study", default=None, metavar="NAME", help="a study forked from this spec (search --fork NAME)")
    parser.add_argument("--no-spec-check", action="store_true", help="read a study even if the spec changed since it was made")


def run(args) -> int:
    from trustbits.search.study_access import open_study

    opened = open_study(args.spec, storage=args.storage, check_spec=not args.no_spec_check, study_name=args.study)
    show(opened, plot=args.plot, no_plot=args.no_plot, json_target=args.json)
    return 0


def show(opened, *, plot=None, no_plot=False, json_target=None) -> None:
    """Print the front of an opened study, write its plots and (optionally) its JSON."""
    from pathlib import Path

    from trustbits.search.commands._common import write_json
    from trustbits.search.console import console
    from trustbits.search.front import load_front
    from trustbits.search.front_table import front_table

    front = load_front(opened.study)
    if json_target == "-":
        write_json("-", front.to_json())
        return
    console().print(front_table(front))
    if not no_plot:
        from optuna.trial import TrialState

        from trustbits.search.front import row_of
        from trustbits.search.plots import write_html, write_png

        folder = Path(plot) if plot else (opened.spec.path.parent / opened.spec.name)
        rows = [row_of(t, front.objectives, False) for t in opened.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        png = write_png(front, rows, folder / "pareto.png")
        html = write_html(front, rows, folder / "pareto.html")
        console().print(f"plots: {png}  {html}", highlight=False)
    if json_target:
        write_json(json_target, front.to_json())
