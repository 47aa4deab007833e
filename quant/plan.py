"""Plans: which quantization each linear module gets, as data.

A plan maps every quantizable linear module, by full name (``model.layers.3.mlp.down_proj``,
and ``lm_head``), to a `QuantSpec(method, bits, group_size)` or to KEEP (left unquantized).
It round-trips through JSON with a schema version; a trial saves its plan and export never
re-derives it (DESIGN.md, decision 1).

    {"version": 1,
     "model": {"name": "builtin:smollm2-135m-instruct", "fingerprint": "9f2c..."},
     "modules": {"model.layers.0.self_attn.q_proj": {"method": "hqq", "bits": 4, "group_size": 64},
                 "lm_head": "keep", ...}}

Specs are also written compactly as strings, ``"hqq:4:64"`` or ``"keep"``, the way
llama.cpp's ``--tensor-type`` recipes read.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trustbits.errors import TrustbitsError, did_you_mean

PLAN_VERSION = 1
BITS = (2, 3, 4, 8)
KEEP_BITS = 16
GROUP_SIZES = (32, 64, 128)
# Methods known to the plan schema; each is implemented in trustbits.quant.methods.
METHODS = ("hqq", "gptq", "awq", "rtn")
DEFAULT_METHOD = "hqq"
DEFAULT_GROUP_SIZE = 64


@dataclass(frozen=True, order=True)
class QuantSpec:
    """How one module is quantized.

    Args:
        method: one of `METHODS`.
        bits: one of `BITS` (16 is spelled KEEP, i.e. ``None`` in a plan).
        group_size: one of `GROUP_SIZES`: input columns sharing one scale and zero.

    Raises:
        TrustbitsError: any field out of range, with the valid values.
    """

    method: str = DEFAULT_METHOD
    bits: int = 4
    group_size: int = DEFAULT_GROUP_SIZE

    def __post_init__(self):
        if self.method not in METHODS:
            raise TrustbitsError(f"unknown quantization method '{self.method}' ({did_you_mean(self.method, METHODS)})", f"use one of: {', '.join(METHODS)}")
        if self.bits not in BITS:
            raise TrustbitsError(
                f"bit-width {self.bits} is out of range",
                f"use one of {', '.join(map(str, BITS))} (or 'keep' for 16-bit)",
            )
        if self.group_size not in GROUP_SIZES:
            raise TrustbitsError(
                f"group size {self.group_size} is out of range", f"use one of {', '.join(map(str, GROUP_SIZES))}"
            )

    def __str__(self) -> str:
        return f"{self.method}:{self.bits}:{self.group_size}"

    @classmethod
    def parse(cls, text: str) -> "QuantSpec | None":
        """``"hqq:4:64"`` -> QuantSpec; ``"keep"`` -> None; ``"hqq:4"`` uses the default group."""
        text = text.strip()
        if text.lower() in ("keep", "16", "fp16", "float"):
            return None
        parts = text.split(":")
        try:
            if len(parts) == 2:
                return cls(parts[0], int(parts[1]))
            if len(parts) == 3:
                return cls(parts[0], int(parts[1]), int(parts[2]))
        except ValueError as e:
            raise TrustbitsError(f"cannot read quantization spec '{text}'", "write it as METHOD:BITS[:GROUP], e.g. hqq:4:64, or 'keep'") from e
        raise TrustbitsError(f"cannot read quantization spec '{text}'", "write it as METHOD:BITS[:GROUP], e.g. hqq:4:64, or 'keep'")

    def to_json(self) -> dict:
        return {"method": self.method, "bits": self.bits, "group_size": self.group_size}


def spec_bits(spec: QuantSpec | None) -> int:
    """Bits of a module's weights under `spec`; KEEP counts as 16."""
    return KEEP_BITS if spec is None else spec.bits


