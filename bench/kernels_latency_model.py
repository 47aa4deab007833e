"""Predicted against measured latency for several plans of the embedded model.

    .venv/bin/python bench/kernels_latency_model.py [--threads 2] [--repeats 5]

For float32 and each plan (uniform 8/4/3/2-bit, two mixed plans; RTN weights, see
kernels_rtn.py) it measures decode ms/token and prefill tokens/s with `measure_latency`, asks
`LatencyModel.predict` for the same plan, and prints both with the relative error. The
model's remainder and the kernel timings are measured in this run (or reused from this
device's cache: pass --fresh to measure them again).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import trustbits  # noqa: F401, E402  (before transformers: keeps our kernels/ from shadowing HF's)


def plans(modules) -> dict[str, dict]:
    names = [m.name for m in modules]
    uniform = {f"uniform {b}-bit": {n: (b, 64) for n in names} for b in (8, 4, 3, 2)}
    mixed_a = {n: (8, 64) if ("down_proj" in n or n == "lm_head") else (4, 64) for n in names}
    mixed_b = {n: None if n == "lm_head" else (3, 64) if ".mlp." in n else (4, 128) for n in names}
    return {"float32": {n: None for n in names}, **uniform, "mixed 8/4 (down, head 8)": mixed_a, "mixed 3/4, float head": mixed_b}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--decode-tokens", type=int, default=16)
    ap.add_argument("--fresh", action="store_true", help="measure the remainder and kernel table again")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch
    from kernels_rtn import quantize_model
    from rich.console import Console
    from rich.table import Table

    from trustbits.kernels import LatencyModel, device_name, measure_latency
    from trustbits.quant.inventory import quantizable_modules
    from trustbits.quant.loading import load_model

    torch.set_num_threads(args.threads)
    console = Console()
    loaded = load_model(args.model)
    model = loaded.model
    modules = quantizable_modules(model)
    proto = dict(prompt_len=args.prompt_len, decode_tokens=args.decode_tokens)
    t0 = time.perf_counter()
    lm = LatencyModel.for_model(model, reuse=not args.fresh, **proto)
    console.print(f"device: {device_name(torch.device('cpu'))}; remainder {lm.remainder.decode_ms:.2f} ms/token decode, "
                  f"{lm.remainder.prefill_ms:.1f} ms prefill ({time.perf_counter() - t0:.1f} s)")
    rows = []
    for label, plan in plans(modules).items():
        t1 = time.perf_counter()
        est = lm.predict(modules, plan)
        t_pred = time.perf_counter() - t1
        restore = quantize_model(model, plan)
        try:
            meas = measure_latency(model, repeats=args.repeats, warmup=1, **proto)
        finally:
            restore()
        d_err = est.decode_ms_per_token / meas.decode_ms_per_token.median - 1
        p_err = est.prefill_tokens_per_s / meas.prefill_tokens_per_s.median - 1
        rows.append(dict(plan=label, measured_decode_ms=meas.decode_ms_per_token.median, decode_iqr=(meas.decode_ms_per_token.q1, meas.decode_ms_per_token.q3),
                         modelled_decode_ms=est.decode_ms_per_token, decode_error=d_err,
                         measured_prefill_tps=meas.prefill_tokens_per_s.median, modelled_prefill_tps=est.prefill_tokens_per_s, prefill_error=p_err,
                         kernels=meas.kernels, predict_seconds=t_pred))
        console.print(f"  {label}: measured {meas.decode_ms_per_token.median:.2f} ms/token, modelled {est.decode_ms_per_token:.2f} ({d_err:+.1%}); "
                      f"prefill measured {meas.prefill_tokens_per_s.median:.0f} tok/s, modelled {est.prefill_tokens_per_s:.0f} ({p_err:+.1%}); kernels {meas.kernels}")
    table = Table(title=f"latency model vs measurement, {args.model}, {args.threads} threads, prompt {args.prompt_len}, {args.repeats} repeats (medians)")
    for col in ("plan", "decode ms/tok measured [IQR]", "modelled", "error", "prefill tok/s measured", "modelled", "error"):
        table.add_column(col, justify="left" if col == "plan" else "right")
    for r in rows:
        table.add_row(r["plan"], f"{r['measured_decode_ms']:.2f} [{r['decode_iqr'][0]:.2f}-{r['decode_iqr'][1]:.2f}]", f"{r['modelled_decode_ms']:.2f}",
                      f"{r['decode_error']:+.1%}", f"{r['measured_prefill_tps']:.0f}", f"{r['modelled_prefill_tps']:.0f}", f"{r['prefill_error']:+.1%}")
    console.print(table)
    abs_d = [abs(r["decode_error"]) for r in rows]
    abs_p = [abs(r["prefill_error"]) for r in rows]
    console.print(f"decode error: mean {statistics.mean(abs_d):.1%}, max {max(abs_d):.1%}; prefill error: mean {statistics.mean(abs_p):.1%}, max {max(abs_p):.1%} "
                  f"over {len(rows)} plans (goal: within 15%)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
