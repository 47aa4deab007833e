"""measure_latency, the latency model (predicted against measured on the tiny model) and
ensemble latency."""

from __future__ import annotations

import pytest
import torch

from trustbits.kernels.ensemble import ensemble_latency
from trustbits.kernels.latency_model import LatencyEstimate, LatencyModel, linear_modules, linears_removed
from trustbits.kernels.linear import QuantLinear
from trustbits.kernels.measure import Spread, measure_latency


def _modules(model):
    from types import SimpleNamespace

    return [SimpleNamespace(name=n, in_features=m.in_features, out_features=m.out_features) for n, m in linear_modules(model)]


def test_measure_latency_reports_medians_and_spreads(tiny_model):
    m = measure_latency(tiny_model, prompt_len=16, decode_tokens=4, repeats=3, warmup=1)
    for s in (m.decode_ms_per_token, m.prefill_tokens_per_s):
        assert s.n == 3 and 0 < s.min <= s.q1 <= s.median <= s.q3 <= s.max
    assert m.kernels == {"float": len(linear_modules(tiny_model))}
    assert not m.modelled and m.device.startswith("cpu")
    data = m.to_json()
    assert set(data["decode_ms_per_token"]) >= {"median", "q1", "q3", "min", "max"}


@pytest.mark.parametrize("bad", [dict(prompt_len=0), dict(decode_tokens=0), dict(repeats=0), dict(warmup=-1)])
def test_measure_latency_refuses_bad_counts(tiny_model, bad):
    with pytest.raises(ValueError, match="at least"):
        measure_latency(tiny_model, **bad)


def test_spread_of_one_value():
    s = Spread.of([2.0])
    assert (s.median, s.q1, s.q3, s.min, s.max, s.n) == (2.0, 2.0, 2.0, 2.0, 2.0, 1)


def test_linears_removed_restores_the_model(tiny_model):
    before = {n: m for n, m in linear_modules(tiny_model)}
    with linears_removed(tiny_model):
        assert linear_modules(tiny_model) == []
        out = tiny_model(torch.tensor([[1, 2, 3]])).logits
        assert out.abs().sum() == 0  # a zero head: nothing of the linears ran
    assert {n: m for n, m in linear_modules(tiny_model)} == before


def test_predict_needs_every_module(fast_timing, tiny_model):
    lm = LatencyModel.for_model(tiny_model, prompt_len=16, decode_tokens=4, repeats=2)
    with pytest.raises(ValueError, match="no entry for module"):
        lm.predict(_modules(tiny_model), {})


def _quantize(model, kh, bits):
    for name, mod in linear_modules(model):
        parent_name, _, leaf = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, leaf, QuantLinear(kh.rtn(mod.weight.data, bits, 32)))


def test_prediction_tracks_measurement_on_the_tiny_model(tiny_model, kh, one_thread):
    """Predicted against measured decode and prefill, float and 4-bit. The machine may be
    shared, so each comparison takes the best of three attempts and allows a factor of 2
    either way: a wrong model (a missing remainder, a linear counted twice, the wrong
    regime) is off by far more on this tiny model, where the remainder dominates."""
    modules = _modules(tiny_model)
    proto = dict(prompt_len=32, decode_tokens=8)
    lm = LatencyModel.for_model(tiny_model, repeats=5, **proto)
    assert lm.remainder.n_linears == len(modules) and lm.remainder.head_names == ("lm_head",)
    again = LatencyModel.for_model(tiny_model, repeats=5, **proto)
    assert again.remainder == lm.remainder  # measured once per architecture and protocol, then cached
    for bits in (None, 4):
        est = lm.predict(modules, {m.name: None if bits is None else (bits, 32) for m in modules})
        assert isinstance(est, LatencyEstimate) and est.modelled
        if bits:
            _quantize(tiny_model, kh, bits)
        ratios = []
        for _ in range(3):
            m = measure_latency(tiny_model, repeats=5, **proto)
            ratios.append((est.decode_ms_per_token / m.decode_ms_per_token.median, est.prefill_tokens_per_s / m.prefill_tokens_per_s.median))
            if all(0.5 <= r <= 2.0 for r in ratios[-1]):
                break
        assert all(0.5 <= r <= 2.0 for r in ratios[-1]), f"{bits}-bit: modelled/measured (decode, prefill) over attempts: {ratios}"


def test_ensemble_latency_sums_or_takes_the_slowest():
    def est(decode, tps, modelled=True):
        return LatencyEstimate(decode, tps, 0, decode, 0, 1000 / tps, 10, "cpu: test", modelled=modelled)

    members = [est(10.0, 100.0), est(20.0, 50.0), est(5.0, 200.0)]
    seq = ensemble_latency(members)
    assert seq.decode_ms_per_token == pytest.approx(35.0)
    assert seq.prefill_tokens_per_s == pytest.approx(1 / (1 / 100 + 1 / 50 + 1 / 200))
    par = ensemble_latency(members, parallel=True)
    assert par.decode_ms_per_token == 20.0 and par.prefill_tokens_per_s == 50.0
    assert seq.modelled and par.members == 3
    with pytest.raises(ValueError, match="at least one"):
        ensemble_latency([])


def test_ensemble_of_measurements_uses_medians(tiny_model):
    m = measure_latency(tiny_model, prompt_len=8, decode_tokens=2, repeats=2, warmup=0)
    e = ensemble_latency([m, m])
    assert e.decode_ms_per_token == pytest.approx(2 * m.decode_ms_per_token.median)
    assert not e.modelled
