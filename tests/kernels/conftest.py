"""Fixtures for the kernel tests: QTensors from random and real weights."""

from __future__ import annotations

import math

import pytest
import torch

from trustbits.kernels.qtensor import QTensor


def rtn(weight: torch.Tensor, bits: int, group_size: int) -> QTensor:
    """Plain asymmetric round-to-nearest per (row, group): real weights as a QTensor."""
    out_f, in_f = weight.shape
    n_groups = math.ceil(in_f / group_size)
    scale = torch.empty(out_f, n_groups)
    zero = torch.empty(out_f, n_groups)
    codes = torch.empty(out_f, in_f, dtype=torch.uint8)
    qmax = 2**bits - 1
    for g in range(n_groups):
        w = weight[:, g * group_size : (g + 1) * group_size].float()
        lo, hi = w.amin(1), w.amax(1)
        s = ((hi - lo) / qmax).clamp_min(1e-8)
        z = (-lo / s).round().clamp(0, qmax)
        scale[:, g], zero[:, g] = s, z
        codes[:, g * group_size : (g + 1) * group_size] = (w / s[:, None] + z[:, None]).round().clamp(0, qmax).to(torch.uint8)
    return QTensor(codes, scale.half(), zero.half(), bits, group_size)


def random_q(shape, bits, group_size, seed=0) -> QTensor:
    """Random codes, scales and fractional (HQQ-style) zeros."""
    gen = torch.Generator().manual_seed(seed)
    out_f, in_f = shape
    n_groups = math.ceil(in_f / group_size)
    codes = torch.randint(0, 2**bits, shape, dtype=torch.uint8, generator=gen)
    scale = (torch.rand(out_f, n_groups, generator=gen) * 0.02 + 1e-3).half()
    zero = (torch.rand(out_f, n_groups, generator=gen) * (2**bits - 1)).half()
    return QTensor(codes, scale, zero, bits, group_size)


def relative_error(y: torch.Tensor, q: QTensor, x: torch.Tensor, bias=None) -> float:
    """max |y - ref| / max |ref|, ref = x @ dequantize(W)^T (+ bias) in float64."""
    ref = x.double() @ q.dequantize(torch.float64).t()
    if bias is not None:
        ref = ref + bias.double()
    return ((y.double() - ref).abs().max() / ref.abs().max()).item()


@pytest.fixture
def fast_timing(monkeypatch):
    """Shorter kernel timings (tiny copies budget, 3 rounds): the tests check decisions and
    caching, not speed."""
    from trustbits.kernels import timing

    monkeypatch.setattr(timing, "FLUSH_BYTES", 2**20)
    monkeypatch.setattr(timing, "ROUNDS", 3)
    yield


@pytest.fixture
def one_thread():
    """Timed tests run on one thread: on a shared 2-core machine a second OpenMP thread waits
    whole scheduler slices at every barrier, which turns microsecond calls into milliseconds
    at random (the latency table is keyed by thread count, so this is its own device)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_cpu_extension(monkeypatch):
    """As on a machine without a compiler: the C++ kernel reports itself unavailable."""
    from trustbits.kernels import _cpu_ext

    monkeypatch.setattr(_cpu_ext, "_state", {"ok": False, "reason": "disabled by the test"})
    yield


@pytest.fixture(scope="session")
def kh():
    """The helpers above, for test modules (conftest modules are not importable by name
    under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(rtn=rtn, random_q=random_q, relative_error=relative_error)
