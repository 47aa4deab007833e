"""The front as a rich table: objectives, scores with 95% intervals, bits, ensemble members."""

from __future__ import annotations

from rich.table import Table

from trustbits.search.front import Front, Row, perspective_columns


def _score(row: Row, name: str) -> str:
    v = row.scores.get(name)
    if v is None:
        return "-"
    ci = row.intervals.get(name)
    return f"{v:.1f} ({ci[0]:.0f}-{ci[1]:.0f})" if ci else f"{v:.1f}"


def _config(row: Row) -> str:
    if row.members:
        return f"vote ({row.vote}) of #{', #'.join(map(str, row.members))}"
    hist = " ".join(f"{b}b:{n}" for b, n in sorted(row.bits_histogram.items(), key=lambda kv: int(kv[0])))
    return f"{row.avg_bits:.2f} avg; {hist}" if row.avg_bits is not None else hist


def front_table(front: Front) -> Table:
    cols = perspective_columns(front)
    c = front.counts
    t = Table(
        title=f"Pareto front of study {front.study_name}: {len(front.front)} configurations "
        f"({c['singles']} single models and {c['ensembles']} ensembles scored, {c['stopped_early']} stopped early, {c['skipped']} skipped, {c['failed']} failed)"
    )
    t.add_column("trial", justify="right", no_wrap=True)
    t.add_column("label", no_wrap=True)
    for c in cols:
        t.add_column(c + " (95% CI)", justify="right", no_wrap=True)
    t.add_column("MB", justify="right", no_wrap=True)
    if any(r.latency_ms is not None for r in front.front + front.baselines):
        t.add_column("ms/token", justify="right", no_wrap=True)
    t.add_column("bits: modules", no_wrap=True)
    front_numbers = {r.number for r in front.front}
    # A repeated plan (the sampler proposed it twice) is shown once, under its first trial.
    repeats: dict[int, list[int]] = {}
    for r in front.front:
        if r.duplicate_of is not None and r.duplicate_of in front_numbers:
            repeats.setdefault(r.duplicate_of, []).append(r.number)
    rows = [r for r in front.front if not (r.duplicate_of in front_numbers)]
    rows += [r for r in front.baselines if r.number not in front_numbers]
    show_latency = any(r.latency_ms is not None for r in rows)
    for r in rows:
        latency = "-" if r.latency_ms is None else f"{r.latency_ms:.2f}{'*' if r.latency_modelled else ''}"
        style = None if r.on_front else "dim"
        label = r.label + ("" if r.on_front else " (off front)") + (f" (= #{', #'.join(map(str, repeats[r.number]))})" if r.number in repeats else "")
        cells = [f"#{r.number}", label, *[_score(r, c) for c in cols], f"{r.memory_mb:.3g}"] + ([latency] if show_latency else []) + [_config(r)]
        t.add_row(*cells, style=style)
    if any(r.latency_modelled for r in rows):
        t.caption = "* latency modelled from the measured per-kernel table of this device (trustbits.kernels.LatencyModel)"
    return t
