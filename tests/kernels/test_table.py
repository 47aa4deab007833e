"""The latency table is measured once per device, reused from the cache, and rebuilt when the
device (or the kernel code) changes."""

from __future__ import annotations

import json

import pytest
import torch

from trustbits.kernels import table as table_mod
from trustbits.kernels.dispatch import kernel_by_name
from trustbits.kernels.table import TimingTable

CPU = torch.device("cpu")


def _no_measuring(self, *a, **k):
    raise AssertionError("measured although the table had the entry")


def test_reused_from_the_cache(fast_timing, monkeypatch):
    first = TimingTable(CPU)
    seconds = first.seconds(kernel_by_name("dequant-cached"), (64, 64), 4, 32, torch.float32, 1)
    assert first.measured == 1 and seconds > 0
    monkeypatch.setattr(TimingTable, "_measure", _no_measuring)
    again = TimingTable(CPU)  # a new process would do the same: load the file
    assert not again.rebuilt
    assert again.seconds(kernel_by_name("dequant-cached"), (64, 64), 4, 32, torch.float32, 1) == seconds
    assert again.measured == 0


def test_rebuilt_when_the_device_name_changes(fast_timing, monkeypatch):
    here = TimingTable(CPU)
    here.seconds(kernel_by_name("float"), (64, 64), None, None, torch.float32, 1)
    monkeypatch.setattr(table_mod, "device_name", lambda device=None: "cpu: another chip, 2 threads")
    other = TimingTable(CPU)
    assert other.device_name == "cpu: another chip, 2 threads"
    assert other.path != here.path and other.entries == {}
    # A file copied in from another device (same path, other name inside) is not trusted.
    data = json.loads(here.path.read_text())
    other.path.write_text(json.dumps(data))
    copied = TimingTable(CPU)
    assert copied.rebuilt and copied.entries == {}
    copied.seconds(kernel_by_name("float"), (64, 64), None, None, torch.float32, 1)
    assert json.loads(copied.path.read_text())["device"] == "cpu: another chip, 2 threads"


def test_rebuilt_when_the_kernel_code_changes(fast_timing, monkeypatch):
    t = TimingTable(CPU)
    t.seconds(kernel_by_name("float"), (64, 64), None, None, torch.float32, 1)
    monkeypatch.setattr(table_mod, "kernels_version", lambda: "other-code")
    assert TimingTable(CPU).rebuilt


def test_a_corrupt_file_is_measured_again(fast_timing, caplog):
    t = TimingTable(CPU)
    t.path.write_text("{ not json")
    again = TimingTable(CPU)
    assert again.rebuilt and again.entries == {}
    assert "unreadable" in caplog.text


def test_call_overheads_are_measured_once_and_kept(monkeypatch):
    from trustbits.kernels import overhead

    t = TimingTable(CPU)
    free = t.call_overhead("free", torch.float32)
    assert free > 0 and t.call_overhead("quant", torch.float32) >= 0
    monkeypatch.setattr(overhead, "measure_call_overheads", _no_measuring)
    assert TimingTable(CPU).call_overhead("free", torch.float32) == free


@pytest.mark.parametrize("name", ["cpu: Intel(R) Xeon(R), 2 threads", "cuda: NVIDIA H200"])
def test_device_slug_is_a_safe_file_name(name):
    from trustbits.kernels.device import device_slug

    slug = device_slug(name)
    assert "/" not in slug and " " not in slug and slug != device_slug(name + "x")
