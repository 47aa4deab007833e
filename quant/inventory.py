"""What in a model can be quantized: every nn.Linear of the decoder, plus the output head.

The head matters: SmolLM2's head is tied to its 49152x576 embedding (113 MB in float32), and
at decode it moves more bytes than all its 4-bit linears together, so plans must be able to
quantize it. It is listed last, with `tied=True` when it shares the embedding's weight.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn


@dataclass(frozen=True)
class ModuleInfo:
    """One quantizable module.

    Attributes:
        name: full module name, the key plans use (``model.layers.0.self_attn.q_proj``).
        in_features, out_features: the weight is [out_features, in_features].
        bias: whether the module has a bias (kept in float, never quantized).
        role: ``"linear"`` (decoder linears) or ``"head"`` (the output projection).
        tied: the head shares its weight with the input embedding.
        layer: decoder layer index, or None for the head.
        kind: the module's last name part (``q_proj``, ``down_proj``, ``lm_head``): its
            projection type, which plans can group by.
    """

    name: str
    in_features: int
    out_features: int
    bias: bool
    role: str
    tied: bool
    layer: int | None
    kind: str

    @property
    def params(self) -> int:
        return self.in_features * self.out_features

    def to_json(self) -> dict:
        return asdict(self) | {"params": self.params}


def _layer_index(name: str) -> int | None:
    parts = name.split(".")
    for prev, part in zip(parts, parts[1:]):
        if prev in ("layers", "h", "blocks", "layer") and part.isdigit():
            return int(part)
    return None


def output_head(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """(name, module) of the model's output projection, if it is an nn.Linear."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(head, nn.Linear):
        return None
    for name, mod in model.named_modules():
        if mod is head:
            return name, head
    return None


def quantizable_modules(model: nn.Module) -> list[ModuleInfo]:
    """Every quantizable linear module of `model`, in model order, the head last.

    A model quantized by trustbits reports the same list: its `QuantLinear` modules count
    under the name of the linear they replaced.
    """
    from trustbits.kernels.linear import QuantLinear

    head = output_head(model)
    head_name = head[0] if head else None
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    out, head_info = [], None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            in_f, out_f, has_bias = mod.in_features, mod.out_features, mod.bias is not None
        elif isinstance(mod, QuantLinear):
            in_f, out_f, has_bias = mod.in_features, mod.out_features, mod.bias is not None
        else:
            continue
        is_head = name == head_name or name == "lm_head"
        tied = bool(
            is_head
            and isinstance(mod, nn.Linear)
            and emb is not None
            and getattr(emb, "weight", None) is not None
            and mod.weight.data_ptr() == emb.weight.data_ptr()
        )
        info = ModuleInfo(
            name=name,
            in_features=in_f,
            out_features=out_f,
            bias=has_bias,
            role="head" if is_head else "linear",
            tied=tied,
            layer=None if is_head else _layer_index(name),
            kind=name.rsplit(".", 1)[-1],
        )
        if is_head:
            head_info = info
        else:
            out.append(info)
    return out + ([head_info] if head_info else [])


def parameter_count(model: nn.Module) -> int:
    """Parameters, tied ones counted once (what a checkpoint stores)."""
    seen, total = set(), 0
    for p in model.parameters():  # parameters() already skips shared tensors
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def layer_count(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    n = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
    return int(n) if n is not None else None


def float16_bytes(model: nn.Module) -> int:
    """Footprint of every parameter at 2 bytes, tied weights once."""
    return 2 * parameter_count(model)


