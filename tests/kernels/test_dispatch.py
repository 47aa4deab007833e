"""Dispatch picks a measured kernel per regime, and falls back cleanly where none exists."""

from __future__ import annotations

import math

import pytest
import torch

from trustbits.kernels import dispatch
from trustbits.kernels.linear import QuantLinear
from trustbits.kernels.table import timing_table

CPU = torch.device("cpu")


def test_buckets():
    assert [dispatch.bucket_for(r) for r in (0, 1, 2, 4, 5, 16, 17, 128, 5000)] == [1, 1, 4, 4, 16, 16, 128, 128, 128]


def test_choice_is_the_fastest_measured_kernel(fast_timing):
    shape = (64, 192)
    times = dispatch.timed_choices(4, 64, shape, CPU, torch.float32, 1)
    assert set(times) == {k.name for k in dispatch.candidates(4, 64, shape, CPU, torch.float32)}
    assert "dequant-cached" in times and all(t > 0 for t in times.values())
    chosen = dispatch.choose(4, 64, shape, CPU, torch.float32, 1)
    assert times[chosen.name] == min(times.values())
    # The measurements are in the device's table, and saved.
    table = timing_table(CPU)
    assert table.lookup(chosen.name, shape, 4, 64, torch.float32, 1) == times[chosen.name]
    assert table.path.is_file()


def test_quantlinear_reports_the_kernel_it_ran(fast_timing, kh):
    q = kh.random_q((64, 192), 3, 32)
    layer = QuantLinear(q)
    decode_kernel = layer.kernel_for(1)
    x = torch.randn(1, 1, 192)
    y = layer(x)
    assert layer.kernel_name == decode_kernel.name
    assert kh.relative_error(y.reshape(1, 64), q, x.reshape(1, 192)) <= decode_kernel.tolerance
    layer(torch.randn(1, 200, 192))  # an evaluation-sized call: its own regime
    assert set(layer.kernel_names) == {1, 128}
    assert layer.kernel_name == layer.kernel_names[128]


def test_pruned_kernels_are_not_timed_at_larger_buckets(fast_timing, monkeypatch):
    table = timing_table(CPU)
    shape = (64, 128)
    # Pretend cpu-lowbit lost by far at 1 row: it must be skipped (infinite) at 4, 16, 128.
    table.entries[table.key("cpu-lowbit", shape, 4, 32, torch.float32, 1)] = 1.0
    times = dispatch.timed_choices(4, 32, shape, CPU, torch.float32, 128)
    assert "cpu-lowbit" not in times
    for rows in (4, 16, 128):
        assert math.isinf(table.lookup("cpu-lowbit", shape, 4, 32, torch.float32, rows))


def test_fallback_without_any_low_bit_kernel(fast_timing, no_cpu_extension, kh):
    # No C++ kernel (no compiler), 8 bits (int4pack cannot), group 16: only the fallback.
    q = kh.random_q((40, 100), 8, 16)
    assert [k.name for k in dispatch.candidates(8, 16, (40, 100), CPU, torch.float32)] == ["dequant-cached"]
    layer = QuantLinear(q, torch.randn(40))
    x = torch.randn(2, 100)
    y = layer(x)
    assert layer.kernel_name == "dequant-cached"
    assert kh.relative_error(y, q, x, layer.bias) <= 1e-5


def test_cpu_extension_unavailable_reason(no_cpu_extension):
    lowbit = dispatch.kernel_by_name("cpu-lowbit")
    assert "unavailable" in lowbit.unsupported(4, 64, (64, 64), CPU, torch.float32)


def test_bfloat16_compute_uses_bfloat16_kernels(fast_timing, kh):
    q = kh.random_q((64, 128), 4, 64)
    names = [k.name for k in dispatch.candidates(4, 64, (64, 128), CPU, torch.bfloat16)]
    assert "cpu-lowbit" not in names and names[-1] == "dequant-cached"
    layer = QuantLinear(q, None, torch.bfloat16)
    y = layer(torch.randn(1, 128))
    assert y.dtype == torch.bfloat16


@pytest.mark.gpu
def test_cuda_dispatch_and_agreement(kh):
    cuda = torch.device("cuda")
    for bits in (2, 3, 4):
        q = kh.random_q((576, 576), bits, 64).to(cuda)
        kernel = dispatch.kernel_by_name("cuda-int4pack")
        assert kernel.unsupported(bits, 64, q.shape, cuda, torch.bfloat16) is None
        x = torch.randn(3, 576, device=cuda, dtype=torch.bfloat16)
        y = kernel.run(kernel.prepare(q, cuda, torch.bfloat16), x, None)
        ref = x.double() @ q.dequantize(torch.float64).t()
        assert ((y.double() - ref).abs().max() / ref.abs().max()).item() <= kernel.tolerance
    layer = QuantLinear(kh.random_q((576, 576), 4, 64).to(cuda), None, torch.bfloat16)
    layer(torch.randn(1, 576, device=cuda, dtype=torch.bfloat16))
    assert layer.kernel_name in {"cuda-int4pack", "dequant-cached"}


def test_exact_kernels_rule_out_activation_rounding_whatever_the_rows(fast_timing, monkeypatch, kh):
    # Make the bfloat16-activation kernel the fastest everywhere: outside the context it runs,
    # inside only kernels as exact as the dequantized matmul do, and the outputs no longer
    # depend on how many rows a call has (what makes scores independent of batching).
    real = dispatch.timed_choices

    def int4pack_fastest(*args, **kwargs):
        times = real(*args, **kwargs)
        return {name: (1e-9 if name == "cpu-int4pack" else t) for name, t in times.items()}

    monkeypatch.setattr(dispatch, "timed_choices", int4pack_fastest)
    q = kh.random_q((64, 192), 4, 32)
    layer = QuantLinear(q)
    x = torch.randn(200, 192)
    assert layer.kernel_for(1).name == "cpu-int4pack"
    # One row: every candidate is timed at the first bucket (larger ones may prune int4pack).
    rounded = kh.relative_error(layer(x[:1]), q, x[:1])
    assert rounded > 1e-4  # bfloat16 activations: the inexactness the context exists for
    with dispatch.exact_kernels():
        assert dispatch.exact_mode()
        for rows in (1, 3, 16, 200):
            kernel = layer.kernel_for(rows)
            assert dispatch.is_exact(kernel, torch.float32), (rows, kernel.name)
            assert kh.relative_error(layer(x[:rows]), q, x[:rows]) <= 1e-5
        full = layer(x)
        assert torch.allclose(torch.cat([layer(x[:3]), layer(x[3:])]), full, rtol=0, atol=1e-5)
    assert not dispatch.exact_mode()
    assert layer.kernel_for(1).name == "cpu-int4pack"  # the deployment's choice is untouched
