"""Fixtures for the quant tests: the tiny model as a LoadedModel, and its module names."""

from __future__ import annotations

import pytest


@pytest.fixture
def tiny_loaded(tiny_model, tiny_tokenizer):
    import torch

    from trustbits.quant.fingerprint import weights_fingerprint
    from trustbits.quant.loading import LoadedModel

    return LoadedModel(tiny_model, tiny_tokenizer, "tiny", weights_fingerprint(tiny_model), torch.device("cpu"), torch.float32)


@pytest.fixture
def tiny_names(tiny_loaded):
    from trustbits.quant.inventory import quantizable_modules

    return [m.name for m in quantizable_modules(tiny_loaded.model)]


@pytest.fixture
def tiny_ids(tiny_tokenizer):
    return tiny_tokenizer("Please answer with 'wrong' or 'not wrong'. The sentiment is positive.", return_tensors="pt").input_ids


def gptq_available() -> bool:
    from trustbits.quant import _gptqmodel

    return _gptqmodel.available()


needs_gptqmodel = pytest.mark.skipif("not __import__('trustbits.quant._gptqmodel', fromlist=['x']).available()", reason="gptqmodel is not installed (pip install 'trustbits[gptq]')")
