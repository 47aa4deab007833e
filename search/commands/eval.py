"""`trustbits eval`: score a model (or a model with a plan applied) on the DecodingTrust
perspectives, with a progress bar per task and a table of scores, intervals, subscores and
refusal rates.

    trustbits eval --model builtin:smollm2-135m-instruct --limit 50
    trustbits eval --plan cfg/plan.json --perspectives adv,ethics --dump records.jsonl
    trustbits eval --scoring generate --json scores.json      # certification run
"""

from __future__ import annotations

import argparse

from trustbits.search.commands._common import add_json_argument, add_model_arguments, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trustbits.metrics import defaults

    add_model_arguments(parser)
    parser.add_argument("--plan", metavar="PLAN.json", default=None, help="quantize the model with this plan first")
    parser.add_argument(
        "--perspectives",
        default=",".join(defaults.PERSPECTIVES),
        help=f"comma-separated perspectives, or paths of perspective .toml files (default: {','.join(defaults.PERSPECTIVES)})",
    )
    parser.add_argument("--settings", default=defaults.SETTINGS, help=f"'default', 'all', or comma-separated patterns such as 'style/*' (default: {defaults.SETTINGS})")
    # Parsed in run(), so a bad value is a one-line TrustbitsError like every other input error.
    parser.add_argument("--limit", default=None, metavar="N", help="at most N examples per task setting, label-stratified (default: all)")
    parser.add_argument("--seed", default=str(defaults.SUBSET_SEED), metavar="S", help=f"seed of the example subsets (default: {defaults.SUBSET_SEED})")
    parser.add_argument("--scoring", default=defaults.MODE, metavar="MODE", help=f"{' or '.join(defaults.MODES)} (default: {defaults.MODE})")
    parser.add_argument("--batch-size", default=None, metavar="N", help=f"rows per forward pass (default: up to {defaults.MAX_ROWS}, within token budgets)")
    parser.add_argument("--dump", metavar="FILE", default=None, help="write one JSON record per example to FILE (JSON lines)")
    add_json_argument(parser)


def _integer(value: str | None, flag: str, *, minimum: int) -> int | None:
    from trustbits.errors import TrustbitsError

    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise TrustbitsError(f"{flag} must be an integer >= {minimum}, not '{value}'", f"pass e.g. {flag} {max(minimum, 50)}")
    return number


def run(args) -> int:
    from trustbits.errors import TrustbitsError, did_you_mean
    from trustbits.metrics import aggregate, build_suite, defaults, write_jsonl
    from trustbits.search.console import error_console

    # Check every input before loading the model.
    limit = _integer(args.limit, "--limit", minimum=1)
    seed = _integer(args.seed, "--seed", minimum=0)
    batch_size = _integer(args.batch_size, "--batch-size", minimum=1)
    if args.scoring not in defaults.MODES:
        raise TrustbitsError(f"unknown scoring mode '{args.scoring}'", did_you_mean(args.scoring, defaults.MODES))
    settings = args.settings if args.settings in ("default", "all") else [p.strip() for p in args.settings.split(",") if p.strip()]
    suite = build_suite(args.perspectives, limit=limit, seed=seed, settings=settings)
    plan = _load_plan(args.plan) if args.plan else None

    from trustbits.quant.loading import load_model

    with error_console().status(f"loading {args.model}"):
        loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    applied = _apply_plan(loaded, plan) if plan else None
    records = _score_with_bars(loaded, suite, args.scoring, batch_size)
    if args.dump:
        write_jsonl(records, args.dump)
    scores = aggregate(records, suite, require_complete=True)
    scores.metadata.update({"model": loaded.name, "fingerprint": loaded.fingerprint, "scoring": args.scoring, "limit": limit, "seed": seed})
    if applied is not None:
        scores.metadata["plan"] = args.plan
        scores.metadata["footprint_bytes"] = applied.footprint.total_bytes
    if args.json == "-":
        write_json("-", scores.to_json())
        return 0
    _print_table(scores, suite, args)
    if args.json:
        write_json(args.json, scores.to_json())
    return 0


def _load_plan(path: str):
    from trustbits.quant.plan import Plan

    return Plan.load(path)


def _apply_plan(loaded, plan):
    from trustbits.errors import TrustbitsError

    try:
        from trustbits.quant.assemble import apply_plan
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("trustbits.quant"):
            raise
        raise TrustbitsError("--plan needs trustbits.quant.assemble, which this installation lacks", "run without --plan, or install a trustbits with quantization") from None
    from trustbits.quant.progress import rich_progress

    with rich_progress() as progress:
        return apply_plan(loaded, plan, progress=progress)


def _score_with_bars(loaded, suite, mode: str, batch_size: int | None):
    """Score task by task, one rich bar per task (perspective/task)."""
    from rich.progress import Progress

    from trustbits.kernels import exact_kernels
    from trustbits.metrics import score
    from trustbits.progress import bar_columns
    from trustbits.search.console import error_console

    tasks = list(dict.fromkeys((s.spec.perspective, s.spec.task) for s in suite))
    records = []
    # Exact kernels: the same scores as the search's, however the prompts are batched.
    with Progress(*bar_columns(), console=error_console()) as bars, exact_kernels():
        ids = {t: bars.add_task(f"{t[0]}/{t[1]}", total=len(suite.select(perspective=t[0], task=t[1]))) for t in tasks}
        for task in tasks:
            part = suite.select(perspective=task[0], task=task[1])
            records += score(
                loaded.model,
                loaded.tokenizer,
                part,
                mode=mode,
                batch_size=batch_size,
                progress=lambda done, total, bar=ids[task]: bars.update(bar, completed=done),
            )
    return records


def _print_table(scores, suite, args) -> None:
    from rich.table import Table

    from trustbits.search.console import console

    def interval(iv) -> str:
        return f"[{iv.low:5.1f}, {iv.high:5.1f}]"

    table = Table(title=f"DecodingTrust scores of {scores.metadata['model']} ({args.scoring})")
    for column, justify in [("perspective", "left"), ("score", "right"), ("95% interval", "right"), ("refusal %", "right"), ("examples", "right")]:
        table.add_column(column, justify=justify)
    for name, p in scores.perspectives.items():
        score = f"{p.score.value:.1f}" if p.score else "-"
        refusal = f"{p.refusal_rate:.1f}" if p.refusal_rate is not None else "-"
        table.add_row(f"[bold]{name}[/] ({p.title})", score, interval(p.score) if p.score else "", refusal, str(p.n))
        for sub, iv in p.subscores.items():
            table.add_row(f"  {sub}", f"{iv.value:.1f}", interval(iv), "", "")
        for sub, iv in p.reported.items():
            table.add_row(f"  [dim]{sub} (reported)[/]", f"[dim]{iv.value:.1f}[/]", f"[dim]{interval(iv)}[/]", "", "")
    if scores.trust:
        table.add_row("[bold]trust[/] (mean of the perspectives)", f"[bold]{scores.trust.value:.1f}[/]", interval(scores.trust), "", str(scores.metadata["examples"]))
    out = console()
    out.print(table)
    out.print(f"[dim]suite {suite.fingerprint()}; intervals: {scores.metadata['bootstrap']['samples']} bootstrap resamples[/]", highlight=False)
    for note in scores.metadata["notes"]:
        out.print(f"[dim]- {note}[/]", highlight=False)
