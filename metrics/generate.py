"""Greedy decoding that reuses a setting's shared prefix (generate mode).

DecodingTrust decodes greedily (temperature 0) for at most 16 (AdvGLUE) or 20 tokens. Rows of
a batch are right-padded suffixes after the shared prefix; explicit position ids and a mask
over the cached keys let each row continue from its own length, so the prefix is computed
once and copied per batch, as in loglik mode. The loop stops when every row has produced an
end-of-sequence token or the token budget is spent.
"""

from __future__ import annotations

import numpy as np
import torch

from trustbits.metrics.forward import PrefixKV, mask_dtype, model_device, tree_row, batch_inputs


def stop_token_ids(model, tokenizer) -> set[int]:
    """End-of-sequence ids: the generation config's (an int or a list) and the tokenizer's."""
    ids = set()
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (config_eos, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(int(v) for v in value)
    return ids


def greedy_rows(model, prefix: PrefixKV, suffixes: list[list[int]], max_new_tokens: int, stop_ids: set[int]) -> list[list[int]]:
    """Greedy continuations of `suffixes` (each after the prefix), without their stop token."""
    device, dtype = model_device(model), mask_dtype(model)
    batch = len(suffixes)
    lengths = torch.tensor([len(s) for s in suffixes])
    # First pass: the suffixes, reading the logits at each row's last token.
    inputs = batch_inputs([tree_row(s, []) for s in suffixes], prefix.length, device, dtype)
    cache = prefix.fresh_cache(batch)
    if cache is None:
        from transformers import DynamicCache

        cache = DynamicCache()
    out = model(**inputs, use_cache=True, logits_to_keep=(lengths - 1)[:, None].to(device), **{prefix.cache_keyword: cache})
    next_tokens = out.logits[:, -1].argmax(-1)
    # Which cached keys each row may attend to: (B, keys). Prefix and own suffix, not padding.
    width = inputs["input_ids"].shape[1]
    valid = np.zeros((batch, prefix.length + width), dtype=bool)
    valid[:, : prefix.length] = True
    for b, n in enumerate(lengths.tolist()):
        valid[b, prefix.length : prefix.length + n] = True
    generated: list[list[int]] = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    for step in range(max_new_tokens):
        for b, token in enumerate(next_tokens.tolist()):
            if done[b]:
                continue
            if token in stop_ids:
                done[b] = True
            else:
                generated[b].append(token)
        if done.all() or step == max_new_tokens - 1:
            break
        # The token fed now is cached as one more key that every row attends to.
        valid = np.concatenate([valid, np.ones((batch, 1), dtype=bool)], axis=1)
        mask = torch.zeros(valid.shape, dtype=dtype)
        mask.masked_fill_(torch.from_numpy(~valid), torch.finfo(dtype).min)
        positions = (prefix.length + lengths + step)[:, None]
        out = model(
            input_ids=next_tokens[:, None],
            attention_mask=mask[:, None, None, :].to(device),
            position_ids=positions.to(device),
            use_cache=True,
            logits_to_keep=1,
            **{prefix.cache_keyword: cache},
        )
        next_tokens = out.logits[:, -1].argmax(-1)
    return generated
