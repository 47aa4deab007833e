"""Decode latency of the embedded model at batch 1: float32, bfloat16 and low-bit plans, side by
side in one run, with each kernel's achieved memory bandwidth against the machine's peak.

    .venv/bin/python bench/kernels_decode.py [--threads 2] [--repeats 5]

Part 1, per kernel: the time of one linear call with its weights out of cache (the latency
table's cold timing) on SmolLM2's down projection (576x1536) and its head (49152x576), the
bytes the call reads (packed codes + scales/zeros, or the float weight) and the bandwidth that
makes, as a fraction of a STREAM-like copy measured in this run (read + write bytes).

Part 2, per plan: whole-model decode ms/token (median and IQR of `measure_latency`), its
speed-up over float32 measured in the same run, the weight bytes one token reads, and the
kernels that ran. Low-bit plans run once with automatic dispatch and once pinned to each
low-bit kernel. Weights are RTN (kernels_rtn.py): the time does not depend on the method.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import trustbits  # noqa: F401, E402  (before transformers: keeps our kernels/ from shadowing HF's)

SHAPES = {"down 576x1536": (576, 1536), "head 49152x576": (49152, 576)}


def kernel_bandwidth(console, threads: int, peak: float) -> list[dict]:
    import torch
    from rich.table import Table

    from trustbits.kernels.dispatch import FLOAT, KERNELS
    from trustbits.kernels.table import timing_table

    cpu = torch.device("cpu")
    table = timing_table(cpu)
    rows = []
    cases = [(FLOAT, None)] + [(k, b) for k in KERNELS for b in (8, 4, 3, 2) if k.name != "dequant-cached"]
    for kernel, bits in cases:
        for label, shape in SHAPES.items():
            if bits is not None and kernel.unsupported(bits, 64, shape, cpu, torch.float32):
                continue
            t = table.seconds(kernel, shape, bits, 64 if bits else None, torch.float32, 1)
            nbytes = table.weight_bytes(kernel.name, shape, bits, 64 if bits else None, torch.float32)
            rows.append(dict(kernel=kernel.name, bits=bits or 32, shape=label, us=t * 1e6, bytes=nbytes, gbps=nbytes / t / 1e9, of_peak=nbytes / t / peak))
    t = Table(title=f"one linear call, weights out of cache, batch 1, {threads} threads; peak = copy {peak / 1e9:.1f} GB/s (measured now)")
    for col in ("kernel", "bits", "shape", "us/call", "MB read", "GB/s", "of peak"):
        t.add_column(col, justify="left" if col in ("kernel", "shape") else "right")
    for r in rows:
        t.add_row(r["kernel"], str(r["bits"]), r["shape"], f"{r['us']:.0f}", f"{r['bytes'] / 1e6:.2f}", f"{r['gbps']:.1f}", f"{r['of_peak']:.0%}")
    console.print(t)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--decode-tokens", type=int, default=16)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch
    from kernels_rtn import quantize_model
    from rich.console import Console
    from rich.table import Table

    from trustbits.kernels import copy_bandwidth, device_name, measure_latency
    from trustbits.kernels.linear import QuantLinear
    from trustbits.quant.inventory import quantizable_modules
    from trustbits.quant.loading import load_model

    torch.set_num_threads(args.threads)
    console = Console()
    peak = copy_bandwidth("cpu")
    console.print(f"{device_name('cpu')}; STREAM-like copy: {peak / 1e9:.1f} GB/s (read + write, 512 MiB, median of 7)")
    kernels = kernel_bandwidth(console, args.threads, peak)

    loaded = load_model(args.model)
    model = loaded.model
    names = [m.name for m in quantizable_modules(model)]
    mixed = {n: (8, 64) if ("down_proj" in n or n == "lm_head") else (3, 64) if ".mlp." in n else (4, 64) for n in names}
    plans = [("float32", None, None), ("bfloat16", None, None)]
    for bits in (8, 4, 3, 2):
        plans.append((f"{bits}-bit auto", {n: (bits, 64) for n in names}, None))
        for pinned in ("cpu-lowbit", "cpu-int4pack"):
            if pinned == "cpu-int4pack" and bits > 4:
                continue
            plans.append((f"{bits}-bit {pinned}", {n: (bits, 64) for n in names}, pinned))
    plans.append(("mixed 8/4/3 auto", mixed, None))
    proto = dict(prompt_len=args.prompt_len, decode_tokens=args.decode_tokens, repeats=args.repeats, warmup=1)

    results = []
    for label, plan, pinned in plans:
        if label == "bfloat16":
            target = copy.deepcopy(model).to(torch.bfloat16)
            restore = None
        else:
            target = model
            restore = quantize_model(model, plan, pin_kernel=pinned) if plan else None
        try:
            m = measure_latency(target, **proto)
            weight_bytes = 0
            for mod in target.modules():
                if isinstance(mod, QuantLinear):
                    cpu = torch.device("cpu")
                    weight_bytes += mod._state(mod.kernel_for(1, cpu), cpu).nbytes
                elif isinstance(mod, torch.nn.Linear):
                    weight_bytes += mod.weight.numel() * mod.weight.element_size()
        finally:
            if restore:
                restore()
            del target
        results.append(dict(plan=label, decode=m.decode_ms_per_token, kernels=m.kernels, weight_bytes=weight_bytes))
        console.print(f"  {label}: {m.decode_ms_per_token.median:.2f} ms/token [IQR {m.decode_ms_per_token.q1:.2f}-{m.decode_ms_per_token.q3:.2f}]  {m.kernels}")

    base = results[0]["decode"].median
    t = Table(title=f"decode at batch 1, {args.model}, {args.threads} threads, after a {args.prompt_len}-token prompt; medians of {args.repeats} rounds x {args.decode_tokens} tokens")
    for col in ("plan", "ms/token [IQR]", "vs float32", "weight MB/token", "weights GB/s", "kernels"):
        t.add_column(col, justify="left" if col in ("plan", "kernels") else "right")
    for r in results:
        d = r["decode"]
        t.add_row(r["plan"], f"{d.median:.2f} [{d.q1:.2f}-{d.q3:.2f}]", f"{base / d.median:.2f}x", f"{r['weight_bytes'] / 1e6:.1f}",
                  f"{r['weight_bytes'] / (d.median / 1e3) / 1e9:.1f}", ", ".join(f"{k} x{n}" for k, n in r["kernels"].items()))
    console.print(t)
    console.print("weights GB/s = weight bytes of one token / whole decode step time (the step includes the non-linear remainder).")
    if args.json:
        Path(args.json).write_text(json.dumps({"peak_copy_bytes_per_s": peak, "kernels": kernels,
                                               "plans": [dict(r, decode=r["decode"].to_json()) for r in results]}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
