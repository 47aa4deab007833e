"""Arguments several subcommands share, defined once."""

from __future__ import annotations

import argparse


def add_model_arguments(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    from trustbits.quant.builtin import DEFAULT_MODEL

    parser.add_argument(
        "--model",
        default=None if required else DEFAULT_MODEL,
        required=required,
        help=f"builtin:NAME, a .gguf file, a model directory or a hub id (default: {DEFAULT_MODEL})",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present, else cpu)")
    parser.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (default: float32 on cpu, bfloat16 on gpu)")


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the result as JSON to FILE ('-' for stdout only)")


def write_json(target: str, data) -> None:
    """Write `data` to `target` ('-' prints it)."""
    import json
    from pathlib import Path

    text = json.dumps(data, indent=1, default=str)
    if target == "-":
        print(text)
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(text + "\n")
