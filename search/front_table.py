"""The front as a rich table: objectives, scores with 95% intervals, bits, ensemble members."""

from __future__ import annotations

from rich.table import Table

from trustbits.search.front import Front, Row, perspective_columns


def _score(row: Row, name: str) -> str:
    v = row.scores.get(name)
    if v is None:
        return "-"
    ci = row.intervals.get(name)
    return f"{v:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else f"{v:.1f}"


def _config(row: Row) -> str:
    if row.members:
        return f"ensemble of #{', #'.join(map(str, row.members))} ({row.vote} vote)"
    hist = " ".join(f"{b}b:{n}" for b, n in sorted(row.bits_histogram.items(), key=lambda kv: int(kv[0])))
    return f"{row.avg_bits:.2f} bits avg ({hist})" if row.avg_bits is not None else hist


def front_table(front: Front) -> Table:
    cols = perspective_columns(front)
    t = Table(title=f"Pareto front of study {front.study_name}: {len(front.front)} configurations "
              f"({front.n_complete} complete, {front.n_pruned} stopped early, {front.n_failed} failed trials)")
    t.add_column("trial", justify="right")
    t.add_column("label")
    for c in cols:
        t.add_column(c + " [95% CI]", justify="right")
    t.add_column("memory MB", justify="right")
    t.add_column("latency ms/tok", justify="right")
    t.add_column("configuration")
    front_numbers = {r.number for r in front.front}
    rows = front.front + [r for r in front.baselines if r.number not in front_numbers]
    for r in rows:
        latency = "-" if r.latency_ms is None else f"{r.latency_ms:.2f}{'*' if r.latency_modelled else ''}"
        style = None if r.on_front else "dim"
        label = r.label + ("" if r.on_front else " (baseline, off the front)")
        t.add_row(f"#{r.number}", label, *[_score(r, c) for c in cols], f"{r.memory_mb:.1f}", latency, _config(r), style=style)
    if any(r.latency_modelled for r in rows):
        t.caption = "* latency modelled from the measured per-kernel table of this device (trustbits.kernels.LatencyModel)"
    return t
