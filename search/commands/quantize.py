"""`trustbits quantize`: quantize a model with a plan (or a uniform spec) and write an artifact.

    trustbits quantize --model builtin:smollm2-135m-instruct --bits 4 -o out/smollm2-hqq4
    trustbits quantize --plan plan.json -o out/mixed
    trustbits quantize --bits 4 --method gptq --format gptqmodel -o out/gptq4

Formats:
  trustbits  (default) trustbits' own folder; loads back with `--model DIR` everywhere, to the
             logits the assembled plan gave.
  gptqmodel  a GPTQ checkpoint made by GPTQModel's own sequential pipeline on the same shipped
             calibration text (plans whose modules are all `gptq`, or kept); loads with
             `GPTQModel.load` and, through it, vLLM and SGLang. With `--method awq` (uniform
             plans only, CUDA only) it is GPTQModel's AWQ.
"""

from __future__ import annotations

import argparse

from trustbits.search.commands._common import add_json_argument, add_model_arguments, write_json

FORMATS = ("trustbits", "gptqmodel")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trustbits.quant.plan import BITS, DEFAULT_GROUP_SIZE, DEFAULT_METHOD, GROUP_SIZES, METHODS

    add_model_arguments(parser)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--plan", metavar="PLAN.json", help="a plan written by trustbits (search export, Plan.save)")
    what.add_argument("--bits", type=int, metavar="B", help=f"a uniform plan at B bits ({', '.join(map(str, BITS))})")
    parser.add_argument("--method", default=DEFAULT_METHOD, help=f"method of a uniform plan: {', '.join(METHODS)} (default: {DEFAULT_METHOD})")
    parser.add_argument("--group-size", type=int, default=DEFAULT_GROUP_SIZE, help=f"group size of a uniform plan: {', '.join(map(str, GROUP_SIZES))} (default: {DEFAULT_GROUP_SIZE})")
    parser.add_argument("--keep-head", action="store_true", help="leave the output head unquantized in a uniform plan")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write (must be empty or absent)")
    parser.add_argument("--format", choices=FORMATS, default=FORMATS[0], help="artifact format (default: trustbits)")
    parser.add_argument("--keep-dtype", default=None, help="dtype of unquantized tensors in the artifact: float16, bfloat16, float32 (default: float16)")
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    add_json_argument(parser)


def run(args) -> int:
    from pathlib import Path

    from trustbits.errors import TrustbitsError
    from trustbits.quant.footprint import DEFAULT_KEEP_DTYPE
    from trustbits.quant.inventory import quantizable_modules
    from trustbits.quant.loading import load_model
    from trustbits.quant.plan import Plan, QuantSpec
    from trustbits.search.console import error_console

    spec = QuantSpec(args.method, args.bits, args.group_size) if args.bits is not None else None
    plan = Plan.load(args.plan) if args.plan else None  # fail on a bad plan before loading
    out = Path(args.output)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise TrustbitsError(f"output folder '{out}' exists and is not empty", "choose another folder or pass --overwrite")
    _refuse_early(args, spec, plan)
    with error_console().status(f"loading {args.model}"):
        loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    if loaded.quantized:
        raise TrustbitsError(f"'{loaded.name}' is already quantized", f"quantize its float base model ({loaded.quantized.get('base_model')}) instead")
    names = [m.name for m in quantizable_modules(loaded.model)]
    if plan is None:
        plan = Plan.uniform(names, spec, model_name=loaded.name, model_fingerprint=loaded.fingerprint)
        if args.keep_head:
            plan.modules[names[-1]] = None
    plan.check_model(names, loaded.fingerprint)
    if args.format == "gptqmodel" or (spec is not None and spec.method == "awq"):
        return _run_gptqmodel(args, loaded, plan, spec, out)
    return _run_trustbits(args, loaded, plan, out, args.keep_dtype or DEFAULT_KEEP_DTYPE)


