"""The layer cache: miss then hit, corruption and truncation detected/rebuilt/reported, writes
that a kill cannot leave half-done, list/size/clear."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from trustbits.quant.cache import LayerCache, list_entries
from trustbits.quant.plan import Plan, QuantSpec

SPEC = QuantSpec("hqq", 4, 32)
MODULE = "model.layers.0.self_attn.q_proj"


@pytest.fixture
def cache(tiny_loaded):
    return LayerCache.for_model(tiny_loaded)


def test_miss_then_hit_from_memory_and_from_disk(cache, tiny_loaded):
    assert cache.get(MODULE, SPEC) is None
    assert cache.build(tiny_loaded, [SPEC], modules=[MODULE]) == 1
    assert cache.stats.misses == 1 and cache.path(MODULE, SPEC).is_file()
    assert cache.build(tiny_loaded, [SPEC], modules=[MODULE]) == 0  # warm: nothing to do
    fresh = LayerCache.for_model(tiny_loaded)  # another process: reads the file
    layer = fresh.get(MODULE, SPEC)
    assert fresh.stats.loaded_from_disk == 1
    assert torch.equal(layer.qtensor.codes, cache.get(MODULE, SPEC).qtensor.codes)
    assert 0 < layer.rel_error < 0.2


def test_build_takes_plans_specs_and_pairs(cache, tiny_loaded, tiny_names):
    plan = Plan.uniform(tiny_names, None)
    plan.modules[MODULE] = SPEC
    assert cache.build(tiny_loaded, plan) == 1
    assert cache.build(tiny_loaded, [(tiny_names[1], QuantSpec("rtn", 2, 64))]) == 1
    assert cache.build(tiny_loaded, [QuantSpec("rtn", 8, 128)]) == len(tiny_names)


def _flip_a_byte(path, offset_from_end=10):
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupt_file_is_detected_rebuilt_and_reported(damage, cache, tiny_loaded, caplog):
    cache.build(tiny_loaded, [SPEC], modules=[MODULE])
    good = cache.get(MODULE, SPEC).qtensor
    path = cache.path(MODULE, SPEC)
    if damage == "flip":
        _flip_a_byte(path)
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(b"\x00" * 64)
    fresh = LayerCache.for_model(tiny_loaded)
    with caplog.at_level(logging.WARNING, logger="trustbits.quant.cache"):
        assert fresh.build(tiny_loaded, [SPEC], modules=[MODULE]) == 1
    assert fresh.stats.corrupt == 1
    assert any("is corrupt" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)
    rebuilt = LayerCache.for_model(tiny_loaded).get(MODULE, SPEC).qtensor
    assert torch.equal(rebuilt.codes, good.codes) and torch.equal(rebuilt.scale, good.scale)


_KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import trustbits, torch
    import safetensors.torch
    from conftest import make_tiny_model, make_tiny_tokenizer
    from trustbits.quant.fingerprint import weights_fingerprint
    from trustbits.quant.loading import LoadedModel
    from trustbits.quant.cache import LayerCache
    from trustbits.quant.plan import QuantSpec

    def half_write_then_die(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        data = open(filename, "rb").read()
        open(filename, "wb").write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)   # killed mid-write, before the rename

    real = safetensors.torch.save_file
    safetensors.torch.save_file = half_write_then_die
    tok = make_tiny_tokenizer()
    model = make_tiny_model(len(tok))
    loaded = LoadedModel(model, tok, "tiny", weights_fingerprint(model), torch.device("cpu"), torch.float32)
    LayerCache.for_model(loaded).build(loaded, [QuantSpec("hqq", 4, 32)], modules=[{module!r}])
    """
)


def test_a_write_killed_midway_is_never_read(cache, tiny_loaded, tmp_path):
    tests = os.path.dirname(os.path.dirname(__file__))
    script = tmp_path / "writer.py"
    script.write_text(_KILLED_WRITER.format(tests=tests, module=MODULE))
    proc = subprocess.run([sys.executable, str(script)], env=os.environ | {"PYTHONPATH": tests}, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    folder = cache.folder(SPEC)
    leftovers = list(folder.iterdir())
    assert leftovers and all(p.name.startswith(".") and p.name.endswith(".tmp") for p in leftovers)  # only the temp file
    assert not cache.path(MODULE, SPEC).exists()
    assert cache.get(MODULE, SPEC) is None and cache.stats.corrupt == 0  # a miss, not a corrupt read
    assert cache.build(tiny_loaded, [SPEC], modules=[MODULE]) == 1
    assert LayerCache.for_model(tiny_loaded).get(MODULE, SPEC) is not None
    assert [g.files for g in list_entries(tiny_loaded.fingerprint)] == [1]  # the temp file is not listed


def test_list_size_clear(cache, tiny_loaded):
    cache.build(tiny_loaded, [SPEC, QuantSpec("rtn", 2, 64)], modules=[MODULE])
    groups = cache.list()
    assert sorted(g.folder.split("-")[0] for g in groups) == ["hqq", "rtn"]
    assert cache.size() == sum(p.stat().st_size for p in cache.root.rglob("*.safetensors")) > 0
    assert cache.clear() == 2
    assert cache.list() == [] and cache.get(MODULE, SPEC) is None


def test_other_method_knobs_use_another_folder(cache):
    from trustbits.quant.methods import method_config

    assert cache.folder(QuantSpec("hqq", 4, 32)) != cache.folder(QuantSpec("hqq", 4, 64))
    assert method_config(SPEC).key() in cache.folder(SPEC).name


def test_a_cache_for_another_model_refuses(tiny_loaded):
    from trustbits.errors import TrustbitsError

    with pytest.raises(TrustbitsError, match="belongs to another model"):
        LayerCache("0123456789abcdef").build(tiny_loaded, [SPEC])


def test_awq_is_refused_before_calibration(cache, tiny_loaded):
    from trustbits.errors import TrustbitsError

    with pytest.raises(TrustbitsError, match="AWQ cannot run on the CPU"):
        cache.build(tiny_loaded, [QuantSpec("awq", 4, 64)])
    assert cache._calibration is None  # refused before the calibration pass
