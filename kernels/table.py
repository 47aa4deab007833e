"""The per-device table of measured linear times: what the dispatch chooses by, and what the
latency model adds up.

One entry per (kernel, shape, bits, group size, compute dtype, rows): the median seconds of
one call with the weights out of cache (`timing.time_rotating`). Entries are measured when
first asked for (a few ms to ~0.3 s each) and kept in
`$TRUSTBITS_CACHE/kernels/timings-<device>.json`, with the device's name, the torch version
and a hash of the kernel sources inside: a file measured on another device, another torch or
other kernel code is not trusted but rebuilt (its name differs per device already; the check
inside guards against copied caches). Float (kept) modules are timed by the `float` kernel
with bits None.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import threading
import time
from pathlib import Path

import torch

from trustbits.kernels.device import device_name, device_slug
from trustbits.kernels.kernel import FloatKernel, Kernel
from trustbits.kernels.qtensor import QTensor
from trustbits.kernels.timing import time_rotating
from trustbits.paths import cache_dir

log = logging.getLogger(__name__)

TABLE_VERSION = 1
_SOURCES = ("kernel.py", "cpu_lowbit.py", "int4pack.py", "cuda_kernels.py", "timing.py", "csrc/lowbit_gemv.cpp")


def kernels_version() -> str:
    """Hash of the kernel sources: tables measured with other kernel code are rebuilt."""
    h = hashlib.blake2b(digest_size=6)
    here = Path(__file__).parent
    for rel in _SOURCES:
        p = here / rel
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def random_qtensor(shape: tuple[int, int], bits: int, group_size: int, device) -> QTensor:
    """Random codes, scales and zeros: a kernel's time does not depend on the values."""
    out_f, in_f = shape
    n_groups = math.ceil(in_f / group_size)
    gen = torch.Generator().manual_seed(out_f * 7919 + in_f * 31 + bits)
    codes = torch.randint(0, 2**bits, shape, dtype=torch.uint8, generator=gen)
    scale = (torch.rand(out_f, n_groups, generator=gen) * 0.01 + 1e-3).to(torch.float16)
    zero = (torch.rand(out_f, n_groups, generator=gen) * (2**bits - 1)).to(torch.float16)
    return QTensor(codes, scale, zero, bits, group_size).to(device)


