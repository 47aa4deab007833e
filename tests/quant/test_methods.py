"""Each method at each bit-width on the tiny model's weights: QTensor form, error falling with
bits, 8-bit near-lossless; AWQ refused on the CPU; GPTQ's missing-package error."""

from __future__ import annotations

import pytest
import torch

from trustbits.errors import TrustbitsError
from trustbits.quant.calibration import capture
from trustbits.quant.methods import method_config, quantize_weight
from trustbits.quant.plan import BITS, QuantSpec

from .conftest import needs_gptqmodel

METHODS = ["rtn", "hqq", pytest.param("gptq", marks=needs_gptqmodel)]


@pytest.fixture
def down_proj(tiny_loaded, tiny_names):
    """A real weight [64, 192] (192 = 128 + a short group of 64) and its calibration Hessian."""
    name = "model.layers.1.mlp.down_proj"
    calib = capture(tiny_loaded.model, tiny_loaded.tokenizer, tiny_names)
    return name, tiny_loaded.model.get_submodule(name).weight.detach(), calib


@pytest.mark.parametrize("group", [32, 128])
@pytest.mark.parametrize("method", METHODS)
def test_error_falls_as_bits_rise_and_8_bit_is_near_lossless(method, group, down_proj):
    name, weight, calib = down_proj
    errors = []
    for bits in BITS:
        qt = quantize_weight(weight, QuantSpec(method, bits, group), calib.hessians[name])
        out_f, in_f = weight.shape
        assert qt.shape == (out_f, in_f) and qt.bits == bits and qt.group_size == group
        assert qt.codes.dtype == torch.uint8 and int(qt.codes.max()) < 2**bits
        assert qt.scale.shape == (out_f, -(-in_f // group)) and qt.scale.dtype == torch.float16
        errors.append(calib.relative_error(name, weight, qt.dequantize()))
    assert errors == sorted(errors, reverse=True), errors
    assert errors[0] < 0.8  # 2-bit is lossy but not noise
    assert errors[-1] < 0.01  # 8-bit: within 1% output error


@pytest.mark.parametrize("method", ["rtn", "hqq"])
def test_groups_stay_within_rows(method):
    """A row whose second half is 100x larger: a group crossing rows or halves would blur them."""
    torch.manual_seed(0)
    w = torch.randn(4, 192)
    w[:, 128:] *= 100
    qt = quantize_weight(w, QuantSpec(method, 8, 128))
    err = (qt.dequantize() - w).abs()
    assert err[:, :128].max() < 0.05  # the small group keeps its own fine scale
    assert qt.scale.shape == (4, 2)


@needs_gptqmodel
def test_gptq_beats_rtn_on_correlated_inputs():
    """GPTQ's point: with correlated inputs it compensates rounding error; RTN cannot."""
    torch.manual_seed(0)
    x = torch.randn(4096, 16) @ torch.randn(16, 128) + 0.1 * torch.randn(4096, 128)  # 16 dominant directions
    h = x.T @ x / len(x)
    w = torch.randn(64, 128)

    def out_err(qt):
        d = w - qt.dequantize()
        return float(torch.trace(d @ h @ d.T) / torch.trace(w @ h @ w.T)) ** 0.5

    assert out_err(quantize_weight(w, QuantSpec("gptq", 3, 32), h)) < 0.5 * out_err(quantize_weight(w, QuantSpec("rtn", 3, 32)))


def test_awq_is_refused_on_cpu():
    with pytest.raises(TrustbitsError, match="AWQ cannot run on the CPU") as e:
        quantize_weight(torch.randn(8, 64), QuantSpec("awq", 4, 32))
    assert "\n" not in e.value.message


def test_gptq_needs_calibration():
    with pytest.raises(TrustbitsError, match="needs calibration activations"):
        quantize_weight(torch.randn(8, 64), QuantSpec("gptq", 4, 32))


def test_gptq_without_gptqmodel_says_how_to_install(monkeypatch):
    from trustbits.quant import _gptqmodel

    monkeypatch.setattr(_gptqmodel, "available", lambda: False)
    _gptqmodel.gptqmodel.cache_clear()
    try:
        with pytest.raises(TrustbitsError, match=r"gptqmodel, which is not installed; install it with `pip install 'trustbits\[gptq\]'"):
            quantize_weight(torch.randn(8, 64), QuantSpec("gptq", 4, 32), torch.eye(64))
    finally:
        _gptqmodel.gptqmodel.cache_clear()


def test_config_keys_differ_by_knobs():
    from trustbits.quant.methods.hqq import HQQConfig

    assert method_config(QuantSpec("hqq", 4, 64)).key() == HQQConfig(4, 64).key()
    assert HQQConfig(4, 64).key() != HQQConfig(4, 64, optimize=False).key()
    assert HQQConfig(4, 64).key() != HQQConfig(3, 64).key()


@needs_gptqmodel
def test_gptqmodel_import_leaves_environment_and_cwd_clean(tmp_path, monkeypatch):
    import os

    from trustbits.quant import _gptqmodel

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HOME", raising=False)
    _gptqmodel.gptqmodel()
    quantize_weight(torch.randn(16, 64), QuantSpec("gptq", 4, 32), torch.eye(64))
    assert "HF_HOME" not in os.environ
    assert list(tmp_path.iterdir()) == []
