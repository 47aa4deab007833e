"""Every kernel agrees with dequantize-then-matmul within its stated tolerance, at every
supported bit-width, on shapes whose in-features are and are not multiples of the group."""

from __future__ import annotations

import pytest
import torch

from trustbits.kernels.dispatch import KERNELS
from trustbits.kernels.linear import QuantLinear

CPU = torch.device("cpu")
CPU_KERNELS = [k for k in KERNELS if not k.name.startswith("cuda")]
# (out, in, group): SmolLM2's k/v and MLP shapes, 576 with a 128 group (4.5 groups), an odd
# in-features (100) with a short last group, and the tiny model's 192-wide MLP.
SHAPES = [(192, 576, 64), (576, 576, 128), (64, 1536, 32), (48, 100, 32), (64, 192, 64)]


@pytest.mark.parametrize("kernel", CPU_KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}g{s[2]}")
def test_kernel_matches_dequantized_reference(kernel, bits, shape, kh):
    out_f, in_f, group = shape
    reason = kernel.unsupported(bits, group, (out_f, in_f), CPU, torch.float32)
    if reason:
        pytest.skip(reason)
    q = kh.random_q((out_f, in_f), bits, group, seed=bits)
    state = kernel.prepare(q, CPU, torch.float32)
    bias = torch.randn(out_f)
    for rows in (1, 5):  # decode, and a few rows (the C++ kernel's multi-row blocks)
        x = torch.randn(rows, in_f)
        y = kernel.run(state, x, bias)
        assert y.shape == (rows, out_f) and y.dtype == torch.float32
        assert kh.relative_error(y, q, x, bias) <= kernel.tolerance, f"{kernel.name} {bits}-bit {shape} rows={rows}"


def test_unsupported_cases_are_named():
    lowbit, int4pack = (next(k for k in CPU_KERNELS if k.name == n) for n in ("cpu-lowbit", "cpu-int4pack"))
    assert "multiple of 16" in lowbit.unsupported(4, 8, (64, 64), CPU, torch.float32)
    assert "float32" in lowbit.unsupported(4, 64, (64, 64), CPU, torch.bfloat16)
    assert "at most 4-bit" in int4pack.unsupported(8, 64, (64, 64), CPU, torch.float32)
    assert "divisible by 16" in int4pack.unsupported(4, 64, (40, 64), CPU, torch.float32)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_real_weights_of_the_tiny_model(tiny_model, bits, kh):
    """RTN codes of real (trained-init) weights through every supported kernel and QuantLinear."""
    linears = [(n, m) for n, m in tiny_model.named_modules() if isinstance(m, torch.nn.Linear)]
    for name, lin in linears:
        q = kh.rtn(lin.weight.data, bits, 32)
        x = torch.randn(3, lin.in_features)
        for kernel in CPU_KERNELS:
            if kernel.unsupported(bits, 32, q.shape, CPU, torch.float32):
                continue
            layer = QuantLinear(q)
            layer.use_kernel(kernel.name)
            y = layer(x.unsqueeze(0)).squeeze(0)
            assert layer.kernel_name == kernel.name
            assert kh.relative_error(y, q, x) <= kernel.tolerance, f"{kernel.name} on {name}"


@pytest.mark.slow
@pytest.mark.parametrize("bits", [3, 4])
def test_real_weights_of_smollm2(smollm2, bits, kh):
    model = smollm2.model
    seen = set()
    for name, lin in model.named_modules():
        if not isinstance(lin, torch.nn.Linear) or tuple(lin.weight.shape) in seen or lin.out_features > 4096:
            continue
        seen.add(tuple(lin.weight.shape))
        q = kh.rtn(lin.weight.data, bits, 64)
        x = torch.randn(1, lin.in_features)
        for kernel in CPU_KERNELS:
            if kernel.unsupported(bits, 64, q.shape, CPU, torch.float32):
                continue
            y = kernel.run(kernel.prepare(q, CPU, torch.float32), x, None)
            assert kh.relative_error(y, q, x) <= kernel.tolerance, f"{kernel.name} on {name}"
    assert len(seen) == 4  # q/o, k/v, gate/up, down


def test_quantlinear_keeps_the_constructor_contract(kh):
    q = kh.random_q((64, 100), 4, 32)
    bias = torch.randn(64)
    layer = QuantLinear(q, bias, torch.float32)
    assert layer.qtensor is q and layer.in_features == 100 and layer.out_features == 64
    assert not layer._states  # construction prepares nothing
    x = torch.randn(2, 7, 100)
    layer.use_kernel("dequant-cached")
    y = layer(x)
    assert y.shape == (2, 7, 64)
    assert kh.relative_error(y.reshape(-1, 64), q, x.reshape(-1, 100), bias) <= 1e-5
    with pytest.raises(ValueError, match="cannot run"):
        QuantLinear(kh.random_q((64, 64), 8, 32)).use_kernel("cpu-int4pack")
