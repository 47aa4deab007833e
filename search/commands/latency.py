"""`trustbits latency --model M [--plan PLAN.json | --bits B [--method hqq] [--group-size G]]`:
measure decode time per token (batch 1) and prefill throughput of a model or a plan on this
device, each as a median with its spread; `--predict` also prints the latency model's figure
for the same plan (labelled modelled)."""

from __future__ import annotations

import argparse

from trustbits.search.commands._common import add_json_argument, add_model_arguments, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trustbits.kernels.protocol import DECODE_TOKENS, PROMPT_LEN, REPEATS, WARMUP
    from trustbits.quant.plan import DEFAULT_GROUP_SIZE, DEFAULT_METHOD

    add_model_arguments(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--plan", metavar="PLAN.json", default=None, help="a plan written by trustbits (default: the float model)")
    which.add_argument("--bits", type=int, default=None, help="quantize every linear module uniformly at this bit-width")
    parser.add_argument("--method", default=DEFAULT_METHOD, help=f"method for --bits (default: {DEFAULT_METHOD})")
    parser.add_argument("--group-size", type=int, default=DEFAULT_GROUP_SIZE, help=f"group size for --bits (default: {DEFAULT_GROUP_SIZE})")
    parser.add_argument("--prompt-len", type=int, default=PROMPT_LEN, help=f"prompt tokens per prefill (default: {PROMPT_LEN})")
    parser.add_argument("--decode-tokens", type=int, default=DECODE_TOKENS, help=f"decode steps per round (default: {DECODE_TOKENS})")
    parser.add_argument("--repeats", type=int, default=REPEATS, help=f"timed rounds (default: {REPEATS})")
    parser.add_argument("--warmup", type=int, default=WARMUP, help=f"untimed rounds first (default: {WARMUP})")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--predict", action="store_true", help="also print the latency model's (modelled) figures for the same plan")
    add_json_argument(parser)


def _check(args) -> None:
    from trustbits.errors import TrustbitsError

    for flag, value, low in (
        ("--prompt-len", args.prompt_len, 1),
        ("--decode-tokens", args.decode_tokens, 1),
        ("--repeats", args.repeats, 1),
        ("--warmup", args.warmup, 0),
        ("--threads", args.threads if args.threads is not None else 1, 1),
    ):
        if value < low:
            raise TrustbitsError(f"{flag} must be at least {low}, got {value}", f"pass {flag} {max(low, 1)} or more")


def _read_plan_arguments(args):
    """The plan file or the uniform spec, read and validated before the model loads (a typo
    fails in a second, not after the load)."""
    from trustbits.quant.plan import Plan, QuantSpec

    if args.plan:
        return Plan.load(args.plan)
    if args.bits is not None:
        return QuantSpec(args.method, args.bits, args.group_size)
    return None


def _plan_for(requested, loaded, names):
    """The plan to apply, or None for the float model."""
    from trustbits.quant.plan import Plan, QuantSpec

    if isinstance(requested, QuantSpec):
        return Plan.uniform(names, requested, model_name=loaded.name, model_fingerprint=loaded.fingerprint)
    return requested


def _apply(loaded, plan):
    from trustbits.errors import TrustbitsError

    try:
        from trustbits.quant.assemble import apply_plan
    except ImportError as e:
        raise TrustbitsError(f"this installation cannot assemble plans ({e})", "install trustbits with its quant package, or drop --plan/--bits") from e
    return apply_plan(loaded, plan)


def _fmt(spread, digits: int) -> str:
    return f"{spread.median:.{digits}f} [IQR {spread.q1:.{digits}f}-{spread.q3:.{digits}f}, min {spread.min:.{digits}f}, max {spread.max:.{digits}f}]"


def run(args) -> int:
    _check(args)
    requested = _read_plan_arguments(args)
    import contextlib

    import torch

    from trustbits.kernels import LatencyModel, measure_latency
    from trustbits.quant.inventory import quantizable_modules
    from trustbits.quant.loading import load_model
    from trustbits.search.console import console, error_console

    if args.threads:
        torch.set_num_threads(args.threads)
    with error_console().status(f"loading {args.model}"):
        loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    modules = quantizable_modules(loaded.model)
    plan = _plan_for(requested, loaded, [m.name for m in modules])
    protocol = {"prompt_len": args.prompt_len, "decode_tokens": args.decode_tokens}
    estimate = None
    if args.predict:
        with error_console().status("latency model: measuring the non-linear remainder and kernel times (cached per device)"):
            lm = LatencyModel.for_model(loaded.model, **protocol)
            specs = {m.name: None for m in modules} if plan is None else {n: (None if s is None else (s.bits, s.group_size)) for n, s in plan.modules.items()}
            estimate = lm.predict(modules, specs)
    with contextlib.ExitStack() as stack:
        if plan is not None:
            with error_console().status("assembling the plan (quantizing layers the cache lacks)"):
                stack.enter_context(_apply(loaded, plan))
        with error_console().status(f"measuring: {args.warmup} warm-up + {args.repeats} timed rounds"):
            m = measure_latency(loaded.model, repeats=args.repeats, warmup=args.warmup, **protocol)
    what = "float model" if plan is None else (args.plan or f"uniform {args.method}:{args.bits}:{args.group_size}")
    result = {
        "model": loaded.name,
        "plan": what,
        "device": m.device,
        "decode_ms_per_token": m.decode_ms_per_token.to_json(),
        "prefill_tokens_per_s": m.prefill_tokens_per_s.to_json(),
        "protocol": {"prompt_len": m.prompt_len, "decode_tokens": m.decode_tokens, "repeats": m.repeats, "warmup": args.warmup},
        "kernels": m.kernels,
        "modelled": estimate.to_json() if estimate else None,
    }
    if args.json == "-":
        write_json("-", result)
        return 0
    out = console()
    out.print(f"[bold]{loaded.name}[/], {what}, on {m.device}", highlight=False)
    out.print(f"decode (batch 1):  {_fmt(m.decode_ms_per_token, 2)} ms/token   (measured, {m.repeats} rounds of {m.decode_tokens} tokens)", highlight=False)
    out.print(f"prefill ({m.prompt_len} tok):  {_fmt(m.prefill_tokens_per_s, 0)} tokens/s   (measured)", highlight=False)
    out.print("kernels (decode): " + ", ".join(f"{k} x{n}" for k, n in m.kernels.items()), highlight=False)
    if estimate:
        out.print(
            f"latency model:     {estimate.decode_ms_per_token:.2f} ms/token, {estimate.prefill_tokens_per_s:.0f} tokens/s   (modelled: "
            f"{estimate.remainder_decode_ms:.2f} ms non-linear remainder + {estimate.linear_decode_ms:.2f} ms linears per token)",
            highlight=False,
        )
    if args.json:
        write_json(args.json, result)
    return 0
