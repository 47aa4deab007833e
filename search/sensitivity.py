"""How much each group of modules hurts the model when quantized: measured once, cached.

For every group of the search space and every bit-width it may take, quantize that group
alone (everything else in float) and measure the mean KL divergence of the next-token
distribution from the float model's on shipped held-out text. The table is cached under
``$TRUSTBITS_CACHE/sensitivity/<model fingerprint>/`` keyed by the groups, the method and
group size, and the text, so a second study on the same model and space measures nothing.
Used to seed studies with budgeted allocations (see `trustbits.search.seeds`), the way
ExLlamaV2 and AutoRound allocate bits from measured per-layer errors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

from trustbits.paths import cache_dir
from trustbits.quant.plan import KEEP_BITS, Plan, QuantSpec

log = logging.getLogger(__name__)
PROBE_TEXT = "heldout.txt"
PROBE_TOKENS = 256


def _probe_ids(tokenizer) -> torch.Tensor:
    from trustbits.quant.calibration import shipped_text

    ids = tokenizer(shipped_text(PROBE_TEXT), add_special_tokens=False, return_tensors="pt").input_ids[0]
    return ids[:PROBE_TOKENS].unsqueeze(0)  # [1, T]


@torch.no_grad()
def _log_probs(model, ids: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=ids.to(next(model.parameters()).device), use_cache=False).logits
    return torch.log_softmax(logits.float(), dim=-1)  # [1, T, vocab]


def _cache_file(space, fingerprint: str, ids: torch.Tensor) -> Path:
    key = json.dumps(
        {"groups": space.groups, "bits": sorted(set(space.bits) | set(space.head_bits)), "method": space.methods[0], "group_size": space.group_sizes[0]},
        sort_keys=True,
    )
    digest = hashlib.blake2b(key.encode() + ids.numpy().tobytes(), digest_size=8).hexdigest()
    return cache_dir("sensitivity", fingerprint) / f"{digest}.json"


def measure_sensitivity(loaded, space, layer_cache, *, progress=None) -> dict[str, dict[int, float]]:
    """group -> {bits: mean KL(float || group quantized at bits)} (nats per token).

    Args:
        loaded: the float `LoadedModel`.
        space: the `SearchSpace` (groups and bit choices; its first method and group size).
        layer_cache: the quantized-layer cache the quantized groups come from.
        progress: optional callable(done, total, description).
    """
    from trustbits.kernels import exact_kernels
    from trustbits.quant.assemble import apply_plan

    ids = _probe_ids(loaded.tokenizer)
    path = _cache_file(space, loaded.fingerprint, ids)
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            return {g: {int(b): float(v) for b, v in row.items()} for g, row in data.items()}
        except (json.JSONDecodeError, ValueError, AttributeError):
            log.warning("sensitivity cache %s is unreadable; measuring again", path)
    reference = _log_probs(loaded.model, ids)
    method, group_size = space.methods[0], space.group_sizes[0]
    jobs = [(g, b) for g in space.groups for b in space.choices(g) if b != KEEP_BITS]
    table: dict[str, dict[int, float]] = {g: {KEEP_BITS: 0.0} for g in space.groups}
    for i, (group, bits) in enumerate(jobs):
        members = set(space.groups[group])
        spec = QuantSpec(method, bits, group_size)
        plan = Plan({m.name: (spec if m.name in members else None) for m in space.modules}, loaded.name, loaded.fingerprint)
        with apply_plan(loaded, plan, cache=layer_cache), exact_kernels():  # as scoring does
            quantized = _log_probs(loaded.model, ids)
        # KL(P_float || P_quant) per position, averaged over the probe's tokens.
        kl = torch.sum(reference.exp() * (reference - quantized), dim=-1).mean()
        table[group][bits] = max(float(kl), 0.0)
        if progress:
            progress(i + 1, len(jobs), "sensitivity")
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(table))
    os.replace(tmp, path)
    return table