class TimingTable:
    """Measured seconds per linear call on one device (see the module docstring).

    Args:
        device: the device the entries are measured on.
        path: the JSON file; default `$TRUSTBITS_CACHE/kernels/timings-<device slug>.json`.

    Attributes:
        rebuilt: True when a file existed but belonged to another device, torch or kernel code.
        measured: how many entries this process measured (the rest came from the file).
    """

    def __init__(self, device: torch.device | str = "cpu", path: Path | None = None):
        self.device = torch.device(device)
        self.device_name = device_name(self.device)
        self.path = Path(path) if path else cache_dir("kernels") / f"timings-{device_slug(self.device_name)}.json"
        self.entries: dict[str, float] = {}
        self.state_bytes: dict[str, int] = {}
        self.rebuilt = False
        self.measured = 0
        self._dirty = False
        self._lock = threading.Lock()
        self._load()

    # ---- keys and persistence -----------------------------------------------------------

    @staticmethod
    def key(kernel: str, shape: tuple[int, int], bits: int | None, group_size: int | None, dtype: torch.dtype, rows: int) -> str:
        return f"{kernel}|{shape[0]}x{shape[1]}|b{bits or 16}|g{group_size or 0}|{dtype_name(dtype)}|r{rows}"

    def _header(self) -> dict:
        return {"version": TABLE_VERSION, "device": self.device_name, "torch": torch.__version__, "kernels": kernels_version()}

    def _load(self) -> None:
        if not self.path.is_file():
            return
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            log.warning("latency table %s is unreadable (%s); measuring afresh", self.path, e)
            self.rebuilt = True
            return
        header = self._header()
        if not isinstance(data, dict) or any(data.get(k) != v for k, v in header.items()):
            log.info("latency table %s was measured for %s; rebuilding it for %s", self.path, data.get("device") if isinstance(data, dict) else "?", self.device_name)
            self.rebuilt = True
            return
        self.entries = {k: (math.inf if v is None else float(v)) for k, v in data.get("entries", {}).items()}
        self.state_bytes = {k: int(v) for k, v in data.get("state_bytes", {}).items()}

    def save(self, force: bool = False) -> None:
        """Write atomically if anything was added (parallel workers may share the cache;
        the last writer wins, and a lost entry is only measured again)."""
        if not (self._dirty or force):
            return
        self._dirty = False
        data = self._header() | {
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "entries": {k: (None if math.isinf(v) else v) for k, v in sorted(self.entries.items())},
            "state_bytes": dict(sorted(self.state_bytes.items())),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, dir=self.path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=0)
        os.replace(tmp, self.path)

    # ---- lookups and measurements -------------------------------------------------------

    def lookup(self, kernel: str, shape, bits, group_size, dtype, rows) -> float | None:
        return self.entries.get(self.key(kernel, shape, bits, group_size, dtype, rows))

    def seconds(self, kernel: Kernel, shape, bits, group_size, dtype, rows, *, save: bool = True) -> float:
        """Seconds per call, from the table or measured now (and stored)."""
        key = self.key(kernel.name, shape, bits, group_size, dtype, rows)
        with self._lock:
            if key not in self.entries:
                self.entries[key], nbytes = self._measure(kernel, tuple(shape), bits, group_size, dtype, rows)
                self.state_bytes[key.rsplit("|", 1)[0]] = nbytes
                self.measured += 1
                self._dirty = True
                if save:
                    self.save()
            return self.entries[key]

    def call_overhead(self, kind: str, dtype: torch.dtype) -> float:
        """Seconds per call a module of `kind` ("float", "quant", "free") spends outside its
        kernel (`overhead.measure_call_overheads`), measured once per device."""
        from trustbits.kernels.overhead import KINDS, measure_call_overheads

        keys = {k: f"overhead|{k}|{dtype_name(dtype)}" for k in KINDS}
        with self._lock:
            if keys[kind] not in self.entries:
                for k, seconds in measure_call_overheads(self.device, dtype).items():
                    self.entries[keys[k]] = seconds
                self._dirty = True
                self.save()
            return self.entries[keys[kind]]

    def mark_skipped(self, kernel: str, shape, bits, group_size, dtype, rows) -> None:
        """Record that a kernel was not timed at this size because it already lost badly at
        fewer rows (its time is stored as infinite, so it is never chosen there)."""
        key = self.key(kernel, shape, bits, group_size, dtype, rows)
        if key not in self.entries:
            self.entries[key] = math.inf
            self._dirty = True

    def weight_bytes(self, kernel: str, shape, bits, group_size, dtype) -> int | None:
        """Bytes of the prepared weights one call reads (for bandwidth figures)."""
        return self.state_bytes.get(self.key(kernel, shape, bits, group_size, dtype, 0).rsplit("|", 1)[0])

    def _measure(self, kernel: Kernel, shape, bits, group_size, dtype, rows) -> tuple[float, int]:
        t0 = time.perf_counter()
        if isinstance(kernel, FloatKernel):
            state = kernel.random_state(shape, self.device, dtype)
        else:
            state = kernel.prepare(random_qtensor(shape, bits, group_size, self.device), self.device, dtype)
        x = torch.randn(rows, shape[1], device=self.device, dtype=dtype)
        seconds = time_rotating(lambda s, xx: kernel.run(s, xx, None), state, x)
        log.debug("timed %s %s b%s g%s rows=%d: %.1f us (in %.2f s)", kernel.name, shape, bits, group_size, rows, seconds * 1e6, time.perf_counter() - t0)
        return seconds, state.nbytes


_tables: dict[str, TimingTable] = {}
_tables_lock = threading.Lock()


def timing_table(device: torch.device | str = "cpu") -> TimingTable:
    """The process-wide table for `device` (one per device name; loaded from disk once)."""
    device = torch.device(device)
    name = device_name(device)
    from trustbits.paths import cache_root

    key = f"{cache_root()}|{name}"
    with _tables_lock:
        if key not in _tables:
            _tables[key] = TimingTable(device)
        return _tables[key]
