"""trustbits: find quantization configurations of an LLM that stay trustworthy.

The package is split in four subpackages (see DESIGN.md): `trustbits.quant` (models, plans,
quantization methods, the layer cache, footprint), `trustbits.metrics` (DecodingTrust
perspectives and scoring), `trustbits.kernels` (low-bit matmuls and latency) and
`trustbits.search` (the Optuna search, the Pareto front, export, the CLI). This top-level
module stays import-light: `trustbits --help` must not import torch.
"""

import os as _os
import sys as _sys

from trustbits.errors import TrustbitsError, did_you_mean

__version__ = "0.1.0"
__all__ = ["TrustbitsError", "did_you_mean", "__version__"]


def _unshadow_checkout() -> None:
    # The checkout's top-level folders carry names other distributions own: transformers
    # imports Hugging Face's `kernels`. When Python starts inside the checkout (`python -c`,
    # `python -m`), the checkout root is on sys.path and `import kernels` would find our
    # folder. trustbits itself is always imported through its package mapping (core/ is
    # installed as `trustbits`), so that sys.path entry is never needed: drop it.
    here = _os.path.dirname(_os.path.abspath(__file__))
    if _os.path.basename(here) != "core":
        return  # an installed wheel: nothing can be shadowed
    root = _os.path.dirname(here)
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or _os.curdir) != root]


_unshadow_checkout()