def _refuse_early(args, spec, plan) -> None:
    """Errors knowable before loading the model (loading takes seconds)."""
    from trustbits.devices import resolve_device
    from trustbits.errors import TrustbitsError
    from trustbits.quant.methods.awq import refusal

    methods = {spec.method} if spec else {s.method for s in plan.specs()}
    if "awq" in methods and (plan is not None or resolve_device(args.device).type != "cuda"):
        raise refusal(resolve_device(args.device) if plan is None else "cuda")
    if args.format == "gptqmodel" and methods - {"gptq"}:
        raise TrustbitsError(f"--format gptqmodel writes GPTQ checkpoints, but the plan uses '{min(methods - {'gptq'})}'", "use --method gptq (or the trustbits format for other methods)")


def _run_trustbits(args, loaded, plan, out, keep_dtype: str) -> int:
    from trustbits.quant.artifact import save_artifact
    from trustbits.quant.assemble import apply_plan
    from trustbits.quant.cache import LayerCache
    from trustbits.quant.progress import rich_progress
    from trustbits.search.console import console

    cache = LayerCache.for_model(loaded)
    with rich_progress() as progress:
        applied = apply_plan(loaded, plan, cache=cache, progress=progress, keep_dtype=keep_dtype)
    with applied:
        save_artifact(applied, out, keep_dtype=keep_dtype, overwrite=args.overwrite)
        summary = applied.summary() | {"output": str(out), "format": "trustbits", "model": loaded.name, "keep_dtype": keep_dtype}
    if args.json == "-":
        write_json("-", summary)
        return 0
    console().print(
        f"wrote [bold]{out}[/]: {summary['total_bytes'] / 2**20:.2f} MiB as stored ({summary['bits_per_weight']:.2f} bits per quantized weight), "
        f"mean layer error {summary['mean_layer_error']:.4f} (worst {summary['max_layer_error']:.4f}, {summary['worst_layer']}); "
        f"{summary['layers_built']} layers quantized, assembled in {summary['assemble_seconds']:.1f} s",
        highlight=False,
    )
    if args.json:
        write_json(args.json, summary)
    return 0


def _run_gptqmodel(args, loaded, plan, spec, out) -> int:
    """A GPTQModel checkpoint: GPTQ (any plan of gptq/keep modules) or AWQ (uniform, CUDA)."""
    import shutil

    from trustbits.errors import TrustbitsError
    from trustbits.quant import _gptqmodel
    from trustbits.quant.calibration import calibration_ids
    from trustbits.quant.methods.awq import refusal
    from trustbits.search.console import console, error_console

    if spec is not None and spec.method == "awq":
        if loaded.device.type != "cuda":
            raise refusal(loaded.device)
        qcfg = _gptqmodel.awq_config(spec.bits, spec.group_size)
        kind = "AWQ"
    else:
        other = sorted({s.method for s in plan.specs()} - {"gptq"})
        if other:
            raise TrustbitsError(f"--format gptqmodel writes GPTQ checkpoints, but the plan uses '{other[0]}'", "use --method gptq (or the trustbits format for other methods)")
        head = list(plan.modules)[-1]
        if plan.modules[head] is not None:
            # GPTQModel keeps the head in float; refuse rather than silently store it in float.
            raise TrustbitsError("GPTQModel checkpoints keep the output head unquantized", "pass --keep-head (or keep the head in the plan)")
        bits, group, dynamic = _gptqmodel.dynamic_rules(plan)
        qcfg = _gptqmodel.quantize_config(bits, group, dynamic=dynamic)
        kind = "GPTQ"
    if out.exists():
        shutil.rmtree(out)
    with error_console().status(f"quantizing with GPTQModel ({kind}, sequential)"):
        _gptqmodel.quantize_model(loaded, qcfg, out, calibration_ids(loaded.tokenizer))
    console().print(f"wrote [bold]{out}[/]: a GPTQModel {kind} checkpoint (load it with GPTQModel.load)", highlight=False)
    if args.json:
        write_json(args.json, {"output": str(out), "format": "gptqmodel", "method": kind.lower()})
    return 0
