"""`trustbits info --model M`: architecture, layers, every quantizable linear with its shape,
parameter counts and the float16 footprint."""

from __future__ import annotations

import argparse

from trustbits.search.commands._common import add_json_argument, add_model_arguments, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    add_json_argument(parser)


def model_summary(loaded) -> dict:
    """Everything `info` shows, as JSON-ready data."""
    from trustbits.quant.inventory import float16_bytes, layer_count, parameter_count, quantizable_modules

    model = loaded.model
    modules = quantizable_modules(model)
    linears = [m for m in modules if m.role == "linear"]
    head = next((m for m in modules if m.role == "head"), None)
    return {
        "model": loaded.name,
        "architecture": type(model).__name__,
        "model_type": getattr(model.config, "model_type", None),
        "layers": layer_count(model),
        "linear_modules": len(linears),
        "head": head.to_json() if head else None,
        "parameters": parameter_count(model),
        "linear_parameters": sum(m.params for m in linears),
        "float16_bytes": float16_bytes(model),
        "fingerprint": loaded.fingerprint,
        "device": str(loaded.device),
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "chat_template": "plain fallback" if loaded.chat_template_fallback else "from the tokenizer",
        "load_seconds": round(loaded.load_seconds, 3),
        "loaded_from_cache": loaded.from_cache,
        "modules": [m.to_json() for m in modules],
    }


def run(args) -> int:
    from rich.table import Table

    from trustbits.quant.loading import load_model
    from trustbits.search.console import console, error_console

    with error_console().status(f"loading {args.model}"):
        loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    summary = model_summary(loaded)
    if args.json == "-":
        write_json("-", summary)
        return 0
    out = console()
    table = Table(title=f"quantizable modules of {summary['model']}", show_lines=False)
    for col, justify in [("#", "right"), ("module", "left"), ("kind", "left"), ("in", "right"), ("out", "right"), ("params", "right"), ("note", "left")]:
        table.add_column(col, justify=justify)
    for i, m in enumerate(summary["modules"]):
        note = ("head, tied to the embedding" if m["tied"] else "head") if m["role"] == "head" else ("bias" if m["bias"] else "")
        table.add_row(str(i), m["name"], m["kind"], str(m["in_features"]), str(m["out_features"]), f"{m['params']:,}", note)
    out.print(table)
    head = summary["head"]
    out.print(
        f"[bold]{summary['architecture']}[/] ({summary['model_type']}): {summary['layers']} layers, "
        f"{summary['linear_modules']} linear modules + {'a tied head' if head and head['tied'] else 'a head' if head else 'no linear head'}\n"
        f"parameters: {summary['parameters']:,} (linear: {summary['linear_parameters']:,}); "
        f"float16 footprint: {summary['float16_bytes'] / 2**20:.1f} MiB\n"
        f"fingerprint {summary['fingerprint']}, {summary['device']} {summary['dtype']}, chat template {summary['chat_template']}, "
        f"loaded in {summary['load_seconds']:.2f} s{' from the cache' if summary['loaded_from_cache'] else ''}",
        highlight=False,
    )
    if args.json:
        write_json(args.json, summary)
    return 0
