"""Calibration activations: what GPTQ needs, and what every layer's error is measured on.

For each quantizable module we need only the second moment of its inputs,

    H = X^T X / n        [in, in], float32, X [n_tokens, in] the module's calibration inputs,

because GPTQ works from H, and the relative output error of a quantized weight is

    || X (W - W_q)^T ||_F / || X W^T ||_F  =  sqrt( tr(dW H dW^T) / tr(W H W^T) ).

One forward pass of the float model over the shipped calibration text (`data/calibration.txt`,
written for trustbits, no download) fills H for every module through forward hooks. Modules
fed the same tensor (q/k/v, gate/up) share one H. Memory: sum of in^2 x 4 bytes over distinct
inputs (about 400 MB for SmolLM2-135M).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from importlib.resources import files

import torch
from torch import nn

log = logging.getLogger(__name__)


def shipped_text(name: str = "calibration.txt") -> str:
    """A text file shipped in `trustbits/quant/data/` (calibration.txt, heldout.txt)."""
    return files("trustbits.quant").joinpath("data", name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class CalibrationConfig:
    """Which tokens calibrate.

    Attributes:
        text: name of a shipped text file (see `shipped_text`).
        seq_len: tokens per sequence.
        max_tokens: cap on tokens used (the shipped text has about 2,400 SmolLM2 tokens).
        batch_size: sequences per forward pass.
    """

    text: str = "calibration.txt"
    seq_len: int = 256
    max_tokens: int = 2048
    batch_size: int = 2


def calibration_ids(tokenizer, config: CalibrationConfig = CalibrationConfig()) -> torch.Tensor:
    """Token ids [n_seq, seq_len] cut from the calibration text (the last partial window dropped)."""
    ids = tokenizer(shipped_text(config.text), add_special_tokens=False, return_tensors="pt").input_ids[0]
    n_seq = min(len(ids), config.max_tokens) // config.seq_len
    if n_seq == 0:
        # A tokenizer that packs the text into fewer tokens than one window: use what there is.
        return ids[: config.max_tokens].unsqueeze(0)
    return ids[: n_seq * config.seq_len].view(n_seq, config.seq_len)


def calibration_key(tokenizer, config: CalibrationConfig = CalibrationConfig()) -> str:
    """Identifies the calibration tokens; stored with every cached error and GPTQ layer."""
    ids = calibration_ids(tokenizer, config)
    return hashlib.blake2b(ids.numpy().tobytes() + repr(config).encode(), digest_size=4).hexdigest()


class _StopForward(Exception):
    """Raised by the head's pre-hook: the calibration pass has what it needs."""


@dataclass
class Calibration:
    """H for each module of one model (see the module docstring).

    Attributes:
        hessians: module name -> H [in, in] float32 (shared objects for modules fed one input).
        n_tokens: tokens every H averages over.
        key: `calibration_key` of the tokens.
    """

    hessians: dict[str, torch.Tensor]
    n_tokens: int
    key: str
    _norms: dict[str, float] = field(default_factory=dict, repr=False)

    def relative_error(self, name: str, weight: torch.Tensor, approx: torch.Tensor) -> float:
        """sqrt(tr(dW H dW^T) / tr(W H W^T)) for module `name`: its relative output error."""
        h = self.hessians[name].to(weight.device)
        if name not in self._norms:
            w = weight.float()
            self._norms[name] = float(((w @ h) * w).sum())
        dw = weight.float() - approx.float()
        num = float(((dw @ h) * dw).sum())
        return (max(num, 0.0) / self._norms[name]) ** 0.5 if self._norms[name] > 0 else 0.0


@torch.no_grad()
def capture(model: nn.Module, tokenizer, module_names: list[str], config: CalibrationConfig = CalibrationConfig(), progress=None) -> Calibration:
    """Run the float model over the calibration text and return H for `module_names`.

    Args:
        model: the unquantized model (its linears must be nn.Linear).
        module_names: the modules to capture (others get no hook).
        progress: optional callable(done, total, description), called per batch.
    """
    ids = calibration_ids(tokenizer, config)
    device = next(model.parameters()).device
    hessians: dict[str, torch.Tensor] = {}
    # Inputs seen in the current batch: (data_ptr, shape) -> (the tensor, the accumulator of
    # the module that saw it first), so q/k/v (and gate/up) share one H. Holding the tensor
    # keeps its memory from being reused by a later input at the same address.
    batch_inputs: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
    followers: set[str] = set()  # modules whose H another module accumulates

    def hook(name):
        def fn(_module, args, _output=None):
            x = args[0].detach()
            key = (x.data_ptr(), tuple(x.shape))
            if name not in hessians:
                if key in batch_inputs:
                    hessians[name] = batch_inputs[key][1]
                    followers.add(name)
                    return
                hessians[name] = torch.zeros(x.shape[-1], x.shape[-1], dtype=torch.float32, device=x.device)
            if name in followers:
                return
            flat = x.reshape(-1, x.shape[-1]).float()  # [tokens, in]
            hessians[name].addmm_(flat.T, flat)
            batch_inputs[key] = (x, hessians[name])

        return fn

    # The output head runs last and its logits are not needed: record its input, then stop the
    # forward pass before the [batch, seq, vocab] matmul (a sixth of SmolLM2's compute).
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    head_name = next((n for n in module_names if head is not None and model.get_submodule(n) is head), None)

    def stop_at_head(module, args):
        if head_name:
            hook(head_name)(module, args)
        raise _StopForward

    handles = [model.get_submodule(n).register_forward_hook(hook(n)) for n in module_names if n != head_name]
    if head is not None:
        handles.append(head.register_forward_pre_hook(stop_at_head))
    try:
        batches = ids.split(config.batch_size)
        for i, batch in enumerate(batches):
            batch_inputs.clear()
            try:
                model(input_ids=batch.to(device), use_cache=False)
            except _StopForward:
                pass
            if progress:
                progress(i + 1, len(batches), "calibration forward")
    finally:
        batch_inputs.clear()
        for h in handles:
            h.remove()
    n = ids.numel()
    for h in {id(t): t for t in hessians.values()}.values():
        h.div_(n)
    log.info("captured calibration Hessians for %d modules on %d tokens", len(hessians), n)
    return Calibration(hessians, n, calibration_key(tokenizer, config))
