"""The one place trustbits touches GPTQModel, with every pitfall of `gptqmodel==7.6.0` contained:

* Missing package: a `TrustbitsError` with the pip command (the `trustbits[gptq]` extra, keeping
  the installed torch build: gptqmodel 7.7 would pull a 6 GB CUDA torch).
* `GPTQMODEL_CPU_WORKERS`: its default on a 2-core machine is 1 worker, and model loading then
  fails ("requests 2 workers but parent 'cpu' only has 1"); we set at least 2 when it is unset.
* Importing it rewrites the environment (`HF_HOME` to a temp folder when unset,
  `PYTORCH_ALLOC_CONF`, `CUDA_DEVICE_ORDER`) and prints a banner on stdout: we import it with
  stdout sent to stderr and put every variable back as it was.
* Whole-model quantization writes `./logs/` in the working directory: we point its log folder
  at a temporary one. Every `QuantizeConfig` we make has `offload_to_disk=False` (its default
  makes a temp folder per config and never removes it).
* Its defaults permute columns (`act_group_aware=True`), which breaks the contiguous groups a
  `QTensor` stores: we turn activation ordering off and quantize symmetrically (asymmetric
  2-bit files decode wrongly in some other readers).
* On the CPU, loading a checkpoint needs its `gptq_torch` backend (the default refuses widths
  that are not a multiple of the group, like SmolLM2's 576 with groups of 128); mixed-bit
  checkpoints load with `GPTQModel.load`, not transformers' `from_pretrained`.
* Its AWQ refuses to run without CUDA.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import tempfile
from functools import cache
from pathlib import Path

import torch

from trustbits.errors import TrustbitsError

log = logging.getLogger(__name__)
PINNED = "gptqmodel==7.6.0"


def install_command() -> str:
    torch_version = torch.__version__.split("+")[0]
    return f"pip install 'trustbits[gptq]' torch=={torch_version}   (or: pip install {PINNED} torch=={torch_version})"


def available() -> bool:
    return importlib.util.find_spec("gptqmodel") is not None


@cache
def gptqmodel():
    """Import and return the `gptqmodel` module, leaving the environment as it was.

    Raises:
        TrustbitsError: gptqmodel is not installed (with the pip command).
    """
    if not available():
        raise TrustbitsError("GPTQ needs the optional package gptqmodel, which is not installed", f"install it with `{install_command()}`")
    cpus = os.cpu_count() or 2
    os.environ.setdefault("GPTQMODEL_CPU_WORKERS", str(max(2, min(12, (cpus + 1) // 2))))
    before = dict(os.environ)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            import gptqmodel as gm
            import gptqmodel.looper.loop_processor as loop_processor
    finally:
        for key in set(os.environ) - set(before):
            del os.environ[key]
        for key, value in before.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
    # Its per-run logs go to a temporary folder, never the user's working directory.
    loop_processor._PROJECT_LOG_DIR = Path(tempfile.mkdtemp(prefix="trustbits-gptqmodel-logs-"))
    return gm


def quantize_config(bits: int, group_size: int, **kw):
    """A GPTQModel `QuantizeConfig` with trustbits' safe defaults (see the module docstring)."""
    gm = gptqmodel()
    with contextlib.redirect_stdout(sys.stderr):
        return gm.QuantizeConfig(
            bits=bits,
            group_size=group_size,
            desc_act=False,
            act_group_aware=False,
            offload_to_disk=False,
            **{"sym": True, **kw},
        )


def awq_config(bits: int, group_size: int):
    """A GPTQModel AWQ config (GEMM layout); GPTQModel runs it on CUDA only."""
    gm = gptqmodel()
    from gptqmodel.quantization import FORMAT, METHOD

    with contextlib.redirect_stdout(sys.stderr):
        return gm.QuantizeConfig(bits=bits, group_size=group_size, quant_method=METHOD.AWQ, format=FORMAT.GEMM, offload_to_disk=False)


