"""Measuring a whole model's latency: decode time per token at batch 1, and prefill throughput.

Protocol (the latency model predicts the same thing, so both use it):

1. `warmup` untimed rounds: kernel choices are measured and cached, layouts prepared, the
   thread pool started.
2. `repeats` timed rounds, each: a prefill of `prompt_len` random tokens (batch 1, logits for
   the last position only, as generation computes them), then `decode_tokens` single-token
   steps on its KV cache (batch 1, fixed token ids: no sampling time).
3. Per round, prefill throughput = prompt_len / prefill seconds, and decode time per token =
   decode seconds / decode_tokens. Each figure is reported as the median over rounds with its
   spread (min, quartiles, max).

The garbage collector is paused while timing. On a shared machine the spread shows the noise;
the median resists it.
"""

from __future__ import annotations

import gc
import inspect
import statistics
import time
from dataclasses import asdict, dataclass, field

import torch

from trustbits.kernels.device import device_name, synchronize

from trustbits.kernels.protocol import DECODE_TOKENS, PROMPT_LEN, REPEATS, WARMUP  # noqa: E402  (re-exported)


@dataclass(frozen=True)
class Spread:
    """A median over repeated measurements, with its spread."""

    median: float
    q1: float
    q3: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> "Spread":
        v = sorted(values)
        if len(v) >= 2:
            q1, _, q3 = statistics.quantiles(v, n=4, method="inclusive")
        else:
            q1 = q3 = v[0]
        return cls(statistics.median(v), q1, q3, v[0], v[-1], len(v))

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LatencyMeasurement:
    """What `measure_latency` measured (all figures measured in that call).

    Attributes:
        decode_ms_per_token: milliseconds per decoded token at batch 1.
        prefill_tokens_per_s: prompt tokens per second in the prefill.
        prompt_len, decode_tokens, repeats: the protocol.
        device: the device's name (`device.device_name`).
        kernels: kernel name -> number of QuantLinear modules that ran it in decode.
        modelled: always False: these are measurements.
    """

    decode_ms_per_token: Spread
    prefill_tokens_per_s: Spread
    prompt_len: int
    decode_tokens: int
    repeats: int
    device: str
    kernels: dict[str, int] = field(default_factory=dict)
    modelled: bool = False

    def to_json(self) -> dict:
        d = asdict(self)
        d["decode_ms_per_token"] = self.decode_ms_per_token.to_json()
        d["prefill_tokens_per_s"] = self.prefill_tokens_per_s.to_json()
        return d


def _cache_kwarg(model) -> str:
    """transformers 5 calls the KV cache argument `cache`; older versions `past_key_values`."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _returned_cache(out):
    return getattr(out, "cache", None) if getattr(out, "cache", None) is not None else getattr(out, "past_key_values", None)


def model_device(model) -> torch.device:
    p = next(iter(model.parameters()), None)
    if p is not None:
        return p.device
    b = next(iter(model.buffers()), None)
    return b.device if b is not None else torch.device("cpu")


def measure_latency(
    model,
    *,
    prompt_len: int = PROMPT_LEN,
    decode_tokens: int = DECODE_TOKENS,
    repeats: int = REPEATS,
    warmup: int = WARMUP,
    seed: int = 0,
) -> LatencyMeasurement:
    """Measure decode and prefill latency of `model` on the device it is on (protocol above).

    Args:
        model: a causal LM (transformers), float or with QuantLinear modules.
        prompt_len: prompt tokens in each prefill.
        decode_tokens: single-token decode steps after each prefill.
        repeats: timed rounds (the medians are over these).
        warmup: untimed rounds first.

    Raises:
        ValueError: a count below 1 (or warmup below 0).

    Example:
        >>> m = measure_latency(loaded.model, repeats=3)
        >>> m.decode_ms_per_token.median, m.prefill_tokens_per_s.median
    """
    for name, value, low in (("prompt_len", prompt_len, 1), ("decode_tokens", decode_tokens, 1), ("repeats", repeats, 1), ("warmup", warmup, 0)):
        if value < low:
            raise ValueError(f"{name} must be at least {low}, got {value}")
    device = model_device(model)
    vocab = int(getattr(model.config, "vocab_size", 1000))
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (1, prompt_len), generator=gen).to(device)
    decode_ids = torch.randint(0, vocab, (1, decode_tokens), generator=gen).to(device)
    for _ in range(warmup):
        _round(model, ids, decode_ids)
    prefill, decode = [], []
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            p, d = _round(model, ids, decode_ids)
            prefill.append(prompt_len / p)
            decode.append(1e3 * d / decode_tokens)
    finally:
        if was_enabled:
            gc.enable()
    return LatencyMeasurement(
        decode_ms_per_token=Spread.of(decode),
        prefill_tokens_per_s=Spread.of(prefill),
        prompt_len=prompt_len,
        decode_tokens=decode_tokens,
        repeats=repeats,
        device=device_name(device),
        kernels=kernel_census(model),
    )


def _round(model, ids: torch.Tensor, decode_ids: torch.Tensor) -> tuple[float, float]:
    """Prefill `ids`, then decode `decode_ids` one at a time on its cache."""
    device = ids.device
    kw = _cache_kwarg(model)
    with torch.inference_mode():
        synchronize(device)
        t0 = time.perf_counter()
        out = model(ids, use_cache=True, logits_to_keep=1)
        synchronize(device)
        t1 = time.perf_counter()
        cache = _returned_cache(out)
        for i in range(decode_ids.shape[1]):
            out = model(decode_ids[:, i : i + 1], use_cache=True, logits_to_keep=1, **{kw: cache})
            cache = _returned_cache(out)
        synchronize(device)
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def kernel_census(model) -> dict[str, int]:
    """Kernel name -> how many QuantLinear modules of `model` ran it last (decode, after a
    measurement); plain nn.Linear modules count as `float`."""
    from torch import nn

    from trustbits.kernels.linear import QuantLinear

    counts: dict[str, int] = {}
    for mod in model.modules():
        if isinstance(mod, QuantLinear):
            name = mod.kernel_name
        elif isinstance(mod, nn.Linear):
            name = "float"
        else:
            continue
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))
