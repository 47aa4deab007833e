"""`trustbits cache list|size|clear`: the quantized-layer cache and the model cache.

    trustbits cache list                      every cached layer folder: model, spec, files, size
    trustbits cache size                      bytes per cache (layers, models)
    trustbits cache clear                     delete every cached layer
    trustbits cache clear --fingerprint FP    only one model's layers
    trustbits cache clear --models            also the dequantized-model cache (GGUF loads)

The cache root is $TRUSTBITS_CACHE (default ~/.cache/trustbits).
"""

from __future__ import annotations

import argparse

from trustbits.search.commands._common import add_json_argument, write_json

ACTIONS = ("list", "size", "clear")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="list the layer cache, show sizes, or clear it")
    parser.add_argument("--fingerprint", default=None, help="only the layers of the model with this weights fingerprint (see `trustbits info`)")
    parser.add_argument("--models", action="store_true", help="clear: also delete the dequantized-model cache")
    add_json_argument(parser)


def _dir_bytes(path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def run(args) -> int:
    from trustbits.errors import TrustbitsError
    from trustbits.paths import cache_dir, cache_root
    from trustbits.quant.cache import clear_entries, list_entries
    from trustbits.search.console import console

    out = console()
    layers_root = cache_dir("layers")
    if args.fingerprint and not (layers_root / args.fingerprint).is_dir():
        known = sorted(p.name for p in layers_root.iterdir() if p.is_dir())
        from trustbits.errors import did_you_mean

        raise TrustbitsError(
            f"no cached layers for fingerprint '{args.fingerprint}' ({did_you_mean(args.fingerprint, known) if known else 'the cache is empty'})", "run `trustbits cache list` to see what is cached"
        )
    if args.action == "list":
        groups = list_entries(args.fingerprint)
        data = [g.__dict__ for g in groups]
        if args.json:
            write_json(args.json, {"root": str(cache_root()), "layers": data})
            if args.json == "-":
                return 0
        from rich.table import Table

        table = Table(title=f"quantized-layer cache in {layers_root}")
        for col in ("model fingerprint", "spec folder", "files", "MiB"):
            table.add_column(col, justify="right" if col in ("files", "MiB") else "left")
        for g in groups:
            table.add_row(g.fingerprint, g.folder, str(g.files), f"{g.bytes / 2**20:.1f}")
        out.print(table)
        out.print(f"{len(groups)} folders, {sum(g.files for g in groups)} layers, {sum(g.bytes for g in groups) / 2**20:.1f} MiB", highlight=False)
        return 0
    if args.action == "size":
        sizes = {"layers": sum(g.bytes for g in list_entries(args.fingerprint)), "models": _dir_bytes(cache_dir("models"))}
        if args.json:
            write_json(args.json, {"root": str(cache_root()), "bytes": sizes})
            if args.json == "-":
                return 0
        for name, size in sizes.items():
            out.print(f"{name:>7}: {size / 2**20:10.1f} MiB", highlight=False)
        out.print(f"{'total':>7}: {sum(sizes.values()) / 2**20:10.1f} MiB  ({cache_root()})", highlight=False)
        return 0
    removed = clear_entries(args.fingerprint)
    msg = f"removed {removed} cached layer files"
    if args.models:
        import shutil

        models = cache_dir("models")
        n = sum(1 for p in models.rglob("*") if p.is_file())
        shutil.rmtree(models)
        msg += f" and {n} model cache files"
    if args.json:
        write_json(args.json, {"removed_layer_files": removed})
    out.print(msg, highlight=False)
    return 0
