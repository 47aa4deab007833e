"""Bench: every method at every bit-width on the embedded model: layer errors and perplexity.

    .venv/bin/python bench/quant_methods.py [--threads 2] [--group-size 64] [--methods rtn,hqq,gptq] [--head keep|same]

For each method and bit-width, a uniform plan (the head kept by default, as GPTQModel does) is
built into a fresh layer cache and assembled; the row shows the mean and worst relative layer
output error on the calibration activations (||X (W - W_q)^T|| / ||X W^T||), perplexity on the
shipped held-out text (never used to calibrate) against the float model, the stored size, and the
build time. AWQ is not a row: GPTQModel's AWQ needs CUDA (see trustbits.quant.methods.awq).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quant_common import setup  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--group-size", type=int, default=64)
    ap.add_argument("--methods", default="rtn,hqq,gptq")
    ap.add_argument("--bits", default="2,3,4,8")
    ap.add_argument("--head", choices=("keep", "same"), default="keep")
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    ap.add_argument("--cache", default=None)
    args = ap.parse_args()
    setup(args.threads, args.cache)

    import trustbits  # noqa: F401
    from trustbits.quant import LayerCache, Plan, QuantSpec, apply_plan, load_model, perplexity, quantizable_modules

    loaded = load_model(args.model)
    names = [m.name for m in quantizable_modules(loaded.model)]
    cache = LayerCache.for_model(loaded)
    t0 = time.perf_counter()
    cache.calibration(loaded)
    print(f"model {args.model}, group {args.group_size}, head {args.head}, {args.threads} threads; calibration pass {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    ppl_float = perplexity(loaded.model, loaded.tokenizer)
    print(f"float perplexity on heldout.txt: {ppl_float:.2f} ({time.perf_counter() - t0:.1f} s)")
    fp_float = None
    rows = []
    header = f"| method | bits | mean layer err | max layer err | perplexity | ppl / float | MiB stored | build s |"
    print(header + "\n|---|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        for bits in map(int, args.bits.split(",")):
            spec = QuantSpec(method, bits, args.group_size)
            plan = Plan.uniform(names, spec, model_fingerprint=loaded.fingerprint)
            if args.head == "keep":
                plan.modules[names[-1]] = None
            t0 = time.perf_counter()
            cache.build(loaded, plan)
            build_s = time.perf_counter() - t0
            with apply_plan(loaded, plan, cache=cache) as applied:
                ppl = perplexity(loaded.model, loaded.tokenizer)
                errs = applied.layer_errors
                mib = applied.footprint.total_bytes / 2**20
            row = f"| {method} | {bits} | {sum(errs.values()) / len(errs):.4f} | {max(errs.values()):.4f} | {ppl:.2f} | {ppl / ppl_float:.3f} | {mib:.1f} | {build_s:.1f} |"
            rows.append(row)
            print(row, flush=True)
    from trustbits.quant.footprint import footprint

    keep = footprint(loaded.model, Plan.uniform(names, None)).total_bytes / 2**20
    print(f"| float | 16 | 0 | 0 | {ppl_float:.2f} | 1.000 | {keep:.1f} | - |")


if __name__ == "__main__":
    main()
