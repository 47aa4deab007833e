"""The quantized-layer cache: each (module, method, bits, group) quantized once, kept on disk.

A search asks for the same layer at the same spec many times; quantizing is the slow part and
assembling a plan should only load layers. Layout, under `$TRUSTBITS_CACHE`:

    layers/<model fingerprint>/<method>-w<bits>-g<group>-<config key>-<calibration key>/<module>.safetensors

The config key hashes the method's knobs and the calibration key the calibration tokens, so an
entry made with other knobs or other calibration text is never read as this one. Each file holds
the layer's `QTensor` (packed codes, scale, zero, header) and, in its safetensors metadata, the
layer's relative output error on the calibration activations (so a trial gets it for free) and a
checksum of its tensors.

Safety: safetensors only (never pickle). Writes go to a hidden temp file in the same folder and
are renamed into place (`os.replace`), so a process killed mid-write leaves at most a stray temp
file that is never read. A file that fails to parse or whose checksum does not match is reported
(`logging.warning`, counted in `stats.corrupt`), deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from trustbits.errors import TrustbitsError
from trustbits.kernels.qtensor import QTensor
from trustbits.paths import cache_dir
from trustbits.quant.calibration import Calibration, CalibrationConfig, calibration_key, capture
from trustbits.quant.plan import Plan, QuantSpec

log = logging.getLogger(__name__)
FORMAT = "trustbits-layer"
FORMAT_VERSION = "1"
SUFFIX = ".safetensors"


@dataclass
class CachedLayer:
    """One cached layer: its QTensor (on the CPU) and its relative output error."""

    qtensor: QTensor
    rel_error: float
    seconds: float = 0.0  # time it took to quantize


@dataclass
class CacheStats:
    """Counters since the cache object was made."""

    hits: int = 0  # served from memory or disk
    misses: int = 0  # not on disk: quantized
    corrupt: int = 0  # on disk but unreadable or failing its checksum: rebuilt
    loaded_from_disk: int = 0


@dataclass(frozen=True)
class EntryGroup:
    """One folder of the cache (one model, one spec)."""

    fingerprint: str
    folder: str
    files: int
    bytes: int


def tensors_checksum(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class LayerCache:
    """Quantized layers of one model (see the module docstring).

    Args:
        fingerprint: the float model's `weights_fingerprint` (`LoadedModel.fingerprint`).
        calibration: which calibration tokens measure errors and feed GPTQ.
        memory_bytes: QTensors kept in memory (least recently used dropped first), so a search
            that assembles many plans reads each layer from disk once.

    Example:
        >>> cache = LayerCache.for_model(loaded)
        >>> cache.build(loaded, [QuantSpec("hqq", b, 64) for b in (2, 3, 4, 8)])
        >>> with apply_plan(loaded, plan, cache=cache) as applied: ...
    """

    def __init__(self, fingerprint: str, *, calibration: CalibrationConfig = CalibrationConfig(), memory_bytes: int = 2 << 30):
        self.fingerprint = fingerprint
        self.calibration_config = calibration
        self.memory_bytes = memory_bytes
        self.stats = CacheStats()
        self._memory: OrderedDict[tuple[str, QuantSpec], CachedLayer] = OrderedDict()
        self._memory_used = 0
        self._calibration: Calibration | None = None
        self._calib_key: str | None = None

    @classmethod
    def for_model(cls, loaded, **kw) -> "LayerCache":
        cache = cls(loaded.fingerprint, **kw)
        cache._calib_key = calibration_key(loaded.tokenizer, cache.calibration_config)
        return cache

    @property
    def root(self) -> Path:
        return cache_dir("layers", self.fingerprint)

    # ---- paths --------------------------------------------------------------------------

    def folder(self, spec: QuantSpec) -> Path:
        from trustbits.quant.methods import method_config

        if self._calib_key is None:
            raise TrustbitsError("this LayerCache does not know its calibration tokens", "make it with LayerCache.for_model(loaded)")
        return self.root / f"{spec.method}-w{spec.bits}-g{spec.group_size}-{method_config(spec).key()}-{self._calib_key}"

    def path(self, module: str, spec: QuantSpec) -> Path:
        return self.folder(spec) / (module + SUFFIX)

    # ---- read ---------------------------------------------------------------------------

    def get(self, module: str, spec: QuantSpec) -> CachedLayer | None:
        """The cached layer, or None when it is missing (or was corrupt: then reported and removed)."""
        key = (module, spec)
        if key in self._memory:
            self._memory.move_to_end(key)
            self.stats.hits += 1
            return self._memory[key]
        path = self.path(module, spec)
        if not path.is_file():
            return None
        layer = self._read(path, module, spec)
        if layer is None:
            return None
        self.stats.hits += 1
        self.stats.loaded_from_disk += 1
        self._remember(key, layer)
        return layer

    def _read(self, path: Path, module: str, spec: QuantSpec) -> CachedLayer | None:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
            if meta.get("format") != FORMAT or meta.get("module") != module or meta.get("spec") != str(spec):
                raise ValueError("its metadata names another entry")
            if tensors_checksum(tensors) != meta.get("checksum"):
                raise ValueError("its checksum does not match its tensors")
            layer = CachedLayer(QTensor.from_state_dict(tensors), float(meta["rel_error"]), float(meta.get("seconds", 0)))
        except (SafetensorError, OSError, ValueError, KeyError, RuntimeError) as e:
            self.stats.corrupt += 1
            log.warning("layer cache file %s is corrupt (%s); rebuilding it", path, e)
            path.unlink(missing_ok=True)
            return None
        return layer

    def _remember(self, key, layer: CachedLayer) -> None:
        size = layer.qtensor.codes.numel() + 4 * layer.qtensor.scale.numel()
        self._memory[key] = layer
        self._memory_used += size
        while self._memory_used > self.memory_bytes and len(self._memory) > 1:
            _, old = self._memory.popitem(last=False)
            self._memory_used -= old.qtensor.codes.numel() + 4 * old.qtensor.scale.numel()

    # ---- write --------------------------------------------------------------------------

    def put(self, module: str, spec: QuantSpec, layer: CachedLayer) -> Path:
        """Write one entry atomically (temp file + os.replace) and keep it in memory."""
        from safetensors.torch import save_file

        from trustbits.quant.methods import method_config

        tensors = layer.qtensor.state_dict()
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "module": module,
            "spec": str(spec),
            "config": json.dumps(asdict(method_config(spec))),
            "calibration": self._calib_key or "",
            "rel_error": repr(layer.rel_error),
            "seconds": f"{layer.seconds:.4f}",
            "checksum": tensors_checksum(tensors),
        }
        path = self.path(module, spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        try:
            save_file(tensors, str(tmp), metadata=meta)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self._remember((module, spec), layer)
        return path

    # ---- build --------------------------------------------------------------------------

    def missing(self, pairs: Iterable[tuple[str, QuantSpec]]) -> list[tuple[str, QuantSpec]]:
        """The (module, spec) pairs not yet cached (corrupt files count as missing)."""
        return [(m, s) for m, s in pairs if self.get(m, s) is None]

    def build(self, loaded, specs: Plan | Iterable[QuantSpec] | Iterable[tuple[str, QuantSpec]], *, modules: list[str] | None = None, progress=None) -> int:
        """Quantize and store every missing layer; returns how many were built.

        Args:
            loaded: the float `LoadedModel` (no plan applied).
            specs: a Plan (its modules at their specs), QuantSpecs (each for every module, or
                for `modules`), or explicit (module, spec) pairs.
            progress: optional callable(done, total, description).

        Raises:
            TrustbitsError: another model, a plan applied to the model, or a method that
                cannot run here (AWQ on the CPU, GPTQ without gptqmodel).
        """
        from trustbits.quant.inventory import quantizable_modules
        from trustbits.quant.methods import get_method, method_config, quantize_weight

        if loaded.fingerprint != self.fingerprint:
            raise TrustbitsError("this layer cache belongs to another model", "make one with LayerCache.for_model(loaded)")
        if self._calib_key is None:
            self._calib_key = calibration_key(loaded.tokenizer, self.calibration_config)
        names = [m.name for m in quantizable_modules(loaded.model)]
        pairs = _pairs(specs, modules or names)
        todo = self.missing(pairs)
        if not todo:
            return 0
        for spec in {s for _, s in todo}:
            # Fail on an unknown method, or one that cannot run here, before any work.
            get_method(spec.method).config_type.preflight(loaded.device)
        self.stats.misses += len(todo)
        _require_float(loaded.model, {m for m, _ in todo})
        calib = self.calibration(loaded, progress)
        for i, (module, spec) in enumerate(todo):
            weight = loaded.model.get_submodule(module).weight
            t0 = time.perf_counter()
            config = method_config(spec)
            qtensor = quantize_weight(weight, config, calib.hessians[module] if config.needs_calibration else None)
            seconds = time.perf_counter() - t0
            error = calib.relative_error(module, weight, qtensor.dequantize(torch.float32))
            self.put(module, spec, CachedLayer(qtensor.to("cpu"), error, seconds))
            if progress:
                progress(i + 1, len(todo), f"quantizing {spec}")
        return len(todo)

    def calibration(self, loaded, progress=None) -> Calibration:
        """H for every module of the float model, captured once per cache object."""
        from trustbits.quant.inventory import quantizable_modules

        if self._calibration is None:
            names = [m.name for m in quantizable_modules(loaded.model)]
            _require_float(loaded.model, set(names))
            self._calibration = capture(loaded.model, loaded.tokenizer, names, self.calibration_config, progress)
        return self._calibration

    # ---- housekeeping (also `trustbits cache`) ------------------------------------------

    def list(self) -> list[EntryGroup]:
        return list_entries(self.fingerprint)

    def size(self) -> int:
        return sum(g.bytes for g in self.list())

    def clear(self) -> int:
        self._memory.clear()
        self._memory_used = 0
        return clear_entries(self.fingerprint)


def _pairs(specs, names: list[str]) -> list[tuple[str, QuantSpec]]:
    if isinstance(specs, Plan):
        return [(m, s) for m, s in specs.modules.items() if s is not None]
    out = []
    for item in specs:
        if isinstance(item, QuantSpec):
            out.extend((n, item) for n in names)
        elif item is not None:
            out.append(tuple(item))
    return list(dict.fromkeys(out))


def _require_float(model, names: set[str]) -> None:
    for name in names:
        if not isinstance(model.get_submodule(name), torch.nn.Linear):
            raise TrustbitsError(
                f"module '{name}' is already quantized, so its float weights are not there to quantize",
                "restore the applied plan (AppliedPlan.restore) before building the cache",
            )


def list_entries(fingerprint: str | None = None) -> list[EntryGroup]:
    """Every cache folder, for one model or all."""
    root = cache_dir("layers")
    models = [root / fingerprint] if fingerprint else sorted(p for p in root.iterdir() if p.is_dir())
    out = []
    for model_dir in models:
        if not model_dir.is_dir():
            continue
        for folder in sorted(p for p in model_dir.iterdir() if p.is_dir()):
            files = list(folder.rglob("*" + SUFFIX))
            out.append(EntryGroup(model_dir.name, folder.name, len(files), sum(f.stat().st_size for f in files)))
    return out


def clear_entries(fingerprint: str | None = None) -> int:
    """Delete cached layers (of one model or all), stray temp files included; returns files removed."""
    import shutil

    root = cache_dir("layers")
    targets = [root / fingerprint] if fingerprint else [p for p in root.iterdir() if p.is_dir()]
    removed = 0
    for target in targets:
        if target.is_dir():
            removed += sum(1 for p in target.rglob("*") if p.is_file())
            shutil.rmtree(target)
    return removed
