"""Forward passes that reuse a setting's shared prefix and read logits only where needed.

The shared prefix (system prompt, task message, demonstrations) is run once per model and
setting; its KV cache (`PrefixKV`) is then copied into a fresh cache for every batch, so the
stored prefix is never mutated (transformers' `DynamicCache.update` concatenates in place of
the cache object, so a reused object would grow).

A batch row holds one example's suffix tokens plus, for options longer than one token, the
option's tokens except its last, laid out as a tree: every option branch attends to the
prefix, the suffix and its own earlier tokens, never to another option's. A custom 4D
attention mask and explicit position ids express the tree, so all options of an example are
scored in the same pass without re-running the suffix. Logits are computed only at the
positions that are read (transformers' `logits_to_keep` with per-row positions), which spares
the vocabulary projection (49152 x 576 for SmolLM2) at every other position.

Works for any causal LM whose attention takes a 4D additive mask (``sdpa`` and ``eager``),
quantized or not: only the model's own forward is called.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

from trustbits.errors import TrustbitsError

_MASKABLE = ("sdpa", "eager")


def check_model(model) -> None:
    implementation = getattr(model.config, "_attn_implementation", None) or "eager"
    if implementation not in _MASKABLE:
        raise TrustbitsError(
            f"the model uses the '{implementation}' attention, which takes no custom attention mask",
            "load it with attn_implementation='sdpa' (or 'eager') to score it",
        )


def _cache_keyword(model) -> str:
    # transformers 5.2x renamed `past_key_values` to `cache` (the old name is deprecated).
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def mask_dtype(model) -> torch.dtype:
    # The activations' dtype. Not the embedding's weight: a quantized model's embedding may
    # hold no float weight at all (a QuantEmbedding sharing a quantized head).
    return model.dtype


class PrefixKV:
    """The KV cache of one setting's shared prefix, computed once and never mutated."""

    def __init__(self, model, prefix_ids: list[int]):
        self.length = len(prefix_ids)
        self.cache_keyword = _cache_keyword(model)
        self._layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        if self.length:
            cache = DynamicCache()
            ids = torch.tensor([prefix_ids], device=model_device(model))
            # logits_to_keep=1: the prefix's logits are never read; skip the projection.
            model(input_ids=ids, use_cache=True, logits_to_keep=1, **{self.cache_keyword: cache})
            # keys/values: (1, kv_heads, prefix_len, head_dim) per layer.
            self._layers = [(layer.keys, layer.values) for layer in cache.layers]

    def fresh_cache(self, batch: int) -> DynamicCache | None:
        """A new cache whose layers start as `batch` views of the prefix (None without one).

        The views cost nothing: the forward pass's `DynamicLayer.update` concatenates them
        with the batch's own keys into new tensors, the only copy of the prefix per batch
        (handing `DynamicCache` the expanded tensors directly would copy it twice). Nothing
        writes into a layer's tensors in place, so the stored prefix stays intact.
        """
        if not self.length:
            return None
        # Layers initialized empty (zero-length views), then pointed at the prefix views:
        # keys/values (batch, kv_heads, prefix_len, head_dim).
        cache = DynamicCache(ddp_cache_data=[(k[..., :0, :].expand(batch, -1, -1, -1), v[..., :0, :].expand(batch, -1, -1, -1)) for k, v in self._layers])
        for layer, (k, v) in zip(cache.layers, self._layers):
            layer.keys, layer.values = k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)
        return cache


@dataclass
class TreeRow:
    """One example's tokens after the prefix, with the option branches and what to read.

    Attributes:
        tokens: suffix tokens, then each option's tokens except its last.
        depth: each token's distance from the prefix end (its position is prefix + depth).
        allowed: (n, n) bool, token i may attend to token j of the row.
        reads: per option, [(row position whose logits predict the token, target token)].
    """

    tokens: list[int]
    depth: list[int]
    allowed: np.ndarray
    reads: list[list[tuple[int, int]]]


