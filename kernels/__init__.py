"""trustbits.kernels: low-bit matmul dispatch and the latency objective.

What the rest of trustbits calls (imported lazily: importing this package does not import
torch)::

    from trustbits.kernels import (QTensor, QuantLinear, measure_latency, LatencyModel,
                                   ensemble_latency, timing_table)

    # 1. Quantized modules. `trustbits.quant` builds a QTensor per module and swaps in
    #    QuantLinear(qtensor, bias, compute_dtype); construction is cheap (layouts are made on
    #    the first call that needs them).
    layer = QuantLinear(qt, bias=None, compute_dtype=torch.float32)
    layer(x); layer.kernel_name          # e.g. "cpu-lowbit", "cpu-int4pack", "dequant-cached"

    # 2. Measured latency of a whole (quantized) model on the current device.
    m = measure_latency(model, prompt_len=128, decode_tokens=16, repeats=5, warmup=1)
    m.decode_ms_per_token.median, m.decode_ms_per_token.q1, .q3, .min, .max
    m.prefill_tokens_per_s.median

    # 3. Modelled latency of a plan, for the search (no model run per trial).
    lm = LatencyModel.for_model(model)          # measures the non-linear remainder once
    est = lm.predict(modules, specs)            # modules: .name/.in_features/.out_features;
    est.decode_ms_per_token, est.prefill_tokens_per_s, est.modelled   # specs: name -> (bits, group) | None

    # 4. Ensembles: members one after another (sum) or side by side (slowest).
    ensemble_latency([est_3bit, est_4bit, est_8bit], parallel=False)

Dispatch: for each (device, compute dtype, bits, group size, shape) and regime (activation rows
per call: 1, 4, 16, 128+), every kernel that supports the case is timed with its weights out of
cache, once per device (`timing_table`, cached under `$TRUSTBITS_CACHE/kernels/`, keyed by the
device's name and thread count), and the fastest runs:

* `cpu-lowbit`: trustbits' C++ fused unpack-and-matmul for 2/3/4/8 bits, float32 activations
  (agrees with dequantize-then-matmul to 1e-5), built once per machine with g++;
* `cpu-int4pack`: PyTorch's `_weight_int4pack_mm_for_cpu` for codes of at most 4 bits,
  bfloat16 activations (tolerance 2e-2);
* `cuda-int4pack`: PyTorch's tinygemm int4 kernel on NVIDIA GPUs (bfloat16);
* `dequant-cached`: the labelled fallback, a float weight dequantized once and the dense
  matmul; available everywhere.

Evaluation (many tokens per call: the scorer's batched prompts) is compute-bound and on this
CPU runs on `dequant-cached` (MKL float32 matmul), which the measurements pick at 128 rows;
decode at batch 1 is memory-bound and runs on a low-bit kernel. Scoring runs inside
`exact_kernels()`, which rules out kernels that round activations (`cpu-int4pack`) whatever
the row count, so that a plan's scores do not depend on how its prompts were batched.
"""

from __future__ import annotations

from trustbits.lazy import lazy_exports

_EXPORTS = {
    "QTensor": "trustbits.kernels.qtensor",
    "pack_codes": "trustbits.kernels.qtensor",
    "unpack_codes": "trustbits.kernels.qtensor",
    "QuantLinear": "trustbits.kernels.linear",
    "QuantEmbedding": "trustbits.kernels.linear",
    "choose": "trustbits.kernels.dispatch",
    "candidates": "trustbits.kernels.dispatch",
    "bucket_for": "trustbits.kernels.dispatch",
    "exact_kernels": "trustbits.kernels.dispatch",
    "BUCKETS": "trustbits.kernels.dispatch",
    "KERNELS": "trustbits.kernels.dispatch",
    "timing_table": "trustbits.kernels.table",
    "TimingTable": "trustbits.kernels.table",
    "device_name": "trustbits.kernels.device",
    "measure_latency": "trustbits.kernels.measure",
    "LatencyMeasurement": "trustbits.kernels.measure",
    "Spread": "trustbits.kernels.measure",
    "LatencyModel": "trustbits.kernels.latency_model",
    "LatencyEstimate": "trustbits.kernels.latency_model",
    "ensemble_latency": "trustbits.kernels.ensemble",
    "EnsembleLatency": "trustbits.kernels.ensemble",
    "copy_bandwidth": "trustbits.kernels.timing",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
