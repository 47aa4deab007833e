"""Bench: what the layer cache's GPTQ approximation costs.

    .venv/bin/python bench/quant_gptq_approx.py [--threads 2] [--group-size 64]

GPTQ is sequential: layer k is calibrated on inputs from layers < k already quantized. The layer
cache instead quantizes every layer once per bit-width on the float model's activations, so a
mixed plan assembled from it is an approximation (EvoPress makes the same one). This bench
quantizes the same plans both ways on the same calibration tokens and GPTQ settings (symmetric,
damp 0.05, no activation order):

  cached      assembled from the trustbits layer cache (GPTQModel's per-layer routine, float-prefix H)
  sequential  GPTQModel's own full pipeline with the plan as `dynamic` per-module bits

and reports perplexity on the held-out text, the relative logit difference between the two,
their relative weight difference per layer, and each one's layer error on the float H. Layer 0's
attention projections see identical inputs both ways, so their difference checks the two paths
agree where they should.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quant_common import setup  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--group-size", type=int, default=64)
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    ap.add_argument("--plans", default="uniform4,mixed", help="uniform4 and/or mixed (per-layer random 3/4/8 bits, seed 0)")
    ap.add_argument("--cache", default=None)
    args = ap.parse_args()
    setup(args.threads, args.cache)

    import torch

    import trustbits  # noqa: F401
    from trustbits.quant import LayerCache, Plan, QuantSpec, apply_plan, load_model, perplexity, quantizable_modules
    from trustbits.quant import _gptqmodel
    from trustbits.quant.calibration import calibration_ids, shipped_text

    loaded = load_model(args.model)
    model, tok = loaded.model, loaded.tokenizer
    names = [m.name for m in quantizable_modules(model)]
    g = args.group_size
    rng = random.Random(0)
    plans = {}
    if "uniform4" in args.plans:
        plans["uniform gptq:4"] = Plan.uniform(names, QuantSpec("gptq", 4, g), model_fingerprint=loaded.fingerprint)
    if "mixed" in args.plans:
        per_layer = {str(i): f"gptq:{rng.choice([3, 4, 8])}:{g}" for i in range(model.config.num_hidden_layers)}
        plans["mixed gptq:{3,4,8} per layer"] = Plan.per_layer_range(names, per_layer, model_fingerprint=loaded.fingerprint)
    for plan in plans.values():
        plan.modules[names[-1]] = None  # GPTQModel keeps the head in float

    ids = tok(shipped_text("heldout.txt"), add_special_tokens=False, return_tensors="pt").input_ids[:, :1024]

    @torch.no_grad()
    def logits():
        return torch.cat([model(input_ids=w, use_cache=False).logits.float() for w in ids.split(256, dim=1)], dim=1)

    ref = logits()
    ppl_float = perplexity(model, tok)
    cache = LayerCache.for_model(loaded)
    calib = cache.calibration(loaded)
    print(f"model {args.model}, group {g}, {args.threads} threads; float perplexity {ppl_float:.2f}")
    for label, plan in plans.items():
        t0 = time.perf_counter()
        with apply_plan(loaded, plan, cache=cache) as applied:
            cached_s = time.perf_counter() - t0
            l_cached, ppl_cached = logits(), perplexity(model, tok)
            cached_w = {n: model.get_submodule(n).qtensor.dequantize() for n in applied.layer_errors}
            err_cached = applied.layer_errors
        bits, group, dynamic = _gptqmodel.dynamic_rules(plan)
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            _gptqmodel.quantize_model(loaded, _gptqmodel.quantize_config(bits, group, dynamic=dynamic), Path(out) / "ckpt", calibration_ids(tok))
            seq_s = time.perf_counter() - t0
            seq_w = _gptqmodel.dequantized_weights(_gptqmodel.load_checkpoint(Path(out) / "ckpt"))
        missing = set(cached_w) - set(seq_w)
        assert not missing, f"GPTQModel did not quantize {sorted(missing)[:3]}"
        # Run the float model with the sequential weights swapped in, then put the float weights back.
        originals = {n: model.get_submodule(n).weight.data.clone() for n in cached_w}
        for n in cached_w:
            model.get_submodule(n).weight.data.copy_(seq_w[n])
        l_seq, ppl_seq = logits(), perplexity(model, tok)
        err_seq = {n: calib.relative_error(n, originals[n], seq_w[n]) for n in cached_w}
        for n, w in originals.items():
            model.get_submodule(n).weight.data.copy_(w)

        def rel(a, b):
            return float((a - b).norm() / b.norm())

        wdiff = {n: rel(cached_w[n], seq_w[n]) for n in cached_w}
        first = names[0]
        print(f"\n## {label}  (cached: assembled in {cached_s:.1f} s incl. building; sequential GPTQModel: {seq_s:.0f} s)")
        print("| | perplexity | ppl / float | logit rel. diff vs float | mean layer err (float H) |")
        print("|---|---|---|---|---|")
        print(f"| cached (float-prefix) | {ppl_cached:.2f} | {ppl_cached / ppl_float:.3f} | {rel(l_cached, ref):.4f} | {sum(err_cached.values()) / len(err_cached):.4f} |")
        print(f"| sequential (GPTQModel) | {ppl_seq:.2f} | {ppl_seq / ppl_float:.3f} | {rel(l_seq, ref):.4f} | {sum(err_seq.values()) / len(err_seq):.4f} |")
        print(f"cached vs sequential: logits rel. diff {rel(l_cached, l_seq):.4f}; weights rel. diff mean {sum(wdiff.values()) / len(wdiff):.4f}, max {max(wdiff.values()):.4f} ({max(wdiff, key=wdiff.get)})")
        print(f"check, same inputs both ways: {first} weights rel. diff {wdiff[first]:.2e}")


if __name__ == "__main__":
    main()
