"""Reference points every study starts from, enqueued before the sampler's own trials.

* the float model (every group at 16 bits), the reference constraints are measured against;
* uniform plans at each bit-width of the space, per method: what a user would otherwise ship;
* sensitivity-guided plans: a greedy bit allocation at a few memory budgets between the
  lowest and highest uniform plan, upgrading first the group whose measured sensitivity
  falls most per byte added (ExLlamaV2's and AutoRound's idea, on our measured KL table).
"""

from __future__ import annotations

from dataclasses import dataclass

from trustbits.quant.plan import KEEP_BITS
from trustbits.search.space import HEAD_GROUP, SearchSpace


@dataclass(frozen=True)
class Seed:
    label: str  # "float", "uniform-hqq-4", "sensitivity-4.7b"
    params: dict
    # For uniform plans: {"method": ..., "bits": ...}, what the paper's ensembles are built from.
    uniform: dict | None = None


def reference_seeds(space: SearchSpace, *, float_model: bool, uniform: bool) -> list[Seed]:
    """Float first (constraints are measured against it), then uniform plans from the highest
    precision down."""
    seeds = []
    if float_model and KEEP_BITS in space.bits:
        seeds.append(Seed("float", space.uniform_params(KEEP_BITS)))
    if uniform:
        for method in space.methods:
            for bits in sorted((b for b in space.bits if b != KEEP_BITS), reverse=True):
                params = space.uniform_params(bits, method=method)
                # A head whose choices lack this bit-width takes the next one up: say so.
                head = params.get(f"bits.{HEAD_GROUP}", bits)
                suffix = "" if head == bits else f"-head{head}"
                seeds.append(Seed(f"uniform-{method}-{bits}{suffix}", params, {"method": method, "bits": bits}))
    return seeds


def allocate(space: SearchSpace, sensitivity: dict[str, dict[int, float]], target_avg_bits: float) -> dict[str, int]:
    """Bits per group with parameter-weighted mean bits <= target, greedily minimizing the
    summed sensitivity: start every group at its lowest choice, then repeatedly take the
    upgrade (group to its next choice) with the largest sensitivity drop per added bit."""
    sizes = {g: space.group_params(g) for g in space.groups}
    total = sum(sizes.values())
    bits = {g: min(space.choices(g)) for g in space.groups}
    budget = target_avg_bits * total - sum(bits[g] * sizes[g] for g in space.groups)
    while True:
        best, best_gain = None, 0.0
        for g in space.groups:
            higher = sorted(b for b in space.choices(g) if b > bits[g])
            if not higher:
                continue
            nxt = higher[0]
            cost = (nxt - bits[g]) * sizes[g]
            if cost > budget:
                continue
            gain = (sensitivity[g].get(bits[g], 0.0) - sensitivity[g].get(nxt, 0.0)) / cost
            if gain > best_gain:
                best, best_gain = (g, nxt, cost), gain
        if best is None:
            return bits
        g, nxt, cost = best
        bits[g] = nxt
        budget -= cost


def sensitivity_seeds(space: SearchSpace, sensitivity: dict[str, dict[int, float]], count: int) -> list[Seed]:
    """`count` allocations at budgets evenly spaced strictly between the lowest and the
    highest quantized bit-width of the space (duplicates dropped)."""
    quantized = sorted(b for b in space.bits if b != KEEP_BITS)
    if count <= 0 or len(quantized) < 2:
        return []
    lo, hi = quantized[0], quantized[-1]
    seeds, seen = [], set()
    for i in range(count):
        target = lo + (hi - lo) * (i + 1) / (count + 1)
        params = space.params_for(allocate(space, sensitivity, target))
        key = tuple(sorted(params.items()))
        if key not in seen:
            seen.add(key)
            seeds.append(Seed(f"sensitivity-{target:.1f}b", params))
    return seeds