def tree_row(suffix: list[int], continuations: list[list[int]]) -> TreeRow:
    """Lay out `suffix` and the option `continuations` as one tree-masked row."""
    n_suffix = len(suffix)
    tokens, depth = list(suffix), list(range(n_suffix))
    branches, reads = [], []
    for cont in continuations:
        start = len(tokens)
        extension = list(cont[:-1])
        tokens += extension
        depth += [n_suffix + t for t in range(len(extension))]
        branches.append((start, len(extension)))
        # Token t of the option is predicted at the suffix's last token (t = 0) or at the
        # branch's token t - 1.
        reads.append([(n_suffix - 1 if t == 0 else start + t - 1, cont[t]) for t in range(len(cont))])
    n = len(tokens)
    allowed = np.zeros((n, n), dtype=bool)
    allowed[:n_suffix, :n_suffix] = np.tril(np.ones((n_suffix, n_suffix), dtype=bool))
    for start, length in branches:
        allowed[start : start + length, :n_suffix] = True
        allowed[start : start + length, start : start + length] = np.tril(np.ones((length, length), dtype=bool))
    return TreeRow(tokens, depth, allowed, reads)


def batch_inputs(rows: list[TreeRow], prefix_len: int, device, dtype) -> dict:
    """input_ids (B, n), position_ids (B, n) and the additive mask (B, 1, n, prefix + n)."""
    batch, n = len(rows), max(len(r.tokens) for r in rows)
    ids = np.zeros((batch, n), dtype=np.int64)
    positions = np.zeros((batch, n), dtype=np.int64)
    allowed = np.zeros((batch, n, prefix_len + n), dtype=bool)
    allowed[:, :, :prefix_len] = True
    for b, row in enumerate(rows):
        m = len(row.tokens)
        ids[b, :m] = row.tokens
        positions[b, :m] = prefix_len + np.asarray(row.depth)
        positions[b, m:] = prefix_len
        allowed[b, :m, prefix_len : prefix_len + m] = row.allowed
        # Padding queries attend to themselves only: no fully masked row, no NaN.
        allowed[b, np.arange(m, n), prefix_len + np.arange(m, n)] = True
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(torch.from_numpy(~allowed), torch.finfo(dtype).min)
    return {
        "input_ids": torch.from_numpy(ids).to(device),
        "position_ids": torch.from_numpy(positions).to(device),
        "attention_mask": mask[:, None].to(device),
    }


def score_rows(model, prefix: PrefixKV, rows: list[TreeRow]) -> list[list[float]]:
    """Summed log-probability of every option of every row, in one forward pass."""
    device, dtype = model_device(model), mask_dtype(model)
    inputs = batch_inputs(rows, prefix.length, device, dtype)
    flat = [[read for option in row.reads for read in option] for row in rows]
    width = max(len(f) for f in flat)
    read_at = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.zeros((len(rows), width), dtype=torch.long)
    for b, reads in enumerate(flat):
        read_at[b, : len(reads)] = torch.tensor([p for p, _ in reads])
        targets[b, : len(reads)] = torch.tensor([t for _, t in reads])
    out = model(
        **inputs,
        use_cache=True,
        logits_to_keep=read_at.to(device),
        **{prefix.cache_keyword: prefix.fresh_cache(len(rows))},
    )
    # logits: (B, width, vocab) -> log-probability of each read's target: (B, width).
    logprobs = torch.log_softmax(out.logits.float(), dim=-1).gather(-1, targets.to(device)[..., None])[..., 0].cpu()
    results = []
    for b, row in enumerate(rows):
        sums, offset = [], 0
        for option in row.reads:
            sums.append(float(logprobs[b, offset : offset + len(option)].sum()))
            offset += len(option)
        results.append(sums)
    return results


def plan_batches(lengths: list[int], prefix_len: int, *, max_rows: int, query_tokens: int, prefix_tokens: int) -> list[list[int]]:
    """Group row indices into batches of similar length within the token budgets.

    Rows are sorted longest first (a batch that does not fit shows at once), and a batch
    grows while rows x longest row <= `query_tokens` and rows x prefix <= `prefix_tokens`.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, current = [], []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        rows = len(current) + 1
        fits = rows <= max_rows and rows * longest <= query_tokens and rows * prefix_len <= prefix_tokens
        if current and not fits:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
