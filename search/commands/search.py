"""`trustbits search SPEC`: launch a study, or resume it (running it again continues it)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="the study spec (.toml), e.g. studies/smollm2-demo.toml")
    parser.add_argument("--storage", default=None, help="sqlite:///FILE.db (default: beside the spec), journal, or postgresql://... for many machines")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine (more than one uses a journal file)")
    parser.add_argument("--fork", metavar="NEW_NAME", default=None, help="start a new study from this spec under another name (reuses the layer cache)")
    parser.add_argument("--trials", type=int, default=None, help="override the spec's trial budget (budget.trials)")
    parser.add_argument("--no-progress", action="store_true", help="no live view (logs only)")
    parser.add_argument("--no-front", action="store_true", help="do not print the front at the end")


def run(args) -> int:
    import dataclasses

    from trustbits.errors import TrustbitsError
    from trustbits.search.console import console
    from trustbits.search.spec import load_spec

    spec = load_spec(args.spec)
    if args.workers < 1:
        raise TrustbitsError(f"--workers {args.workers} must be at least 1", "pass --workers 1 or more")
    if args.trials is not None:
        if args.trials < 1:
            raise TrustbitsError(f"--trials {args.trials} must be at least 1", "pass a positive trial budget")
        spec = dataclasses.replace(spec, budget=dataclasses.replace(spec.budget, trials=args.trials))
    if args.fork:
        spec = spec.with_name(args.fork)

    from trustbits.search.driver import run_search
    from trustbits.search.live import SearchView

    factory = None if args.no_progress else (lambda name, budget, done: SearchView(name, budget, done))
    summary = run_search(spec, storage=args.storage, workers=args.workers, view_factory=factory)
    saved = f"{summary.examples_saved} of {summary.examples_total} examples ({100 * summary.examples_saved / max(summary.examples_total, 1):.0f}%)"
    console().print(
        f"study [bold]{summary.study_name}[/] ({summary.location}): {summary.singles_done} single trials, "
        f"{summary.ensembles_done} ensembles; early stop ended {summary.early_stopped} trials and saved {saved}; "
        f"{summary.seconds / 60:.1f} min",
        highlight=False,
    )
    if not args.no_front:
        from trustbits.search.commands.pareto import show
        from trustbits.search.study_access import open_study

        show(open_study(args.spec, storage=args.storage, check_spec=False, study_name=args.fork))
    return 0
