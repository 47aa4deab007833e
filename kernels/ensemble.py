"""The latency of a precision ensemble: its members answer one after another, or side by side.

Sequential members (one device, one at a time) cost the sum of their decode times and their
prefill times; parallel members (each on its own device, as the study declares) cost the
slowest member's. Works on measurements and estimates alike; the result is modelled as soon as
one member's figure is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class EnsembleLatency:
    decode_ms_per_token: float
    prefill_tokens_per_s: float
    parallel: bool
    members: int
    modelled: bool

    def to_json(self) -> dict:
        return asdict(self)


def _median(value) -> float:
    return float(getattr(value, "median", value))


def ensemble_latency(members: Sequence, *, parallel: bool = False) -> EnsembleLatency:
    """Combine members' latencies (`LatencyEstimate` or `LatencyMeasurement`).

    Args:
        members: at least one member latency; measured figures enter by their median.
        parallel: members run concurrently (slowest wins) instead of one after another (sum).

    Raises:
        ValueError: no members.
    """
    if not members:
        raise ValueError("an ensemble needs at least one member")
    decode = [_median(m.decode_ms_per_token) for m in members]
    prefill_s_per_token = [1.0 / _median(m.prefill_tokens_per_s) for m in members]
    combine = max if parallel else sum
    return EnsembleLatency(
        decode_ms_per_token=combine(decode),
        prefill_tokens_per_s=1.0 / combine(prefill_s_per_token),
        parallel=parallel,
        members=len(members),
        modelled=any(getattr(m, "modelled", False) for m in members),
    )
