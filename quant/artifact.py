"""trustbits' own deployable format: a folder that loads back to identical logits.

    DIR/
      model.safetensors   quantized modules as QTensor tensors (`<module>.qweight` packed codes,
                          `.scale`, `.zero` float16, `.qheader` int32), their biases, and every
                          unquantized parameter at `keep_dtype` (a tied embedding stored once)
      config.json         the model's Hugging Face config
      tokenizer files     as `save_pretrained` writes them
      plan.json           the plan, with each layer's relative error in its meta
      trustbits.json      {"format": "trustbits-quantized", "version": 1, base model, keep_dtype, ...}

`load_quantized(DIR)` (and `load_model(DIR)`, so `--model DIR` works everywhere) rebuilds the
architecture from config.json and swaps `QuantLinear` / `QuantEmbedding` in. Nothing read can
execute code: safetensors and JSON only. With `keep_dtype="float32"` the reloaded model's
logits equal the in-memory assembled model's bit for bit; at float16 they equal it whenever
the unquantized weights are float16-exact, and differ by float16 rounding otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from trustbits.errors import TrustbitsError
from trustbits.quant.footprint import DEFAULT_KEEP_DTYPE, keep_bytes_per_param
from trustbits.quant.plan import Plan

FORMAT = "trustbits-quantized"
VERSION = 1
WEIGHTS = "model.safetensors"
MANIFEST = "trustbits.json"


def is_artifact(path: str | Path) -> bool:
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("format") == FORMAT
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def artifact_tensors(applied, keep_dtype: str = DEFAULT_KEEP_DTYPE) -> dict[str, torch.Tensor]:
    """Every tensor the artifact stores, by name (see the module docstring)."""
    keep_bytes_per_param(keep_dtype)  # validates the name
    store = getattr(torch, keep_dtype)
    model = applied.loaded.model
    quantized = {n for n, s in applied.plan.modules.items() if s is not None}
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    # named_parameters() yields a tied weight once (under the embedding's name); quantized
    # modules hold only their bias as a parameter.
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        tensors[name] = p.detach().to("cpu", store if p.is_floating_point() else p.dtype).contiguous()
    for name, buf in model.named_buffers():
        leaf = name.rpartition(".")[2]
        module = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
        if leaf in getattr(module, "_non_persistent_buffers_set", set()):
            continue
        tensors[name] = buf.detach().to("cpu").contiguous()
    for name in quantized:
        tensors.update(model.get_submodule(name).qtensor.state_dict(prefix=f"{name}."))
    return tensors


def save_artifact(applied, out: str | Path, *, keep_dtype: str = DEFAULT_KEEP_DTYPE, overwrite: bool = False) -> Path:
    """Write the applied plan's model to `out` (see the module docstring); returns `out`.

    Written into a temporary sibling folder and renamed into place: a crash leaves no
    half-written artifact under `out`.

    Raises:
        TrustbitsError: `out` exists and is not empty (unless `overwrite`).
    """
    from safetensors.torch import save_file

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise TrustbitsError(f"output folder '{out}' exists and is not empty", "choose another folder or pass --overwrite")
    loaded, plan = applied.loaded, applied.plan_with_errors()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tensors = artifact_tensors(applied, keep_dtype)
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        loaded.model.config.to_json_file(str(tmp / "config.json"))
        loaded.tokenizer.save_pretrained(str(tmp))
        plan.save(tmp / "plan.json")
        tied = [n for n, s in plan.modules.items() if s is not None and _is_tied_head(loaded.model, n, applied)]
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "base_model": loaded.name,
            "base_fingerprint": loaded.fingerprint,
            "keep_dtype": keep_dtype,
            "quantized": {n: str(s) for n, s in plan.modules.items() if s is not None},
            "tied_head_quantized": tied[0] if tied else None,
            "footprint_bytes": applied.footprint.total_bytes if applied.footprint.keep_dtype == keep_dtype else None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _is_tied_head(model, name: str, applied) -> bool:
    return applied._original_embedding is not None and model.get_output_embeddings() is model.get_submodule(name)


def load_quantized(path: str | Path, *, device: str | None = None, dtype: str | None = None):
    """Load a trustbits artifact as a `LoadedModel` (its `quantized` field holds the manifest).

    Raises:
        TrustbitsError: not an artifact, a newer format version, or missing/corrupt files.
    """
    from safetensors import SafetensorError, safe_open
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.initialization import no_init_weights

    from trustbits.chat import ensure_chat_template
    from trustbits.devices import resolve_device, resolve_dtype
    from trustbits.kernels.linear import QuantEmbedding, QuantLinear
    from trustbits.kernels.qtensor import QTensor
    from trustbits.quant.assemble import _set_submodule
    from trustbits.quant.loading import LoadedModel

    t0 = time.perf_counter()
    path = Path(path)
    if not is_artifact(path):
        raise TrustbitsError(f"'{path}' is not a trustbits quantized model (no {MANIFEST})", "pass a folder written by `trustbits quantize`")
    manifest = json.loads((path / MANIFEST).read_text())
    if manifest.get("version") != VERSION:
        raise TrustbitsError(f"'{path}' uses artifact version {manifest.get('version')}", f"this trustbits reads version {VERSION}; upgrade trustbits")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    try:
        with safe_open(str(path / WEIGHTS), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise TrustbitsError(f"cannot read '{path / WEIGHTS}' ({e})", "the artifact is corrupt or truncated; write it again") from e
    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    with no_init_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    quantized = manifest["quantized"]
    plain = {k: v for k, v in tensors.items() if not any(k.startswith(q + ".") for q in quantized)}
    plain.update({f"{q}.bias": tensors[f"{q}.bias"] for q in quantized if f"{q}.bias" in tensors})
    missing, unexpected = model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in plain.items()}, strict=False)
    expected_missing = {f"{q}.weight" for q in quantized}
    if tied_head := manifest.get("tied_head_quantized"):
        expected_missing.add(_embedding_weight_name(model))
    if config.tie_word_embeddings:
        expected_missing.add(_head_weight_name(model))
    lost = [k for k in missing if k not in expected_missing]
    if lost:
        raise TrustbitsError(f"'{path / WEIGHTS}' lacks tensor '{lost[0]}' ({len(lost)} missing)", "the artifact is incomplete; write it again")
    if unexpected:
        raise TrustbitsError(f"'{path / WEIGHTS}' holds tensors the architecture lacks (e.g. {unexpected[0]})", "the artifact does not match its config.json")
    if config.tie_word_embeddings and not tied_head:
        model.tie_weights()
    for name in quantized:
        qt = QTensor.from_state_dict(tensors, prefix=f"{name}.")
        bias = tensors.get(f"{name}.bias")
        _set_submodule(model, name, QuantLinear(qt.to(dev), bias=bias.to(dev) if bias is not None else None, compute_dtype=dt))
        if name == tied_head:
            emb = model.get_input_embeddings()
            model.set_input_embeddings(QuantEmbedding(qt.to(dev), compute_dtype=dt, padding_idx=getattr(emb, "padding_idx", None)))
    model = model.to(device=dev, dtype=dt).eval()
    model.requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    fallback = ensure_chat_template(tokenizer)
    ident = manifest["base_fingerprint"] + (path / "plan.json").read_text()
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=str(path),
        fingerprint=hashlib.blake2b(ident.encode(), digest_size=8).hexdigest(),
        device=dev,
        dtype=dt,
        chat_template_fallback=fallback,
        load_seconds=time.perf_counter() - t0,
        quantized=manifest,
    )


def _embedding_weight_name(model) -> str:
    emb = model.get_input_embeddings()
    return next(n for n, m in model.named_modules() if m is emb) + ".weight"


def _head_weight_name(model) -> str:
    head = model.get_output_embeddings()
    return next(n for n, m in model.named_modules() if m is head) + ".weight"


def artifact_plan(path: str | Path) -> Plan:
    return Plan.load(Path(path) / "plan.json")
