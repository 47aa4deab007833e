"""Load a causal LM and its tokenizer from what a user passes as `--model`.

Accepted forms:

* ``builtin:NAME``: a model shipped in a package (see `trustbits.quant.builtin`); the default
  is ``builtin:smollm2-135m-instruct``.
* a ``.gguf`` file: transformers dequantizes it with the `gguf` package (~15-20 s for
  SmolLM2). transformers marks such a model as quantized and refuses to save it, so we
  rebuild a plain model from its config and state dict and cache it as safetensors under
  ``$TRUSTBITS_CACHE/models/``: the second load takes ~2-3 s.
* a local Hugging Face model directory (holding ``config.json``).
* a trustbits quantized artifact (written by ``trustbits quantize -o DIR``): loaded with its
  quantized modules by `trustbits.quant.artifact.load_quantized`.
* a Hugging Face hub id (``org/name``), where the network allows; offline it fails at once
  with a clear sentence (set ``HF_HUB_OFFLINE=1`` to use the local hub cache).

A tokenizer without a chat template gets `trustbits.chat.PLAIN_CHAT_TEMPLATE`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from trustbits.chat import ensure_chat_template
from trustbits.devices import resolve_device, resolve_dtype
from trustbits.errors import TrustbitsError
from trustbits.paths import cache_dir
from trustbits.quant.builtin import DEFAULT_MODEL, PREFIX, builtin_gguf_path

log = logging.getLogger(__name__)
# A bare `name` or `org/name`, as the hub spells ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Bumped when the cached layout changes, so old caches are rebuilt, not misread.
_CACHE_LAYOUT = 1


@dataclass
class LoadedModel:
    """A model ready to evaluate or quantize.

    Attributes:
        model: the causal LM, in eval mode, on `device` at `dtype`.
        tokenizer: its tokenizer, with a chat template (its own or the plain fallback).
        name: the model as the user named it (``builtin:...``, a path, a hub id).
        fingerprint: `weights_fingerprint` of the loaded weights.
        chat_template_fallback: True when the plain fallback template was used.
        load_seconds: wall time of the load (reported by `trustbits info`).
        from_cache: True when the weights came from the dequantized-weights cache.
        quantized: for a trustbits artifact (`trustbits quantize -o DIR`), its manifest
            (base model, plan specs, keep dtype); None for a float model.
    """

    model: object
    tokenizer: object
    name: str
    fingerprint: str
    device: object
    dtype: object
    chat_template_fallback: bool = False
    load_seconds: float = 0.0
    from_cache: bool = False
    quantized: dict | None = None


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    device: str | None = None,
    dtype: str | None = None,
    use_cache: bool = True,
) -> LoadedModel:
    """Load `name` (see the module docstring) for inference.

    Args:
        name: ``builtin:NAME``, a ``.gguf`` path, a model directory, or a hub id.
        device: ``cpu``, ``cuda``, ``cuda:N``; default CUDA when present, else CPU.
        dtype: ``float32``, ``bfloat16``, ``float16``; default float32 on CPU, bfloat16 on GPU.
        use_cache: reuse (and fill) the dequantized-weights cache for GGUF files.

    Raises:
        TrustbitsError: unknown builtin, missing path, corrupt GGUF, unreachable hub,
            not a causal LM, or no linear layers to quantize.
    """
    t0 = time.perf_counter()
    # transformers' own tqdm bars ("Loading weights") would interleave with the caller's rich
    # progress; callers show their own.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    from_cache = False
    if name.startswith(PREFIX):
        model, tokenizer, from_cache = _load_gguf(builtin_gguf_path(name[len(PREFIX) :]), use_cache)
    else:
        path = Path(name).expanduser()
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise TrustbitsError(f"'{name}' is a file but not a .gguf model", "pass a .gguf file, a model directory or a hub id")
            model, tokenizer, from_cache = _load_gguf(path, use_cache)
        elif path.is_dir() and _is_artifact(path):
            from trustbits.quant.artifact import load_quantized

            return load_quantized(path, device=device, dtype=dtype)
        elif path.is_dir():
            model, tokenizer = _load_hf(str(path), local_files_only=True, where=f"directory '{name}'")
        elif _looks_like_path(name) or not _HUB_ID.match(name):
            raise TrustbitsError(
                f"model '{name}' does not exist",
                f"pass {DEFAULT_MODEL}, a .gguf file, a model directory or a Hugging Face hub id",
            )
        else:
            model, tokenizer = _load_hub(name)
    model = model.to(device=dev, dtype=dt).eval()
    model.requires_grad_(False)
    _require_linears(model, name)
    fallback = ensure_chat_template(tokenizer)
    from trustbits.quant.fingerprint import weights_fingerprint

    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=name,
        fingerprint=weights_fingerprint(model),
        device=dev,
        dtype=dt,
        chat_template_fallback=fallback,
        load_seconds=time.perf_counter() - t0,
        from_cache=from_cache,
    )


def _is_artifact(path: Path) -> bool:
    from trustbits.quant.artifact import is_artifact

    return is_artifact(path)


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.lower().endswith((".gguf", ".safetensors", ".bin")) or name.count("/") > 1


def _require_linears(model, name: str) -> None:
    from trustbits.quant.inventory import quantizable_modules

    if not any(m.role == "linear" for m in quantizable_modules(model)):
        raise TrustbitsError(
            f"model '{name}' ({type(model).__name__}) has no nn.Linear layers to quantize in its decoder",
            "trustbits quantizes torch.nn.Linear modules; use an architecture built from them (Llama, Mistral, Qwen, Phi, ...)",
        )


# ---- GGUF ---------------------------------------------------------------------------------


def _check_gguf(path: Path) -> None:
    """Read the GGUF header and tensor table; a corrupt or truncated file fails here, in one
    sentence, instead of deep inside transformers."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
        size = path.stat().st_size
        for t in reader.tensors:
            if t.data_offset + t.n_bytes > size:
                raise ValueError(f"tensor '{t.name}' runs past the end of the file")
    except (ValueError, OSError, IndexError, KeyError) as e:
        raise TrustbitsError(
            f"'{path}' is not a readable GGUF file ({e})", "the file is corrupt or truncated; download or reinstall it"
        ) from e


