"""Build (once) and load the C++ low-bit CPU kernel, `csrc/lowbit_gemv.cpp`.

The source is compiled with `torch.utils.cpp_extension.load` (ninja, g++, `-O3 -march=native
-fopenmp`, about 6 s on 2 cores) the first time a process needs it, and the shared library is
kept in torch's extension folder (`$TORCH_EXTENSIONS_DIR`, default
`~/.cache/torch_extensions`) under a name that hashes the source, the flags, the torch version
and the CPU's instruction-set flags: later processes load it in milliseconds, a changed source
or another CPU gets a fresh build, and concurrent processes wait on torch's build lock. It is
not under `$TRUSTBITS_CACHE` on purpose: tests give every test its own cache, and a compile
per test would cost minutes.

A machine without a compiler (or with `TRUSTBITS_NO_CPU_EXTENSION=1`) simply has no such
kernel: `available()` is False, the reason is logged once, and the dispatch uses the others.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import threading
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE = Path(__file__).parent / "csrc" / "lowbit_gemv.cpp"
CFLAGS = ["-O3", "-march=native", "-fopenmp"]
LDFLAGS = ["-fopenmp"]
DISABLE_ENV = "TRUSTBITS_NO_CPU_EXTENSION"

_lock = threading.Lock()
_state: dict[str, object] = {}  # "ok": bool, "reason": str


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_name() -> str:
    """The extension's name: changes with the source, flags, torch version and CPU."""
    import torch

    h = hashlib.blake2b(digest_size=6)
    for part in (SOURCE.read_bytes(), " ".join(CFLAGS + LDFLAGS).encode(), torch.__version__.encode(), _cpu_flags().encode()):
        h.update(part)
    return f"trustbits_lowbit_{h.hexdigest()}"


def available() -> bool:
    """True when the op `torch.ops.trustbits_lowbit.mm` is loaded (building it if needed)."""
    with _lock:
        if "ok" not in _state:
            _state["ok"], _state["reason"] = _load()
            if not _state["ok"]:
                log.warning("the C++ low-bit CPU kernel is unavailable (%s); other kernels will be used", _state["reason"])
        return bool(_state["ok"])


def unavailable_reason() -> str | None:
    available()
    return None if _state["ok"] else str(_state["reason"])


def _load() -> tuple[bool, str]:
    if os.environ.get(DISABLE_ENV) == "1":
        return False, f"{DISABLE_ENV}=1"
    import torch

    if hasattr(torch.ops, "trustbits_lowbit") and hasattr(torch.ops.trustbits_lowbit, "mm"):
        return True, ""
    try:
        from torch.utils.cpp_extension import load

        log.info("loading the C++ low-bit CPU kernel %s (built once per machine, ~6 s)", build_name())
        load(
            name=build_name(),
            sources=[str(SOURCE)],
            extra_cflags=CFLAGS,
            extra_ldflags=LDFLAGS,
            is_python_module=False,
            verbose=False,
        )
    except (OSError, RuntimeError, ImportError, SystemExit) as e:  # no compiler, no ninja, a build error
        first = str(e).strip().splitlines()
        return False, f"build failed: {first[-1][:200] if first else type(e).__name__}"
    return True, ""