def _parse_layer_range(text: str) -> tuple[int, int]:
    """``"0-3"`` -> (0, 3); ``"5"`` -> (5, 5)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(text))
    if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
        raise TrustbitsError(f"cannot read layer range '{text}'", "write it as START-END (inclusive), e.g. 0-3, or one layer number")
    lo = int(m.group(1))
    return lo, int(m.group(2)) if m.group(2) is not None else lo


def _spec_from_json(value) -> QuantSpec | None:
    if value is None or value == "keep":
        return None
    if isinstance(value, str):
        return QuantSpec.parse(value)
    if isinstance(value, Mapping):
        unknown = set(value) - {"method", "bits", "group_size"}
        if unknown:
            raise TrustbitsError(f"unknown key '{sorted(unknown)[0]}' in a plan entry", "use method, bits and group_size")
        return QuantSpec(**value)
    raise TrustbitsError(f"cannot read plan entry {value!r}", "use 'keep' or {\"method\", \"bits\", \"group_size\"}")


@dataclass
class Plan:
    """A per-module quantization plan (see the module docstring).

    Attributes:
        modules: full module name -> QuantSpec, or None for KEEP. Order is the model's order.
        model_name: the model the plan was made for, as the user named it (informative).
        model_fingerprint: fingerprint of that model's weights; a plan is refused on another.
    """

    modules: dict[str, QuantSpec | None]
    model_name: str | None = None
    model_fingerprint: str | None = None
    meta: dict = field(default_factory=dict)

    # ---- constructors -------------------------------------------------------------------

    @classmethod
    def uniform(cls, module_names: Iterable[str], spec: QuantSpec | None, **kw) -> "Plan":
        """Every module at `spec` (None: the float model)."""
        return cls({name: spec for name in module_names}, **kw)

    @classmethod
    def from_rules(
        cls,
        module_names: Iterable[str],
        rules: Mapping[str, QuantSpec | str | None],
        default: QuantSpec | str | None = None,
        **kw,
    ) -> "Plan":
        """A plan from regex rules, first match wins, as llama.cpp recipes read.

        Example:
            >>> Plan.from_rules(names, {r"mlp\\.down_proj": "hqq:8:64",
            ...                         r"layers\\.(2[4-9])\\.": "hqq:3:64"}, default="hqq:4:64")

        A rule matches a module when `re.search` finds it in the full module name; a rule that
        matches no module is an error (it is almost always a typo).
        """
        names = list(module_names)
        parsed = [(re.compile(p), QuantSpec.parse(s) if isinstance(s, str) else s) for p, s in rules.items()]
        default_spec = QuantSpec.parse(default) if isinstance(default, str) else default
        modules, used = {}, set()
        for name in names:
            for pattern, spec in parsed:
                if pattern.search(name):
                    modules[name] = spec
                    used.add(pattern.pattern)
                    break
            else:
                modules[name] = default_spec
        unused = [p for p in rules if p not in used]
        if unused:
            raise TrustbitsError(f"plan rule '{unused[0]}' matches no module of the model", "check it against `trustbits info --model ...`")
        return cls(modules, **kw)

    @classmethod
    def per_kind(
        cls,
        module_names: Iterable[str],
        kinds: Mapping[str, QuantSpec | str | None],
        default: QuantSpec | str | None = None,
        **kw,
    ) -> "Plan":
        """A plan by projection type: the module name's last part (``q_proj``, ``down_proj``,
        ``lm_head``) picks the spec; other modules get `default`.

        Example:
            >>> Plan.per_kind(names, {"down_proj": "hqq:8:64", "lm_head": "keep"}, default="hqq:4:64")

        Raises:
            TrustbitsError: a kind the model does not have (with "did you mean").
        """
        names = list(module_names)
        present = {n.rsplit(".", 1)[-1] for n in names}
        for kind in kinds:
            if kind not in present:
                raise TrustbitsError(f"the model has no '{kind}' modules ({did_you_mean(kind, present)})", "name a projection type the model has")
        return cls.from_rules(names, {rf"(^|\.){re.escape(k)}$": s for k, s in kinds.items()}, default, **kw)

    @classmethod
    def per_layer_range(
        cls,
        module_names: Iterable[str],
        ranges: Mapping[str, QuantSpec | str | None],
        default: QuantSpec | str | None = None,
        **kw,
    ) -> "Plan":
        """A plan by decoder-layer range: ``{"0-3": "hqq:8:64", "28-29": "keep"}`` (inclusive,
        first match wins, ``"5"`` is one layer). Modules outside every range (and the head, which
        belongs to no layer) get `default`.

        Raises:
            TrustbitsError: a malformed range, or one that covers no layer of the model.
        """
        names = list(module_names)
        rules = {}
        for text, spec in ranges.items():
            lo, hi = _parse_layer_range(text)
            layers = "|".join(str(i) for i in range(lo, hi + 1))
            rules[rf"(^|\.)(layers|h|blocks|layer)\.({layers})\."] = spec
        try:
            return cls.from_rules(names, rules, default, **kw)
        except TrustbitsError as e:
            # Name the range as the user wrote it, not as the regex we made of it.
            bad = next((t for t, r in zip(ranges, rules) if not any(re.search(r, n) for n in names)), None)
            if bad is None:
                raise
            raise TrustbitsError(f"layer range '{bad}' covers no layer of the model", "check the layer count with `trustbits info`") from e

    # ---- JSON ---------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "version": PLAN_VERSION,
            "model": {"name": self.model_name, "fingerprint": self.model_fingerprint},
            "modules": {n: ("keep" if s is None else s.to_json()) for n, s in self.modules.items()},
            **({"meta": self.meta} if self.meta else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> "Plan":
        if not isinstance(data, Mapping) or "modules" not in data:
            raise TrustbitsError("this file is not a trustbits plan (no 'modules' key)", "pass a plan.json written by trustbits")
        version = data.get("version")
        if version != PLAN_VERSION:
            raise TrustbitsError(f"plan schema version {version!r} is not supported", f"this trustbits reads version {PLAN_VERSION}")
        model = data.get("model") or {}
        modules = {str(n): _spec_from_json(v) for n, v in data["modules"].items()}
        return cls(modules, model.get("name"), model.get("fingerprint"), dict(data.get("meta") or {}))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Plan":
        path = Path(path)
        if not path.is_file():
            raise TrustbitsError(f"plan file '{path}' does not exist", "pass the path of a plan.json")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TrustbitsError(f"plan file '{path}' is not valid JSON ({e})", "pass a plan.json written by trustbits") from e
        return cls.from_json(data)

    # ---- checks and summaries -----------------------------------------------------------

    def check_model(self, module_names: Iterable[str], fingerprint: str | None = None) -> None:
        """Refuse a plan made for another model.

        Raises:
            TrustbitsError: a module the model lacks (with "did you mean"), a module of the
            model the plan does not cover, or another model's weight fingerprint.
        """
        names = list(module_names)
        known = set(names)
        for name in self.modules:
            if name not in known:
                raise TrustbitsError(
                    f"the plan names module '{name}', which this model does not have ({did_you_mean(name, names)})",
                    "the plan was probably made for another model; make one with `trustbits info` for this model",
                )
        missing = [n for n in names if n not in self.modules]
        if missing:
            raise TrustbitsError(
                f"the plan does not cover module '{missing[0]}' ({len(missing)} modules missing)",
                "give every quantizable module a spec or 'keep'",
            )
        if fingerprint and self.model_fingerprint and fingerprint != self.model_fingerprint:
            raise TrustbitsError(
                f"the plan was made for model weights {self.model_fingerprint[:12]} ({self.model_name}), not these ({fingerprint[:12]})",
                "use a plan made for this model",
            )

    def bits_histogram(self) -> dict[int, int]:
        """Bit-width -> number of modules (16 for KEEP)."""
        return dict(sorted(Counter(spec_bits(s) for s in self.modules.values()).items()))

    def specs(self) -> set[QuantSpec]:
        return {s for s in self.modules.values() if s is not None}

    def __eq__(self, other) -> bool:
        return isinstance(other, Plan) and self.modules == other.modules and self.model_fingerprint == other.model_fingerprint
