"""Predicting a plan's latency without running it: measured linear times plus the measured rest.

Measuring a whole model per trial is too slow for a search, and bits do not predict speed
(a 3-bit weight may run slower than a 4-bit one). So:

    decode ms/token  = remainder.decode_ms + sum over modules of [t(module, spec, 1 row) + call]
    prefill seconds  = remainder.prefill_s + sum over modules of [t(module, spec, rows) + call]
    prefill tokens/s = prompt_len / prefill seconds

where t is the time of the kernel the dispatch picks for that spec and row count, taken from
the per-device `TimingTable` (measured once per device, weights out of cache), rows is
`prompt_len` for every module but the output head (prefill computes logits for the last
position only, as generation does, so the head sees 1 row), and the remainder is everything
that is not a quantizable linear (embedding, attention, norms, rotary, residuals, Python
overhead): measured once per model architecture and protocol by running the model with every
linear replaced by a free stand-in that returns zeros of the right shape. `call` is the
measured Python cost of calling the module around its kernel (`overhead.py`), minus that of
the stand-in it replaced in the remainder.

Every figure a `LatencyEstimate` carries is modelled (`modelled=True`); the inputs were
measured. `bench/kernels_latency_model.py` checks predictions against `measure_latency`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from trustbits.kernels.device import device_name, device_slug
from trustbits.kernels.dispatch import bucket_for, timed_choices
from trustbits.kernels.overhead import FreeLinear
from trustbits.kernels.measure import DECODE_TOKENS, PROMPT_LEN, REPEATS, WARMUP, measure_latency, model_device
from trustbits.kernels.table import timing_table
from trustbits.paths import cache_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Remainder:
    """The measured non-linear part of one model architecture on one device."""

    decode_ms: float
    prefill_ms: float
    prompt_len: int
    decode_tokens: int
    head_names: tuple[str, ...]
    n_linears: int
    device: str
    arch_key: str


@dataclass(frozen=True)
class LatencyEstimate:
    """A modelled latency (see the module docstring); the breakdown shows where time goes."""

    decode_ms_per_token: float
    prefill_tokens_per_s: float
    linear_decode_ms: float
    remainder_decode_ms: float
    linear_prefill_ms: float
    remainder_prefill_ms: float
    prompt_len: int
    device: str
    kernels: dict[str, int] = field(default_factory=dict)
    modelled: bool = True

    def to_json(self) -> dict:
        return asdict(self)


def linear_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every nn.Linear and QuantLinear of `model` (what the quant inventory lists)."""
    from trustbits.kernels.linear import QuantLinear

    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, QuantLinear))]


@contextmanager
def linears_removed(model: nn.Module):
    """Temporarily replace every linear of `model` by a free stand-in; restored on exit."""
    swapped = []
    try:
        for name, mod in linear_modules(model):
            parent_name, _, leaf = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, leaf, FreeLinear(mod.out_features))
            swapped.append((parent, leaf, mod))
        yield
    finally:
        for parent, leaf, mod in reversed(swapped):
            setattr(parent, leaf, mod)


def _head_names(model: nn.Module) -> tuple[str, ...]:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return tuple(n for n, m in model.named_modules() if head is not None and m is head)


def _arch_key(model: nn.Module, dtype: torch.dtype, prompt_len: int, decode_tokens: int) -> str:
    config = model.config.to_json_string(use_diff=False) if hasattr(model, "config") else type(model).__name__
    ident = f"{config}|{dtype}|{prompt_len}|{decode_tokens}"
    return hashlib.blake2b(ident.encode(), digest_size=8).hexdigest()


def _spec_of(spec) -> tuple[int, int] | None:
    """(bits, group_size) from a tuple, an object with those attributes, or None (float)."""
    if spec is None:
        return None
    if isinstance(spec, tuple):
        return int(spec[0]), int(spec[1])
    return int(spec.bits), int(spec.group_size)