def gptq_layer(weight: torch.Tensor, hessian: torch.Tensor, *, bits: int, group_size: int, sym: bool, damp_percent: float, blocksize: int):
    """GPTQ on one weight with GPTQModel's per-layer routine (`gptqmodel.quantization.gptq.GPTQ`).

    Args:
        weight: W [out, in], on the device to quantize on.
        hessian: H = X^T X / n [in, in] of the module's calibration inputs.

    Returns:
        (Q [out, in] on the grid, scale [out, n_groups], zero [out, n_groups]) with
        Q = (codes - zero) * scale per group, groups contiguous within rows.
    """
    gptqmodel()
    from gptqmodel.quantization.gptq import GPTQ

    qcfg = quantize_config(bits, group_size, sym=sym, damp_percent=damp_percent)
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, device=weight.device, dtype=torch.float32)
    layer.weight.data.copy_(weight.float())
    task = GPTQ(layer, qcfg)
    task.quantizer.configure(perchannel=True)
    # Hand it our Hessian instead of feeding activations: GPTQModel's H is 2/n X^T X.
    task.H = (2.0 * hessian).to(weight.device, torch.float32).clone()
    task.nsamples = 1  # only scales the loss GPTQModel logs; H is already a mean
    task._hessian_dirty = False
    with contextlib.redirect_stdout(sys.stderr):
        q, scale, zero, _g_idx, _secs, _loss, _damp, _n = task.quantize(blocksize=blocksize)
    return q, scale, zero


# ---- whole-model quantization (AWQ on CUDA; the sequential GPTQ reference) --------------------


def dynamic_rules(plan) -> tuple[int, int, dict]:
    """A mixed plan as GPTQModel's (bits, group_size, dynamic): the most common spec is the base,
    every other module gets an exact-name override, kept modules are skipped ("-:")."""
    import re
    from collections import Counter

    specs = [s for s in plan.modules.values() if s is not None]
    if not specs:
        raise TrustbitsError("the plan quantizes no module", "give at least one module a spec")
    base = Counter((s.bits, s.group_size) for s in specs).most_common(1)[0][0]
    dynamic = {}
    for name, spec in plan.modules.items():
        if spec is None:
            dynamic[f"-:^{re.escape(name)}$"] = {}
        elif (spec.bits, spec.group_size) != base:
            dynamic[f"+:^{re.escape(name)}$"] = {"bits": spec.bits, "group_size": spec.group_size}
    return base[0], base[1], dynamic


def quantize_model(loaded, qcfg, out: Path, calibration: torch.Tensor) -> Path:
    """Quantize `loaded`'s float model with GPTQModel's full sequential pipeline and save the
    checkpoint to `out` (GPTQModel's format: loads with `GPTQModel.load`, vLLM, SGLang).

    Args:
        qcfg: from `quantize_config` (GPTQ) or an AWQ `QuantizeConfig` (CUDA only).
        calibration: token ids [n_seq, seq_len] (`calibration.calibration_ids`).
    """
    gm = gptqmodel()
    device = str(loaded.device)
    with tempfile.TemporaryDirectory(prefix="trustbits-gptqmodel-src-") as src, contextlib.redirect_stdout(sys.stderr):
        loaded.model.save_pretrained(src)
        loaded.tokenizer.save_pretrained(src)
        # Its default dtype on the CPU is bfloat16; quantize at the dtype trustbits loaded.
        model = gm.GPTQModel.load(src, qcfg, device=device, dtype=loaded.dtype)
        rows = [{"input_ids": r.tolist(), "attention_mask": [1] * len(r)} for r in calibration]
        backend = "gptq_torch" if loaded.device.type == "cpu" and qcfg.quant_method == "gptq" else "auto"
        model.quantize(rows, batch_size=1, backend=backend)
        model.save(str(out))
    return Path(out)


def load_checkpoint(path: str | Path, device: str = "cpu"):
    """Load a GPTQModel checkpoint (mixed bits included) with the backend that works here."""
    gm = gptqmodel()
    backend = "gptq_torch" if torch.device(device).type == "cpu" else "auto"
    with contextlib.redirect_stdout(sys.stderr):
        return gm.GPTQModel.load(str(path), device=device, backend=backend)


def dequantized_weights(gptq_model) -> dict[str, torch.Tensor]:
    """Module name -> float weight [out, in] of every quantized linear of a loaded checkpoint."""
    out = {}
    for name, module in gptq_model.model.named_modules():
        if hasattr(module, "dequantize_weight") and hasattr(module, "qweight"):
            out[name] = module.dequantize_weight().T.float().cpu()  # stored [in, out]
    return out