def _gguf_cache_key(path: Path) -> str:
    st = path.stat()
    ident = f"{_CACHE_LAYOUT}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.blake2b(ident.encode(), digest_size=8).hexdigest()


def _load_gguf(path: Path, use_cache: bool):
    """(model, tokenizer, from_cache) for a GGUF file, through the safetensors cache."""
    cached = cache_dir("models") / _gguf_cache_key(path)
    if use_cache and (cached / "trustbits.json").is_file():
        try:
            model, tokenizer = _load_hf(str(cached), local_files_only=True, where=f"cache '{cached}'")
            return model, tokenizer, True
        except TrustbitsError as e:
            # A damaged cache entry is rebuilt from the GGUF, never trusted.
            log.warning("model cache %s is unreadable (%s); rebuilding it", cached, e)
            shutil.rmtree(cached, ignore_errors=True)
    _check_gguf(path)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("dequantizing %s (first load; later loads use %s)", path, cached)
    try:
        gguf_model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except ValueError as e:
        raise TrustbitsError(f"transformers cannot load GGUF file '{path}' ({e})", "check that it holds a causal LM architecture transformers supports") from e
    model = _plain_copy(gguf_model)
    if use_cache:
        _write_cache(model, tokenizer, cached, source=str(path))
    return model, tokenizer, False


def _plain_copy(gguf_model):
    """The same weights in a model transformers does not consider quantized (it refuses to
    save GGUF-loaded models): rebuild from the config without `quantization_config`."""
    import torch
    from transformers import AutoModelForCausalLM

    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = type(gguf_model.config).from_dict(config_dict)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), assign=True, strict=False)
    model.tie_weights()
    # Buffers that are not in the state dict (rotary inv_freq) are still on meta: take the
    # GGUF model's.
    for (name, buf), (_, src) in zip(model.named_buffers(), gguf_model.named_buffers()):
        if buf.is_meta:
            parent, _, leaf = name.rpartition(".")
            model.get_submodule(parent)._buffers[leaf] = src
    return model


def _write_cache(model, tokenizer, target: Path, source: str) -> None:
    """Write atomically: a crash mid-write leaves no half-written entry to be read later."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "trustbits.json").write_text(json.dumps({"layout": _CACHE_LAYOUT, "source": source}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        log.warning("could not cache the dequantized model in %s (%s); the next load will dequantize again", target, e)


# ---- Hugging Face directories and hub -----------------------------------------------------


def _load_hf(source: str, *, local_files_only: bool, where: str):
    import torch
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(source, local_files_only=local_files_only)
    except (OSError, ValueError) as e:
        raise TrustbitsError(f"no model config found in {where} ({_first_line(e)})", "pass a folder holding config.json, a .gguf file, or a hub id") from e
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, local_files_only=local_files_only)
    except ValueError as e:
        if "Unrecognized configuration class" in str(e):
            raise TrustbitsError(
                f"{where} holds a {type(config).__name__}, which is not a causal language model",
                "pass a model with a causal LM head (Llama, Mistral, Qwen, ...)",
            ) from e
        raise TrustbitsError(f"cannot load the model in {where} ({_first_line(e)})", "check that its files are complete") from e
    except (OSError, SafetensorError) as e:
        raise TrustbitsError(f"cannot load the weights in {where} ({_first_line(e)})", "check that its files are complete") from e
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
    except (OSError, ValueError) as e:
        raise TrustbitsError(f"no tokenizer found in {where} ({_first_line(e)})", "save the tokenizer beside the model") from e
    return model, tokenizer


def _load_hub(repo_id: str):
    """Load a hub id, failing fast and clearly when the hub cannot be reached."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return _load_hf(repo_id, local_files_only=True, where=f"the local hub cache for '{repo_id}' (HF_HUB_OFFLINE=1)")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        HfApi().model_info(repo_id, timeout=10)
    except RepositoryNotFoundError as e:
        raise TrustbitsError(f"model '{repo_id}' is not on the Hugging Face hub (or is private)", "check the id, or log in with `hf auth login`") from e
    except HfHubHTTPError as e:
        raise TrustbitsError(f"the Hugging Face hub refused '{repo_id}' ({_first_line(e)})", "check the id and your access") from e
    except Exception as e:  # noqa: BLE001 - any transport error (DNS, TLS, timeout) means "offline"
        raise TrustbitsError(
            f"cannot reach the Hugging Face hub to fetch '{repo_id}' ({type(e).__name__})",
            "download the model where the network allows and pass its folder, or set HF_HUB_OFFLINE=1 to use the local hub cache",
        ) from e
    return _load_hf(repo_id, local_files_only=False, where=f"hub model '{repo_id}'")


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__