class LatencyModel:
    """Predicts decode and prefill latency of plans for one model on the current device.

    Build it with `LatencyModel.for_model(model)` (measures the remainder once; cached on disk
    per device and architecture), then call `predict` per plan.

    Args:
        remainder: the measured non-linear part.
        device: where the linears run (default: the remainder's model device).
        dtype: compute dtype of the linears (float32 on the CPU).
    """

    def __init__(self, remainder: Remainder, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        self.remainder = remainder
        self.device = torch.device(device)
        self.dtype = dtype

    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        *,
        prompt_len: int = PROMPT_LEN,
        decode_tokens: int = DECODE_TOKENS,
        repeats: int = REPEATS,
        warmup: int = WARMUP,
        reuse: bool = True,
    ) -> "LatencyModel":
        """Measure (or reuse from the cache) the remainder of `model`'s architecture."""
        device = model_device(model)
        dtype = next((m.weight.dtype for _, m in linear_modules(model) if isinstance(m, nn.Linear)), torch.float32)
        key = _arch_key(model, dtype, prompt_len, decode_tokens)
        name = device_name(device)
        path = cache_dir("kernels") / f"remainder-{device_slug(name)}.json"
        stored = _read_json(path)
        entry = stored.get(key) if reuse and stored.get("_device") == name else None
        if entry is None:
            with linears_removed(model):
                m = measure_latency(model, prompt_len=prompt_len, decode_tokens=decode_tokens, repeats=repeats, warmup=warmup)
            entry = {
                "decode_ms": m.decode_ms_per_token.median,
                "prefill_ms": 1e3 * prompt_len / m.prefill_tokens_per_s.median,
            }
            stored = stored if stored.get("_device") == name else {"_device": name}
            stored[key] = entry
            _write_json(path, stored)
            log.info("measured the non-linear remainder on %s: %.2f ms/token decode, %.1f ms prefill", name, entry["decode_ms"], entry["prefill_ms"])
        remainder = Remainder(
            entry["decode_ms"], entry["prefill_ms"], prompt_len, decode_tokens, _head_names(model), len(linear_modules(model)), name, key
        )
        return cls(remainder, device=device, dtype=dtype)

    def linear_seconds(self, shape: tuple[int, int], spec, rows: int) -> tuple[float, str]:
        """(seconds per call, kernel name) for one module under `spec` at `rows` rows: the
        kernel the dispatch picks at that regime, timed at exactly `rows` rows."""
        bs = _spec_of(spec)
        bits, group = bs if bs else (None, None)
        times = timed_choices(bits, group, shape, self.device, self.dtype, rows)
        kernel = min(times, key=times.get)
        if rows == bucket_for(rows):
            return times[kernel], kernel
        from trustbits.kernels.dispatch import kernel_by_name

        return timing_table(self.device).seconds(kernel_by_name(kernel), tuple(shape), bits, group, self.dtype, rows), kernel

    def predict(self, modules: Iterable, specs: Mapping[str, object]) -> LatencyEstimate:
        """The modelled latency of a plan.

        Args:
            modules: objects with `name`, `in_features`, `out_features` (e.g. quant's
                `ModuleInfo`), every quantizable linear of the model.
            specs: module name -> `(bits, group_size)`, or an object with `.bits` and
                `.group_size` (a QuantSpec), or None for a module left in float.

        Raises:
            ValueError: a module without an entry in `specs`.
        """
        r = self.remainder
        table = timing_table(self.device)
        overhead = {kind: table.call_overhead(kind, self.dtype) for kind in ("float", "quant", "free")}
        # The remainder was measured with free stand-ins in place of the linears: take their
        # cost out; each module then adds its kernel time plus its own module's call cost.
        decode_s = prefill_s = -r.n_linears * overhead["free"]
        census: dict[str, int] = {}
        for m in modules:
            if m.name not in specs:
                raise ValueError(f"specs has no entry for module '{m.name}'; give every module (bits, group_size) or None")
            shape = (int(m.out_features), int(m.in_features))
            t1, kernel = self.linear_seconds(shape, specs[m.name], 1)
            rows = 1 if m.name in r.head_names else r.prompt_len
            tp, _ = self.linear_seconds(shape, specs[m.name], rows)
            call = overhead["float" if specs[m.name] is None else "quant"]
            decode_s += t1 + call
            prefill_s += tp + call
            census[kernel] = census.get(kernel, 0) + 1
        table.save()
        prefill_ms = r.prefill_ms + 1e3 * prefill_s
        return LatencyEstimate(
            decode_ms_per_token=r.decode_ms + 1e3 * decode_s,
            prefill_tokens_per_s=1e3 * r.prompt_len / prefill_ms,
            linear_decode_ms=1e3 * decode_s,
            remainder_decode_ms=r.decode_ms,
            linear_prefill_ms=1e3 * prefill_s,
            remainder_prefill_ms=r.prefill_ms,
            prompt_len=r.prompt_len,
            device=r.device,
            kernels=dict(sorted(census.items())),
        )


def _read_json(path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}


def _write_json(path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)
