"""Lazy re-exports for the subpackages' `__init__` modules.

`trustbits --help` must answer without importing torch, yet `from trustbits.metrics import
score` should work. Each subpackage lists its public names and the submodule that defines
them; a name is imported on first use and then kept in the package's namespace.
"""

from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, exports: dict[str, str]):
    """`(__getattr__, __dir__)` for `package`, resolving `exports` (name -> module) lazily.

    Example, in a package's `__init__.py`::

        __getattr__, __dir__ = lazy_exports(__name__, {"score": "trustbits.metrics.scorer"})
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module '{package}' has no attribute '{name}'")

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
