"""Bench: build the whole HQQ layer cache of the embedded model, then assemble plans from it.

    .venv/bin/python bench/quant_cache.py [--threads 2] [--group-size 64] [--plans 5]

Measures, in this run: the calibration pass (H for every module, used for the layer errors),
the cache build for hqq x {2,3,4,8} x one group size (211 modules each), and the time to
assemble a new random mixed plan (a) from disk in a fresh LayerCache (another process) and
(b) from a warm in-memory LayerCache (the search's case), plus restore(). Targets (issue 4):
build < 2 min, assembly < 2 s.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quant_common import setup  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--group-size", type=int, default=64)
    ap.add_argument("--plans", type=int, default=5)
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    ap.add_argument("--cache", default=None, help="cache root (default: a fresh temp folder)")
    args = ap.parse_args()
    root = setup(args.threads, args.cache)

    import torch

    import trustbits  # noqa: F401  (before transformers: see trustbits/__init__)
    from trustbits.quant import LayerCache, Plan, QuantSpec, apply_plan, load_model, quantizable_modules

    t0 = time.perf_counter()
    loaded = load_model(args.model)
    print(f"model {args.model}: loaded in {time.perf_counter() - t0:.1f} s; torch threads {args.threads}; cache {root}")
    names = [m.name for m in quantizable_modules(loaded.model)]
    cache = LayerCache.for_model(loaded)

    t0 = time.perf_counter()
    cache.calibration(loaded)
    calib_s = time.perf_counter() - t0
    print(f"calibration pass (H of {len(names)} modules, {cache.calibration(loaded).n_tokens} tokens): {calib_s:.1f} s")
    build_s = {}
    for bits in (2, 3, 4, 8):
        spec = QuantSpec("hqq", bits, args.group_size)
        t0 = time.perf_counter()
        built = cache.build(loaded, [spec])
        build_s[bits] = time.perf_counter() - t0
        print(f"  build hqq:{bits}:{args.group_size}: {built} modules in {build_s[bits]:.1f} s")
    total = calib_s + sum(build_s.values())
    print(f"whole HQQ cache (4 bit-widths x {len(names)} modules, calibration included): {total:.1f} s  [target < 120 s]; on disk {cache.size() / 2**20:.1f} MiB")

    rng = random.Random(0)
    prompt = loaded.tokenizer("The river town was built where two valleys meet, and for most of its history it lived on what the water brought.", return_tensors="pt").input_ids[:, :32]

    def random_plan():
        return Plan({n: rng.choice([None, *(QuantSpec("hqq", b, args.group_size) for b in (2, 3, 4, 8))]) for n in names}, model_fingerprint=loaded.fingerprint)

    for label, make_cache in (("fresh LayerCache, layers read from disk", lambda: LayerCache.for_model(loaded)), ("warm LayerCache (in memory)", lambda: cache)):
        times, restores, firsts = [], [], []
        for _ in range(args.plans):
            c = make_cache()
            plan = random_plan()
            t0 = time.perf_counter()
            applied = apply_plan(loaded, plan, cache=c)
            times.append(time.perf_counter() - t0)
            assert applied.built == 0
            # QuantLinear prepares its kernel lazily: the first forward pays for it.
            t0 = time.perf_counter()
            with torch.no_grad():
                loaded.model(input_ids=prompt, use_cache=False)
            firsts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            applied.restore()
            restores.append(time.perf_counter() - t0)
        med = sorted(times)[len(times) // 2]
        print(
            f"assemble a new random plan, {label}: median {med:.2f} s, max {max(times):.2f} s over {args.plans} plans [target < 2 s]; "
            f"then first forward (32 tokens, kernel preparation included) median {sorted(firsts)[len(firsts) // 2]:.2f} s; restore {max(restores) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
