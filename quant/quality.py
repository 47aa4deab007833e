"""Model-level quality: perplexity on shipped text (`data/heldout.txt`, never used to calibrate).

Layer-level quality (each layer's relative output error on the calibration activations) is
measured when a layer is cached; see `trustbits.quant.calibration.Calibration.relative_error`.
"""

from __future__ import annotations

import math

import torch


@torch.no_grad()
def perplexity(model, tokenizer, text: str | None = None, *, seq_len: int = 256, max_tokens: int = 2048) -> float:
    """exp(mean next-token negative log-likelihood) over non-overlapping windows of `text`
    (default: the shipped held-out text), at most `max_tokens` tokens."""
    from trustbits.quant.calibration import shipped_text

    text = shipped_text("heldout.txt") if text is None else text
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids[0][:max_tokens]
    device = next(p for p in model.parameters()).device if any(True for _ in model.parameters()) else torch.device("cpu")
    nll, count = 0.0, 0
    for start in range(0, len(ids) - 1, seq_len):
        window = ids[start : start + seq_len + 1].to(device)
        if len(window) < 2:
            break
        logits = model(input_ids=window[None, :-1], use_cache=False).logits[0].float()
        nll += float(torch.nn.functional.cross_entropy(logits, window[1:], reduction="sum"))
        count += len(window) - 1
    return math.exp(nll / count)
