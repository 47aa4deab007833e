"""Pareto plots: an interactive HTML (plotly) and a static PNG (matplotlib) of the front.

Trust (the first maximized objective) against memory, every complete trial in grey, the front
highlighted and labelled, baselines marked, ensembles drawn as diamonds.
"""

from __future__ import annotations

from pathlib import Path

from trustbits.search.front import Front


def _axes(front: Front) -> tuple[str, str]:
    y = next(o for o, d in zip(front.objectives, front.directions) if d == "maximize")
    x = "memory" if "memory" in front.objectives else next((o for o, d in zip(front.objectives, front.directions) if d == "minimize"), "memory")
    return x, y


def _value(row, name: str) -> float | None:
    if name == "memory":
        return row.memory_mb
    if name == "latency":
        return row.latency_ms
    return row.scores.get(name)


def _title(front: Front, x: str, y: str) -> str:
    if len(front.objectives) <= 2:
        return f"Pareto front of study {front.study_name}"
    # A front in more than two objectives: some of its points look dominated in this plane.
    return f"Pareto front of study {front.study_name} in ({', '.join(front.objectives)}), shown on {y} x {x}"


_UNITS = {"memory": "memory (MB, exact footprint)", "latency": "decode latency (ms/token)"}


def write_png(front: Front, all_rows: list, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = _axes(front)
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    pts = [(_value(r, x), _value(r, y)) for r in all_rows if _value(r, x) is not None and _value(r, y) is not None]
    if pts:
        ax.scatter(*zip(*pts), s=14, c="#bbbbbb", label="all complete trials", zorder=1)
    for rows, marker, color, label in [
        ([r for r in front.front if not r.members], "o", "#1f77b4", "front: single model"),
        ([r for r in front.front if r.members], "D", "#d62728", "front: precision ensemble"),
    ]:
        if rows:
            ax.scatter([_value(r, x) for r in rows], [_value(r, y) for r in rows], s=46, marker=marker, c=color, label=label, zorder=3)
            for r in rows:
                ax.annotate(f"#{r.number}", (_value(r, x), _value(r, y)), textcoords="offset points", xytext=(4, 4), fontsize=7)
    base = [r for r in front.baselines if _value(r, y) is not None]
    if base:
        ax.scatter([_value(r, x) for r in base], [_value(r, y) for r in base], s=70, marker="s", facecolors="none", edgecolors="#2ca02c", label="baselines (float, uniform)", zorder=2)
        for r in base:
            ax.annotate(r.label, (_value(r, x), _value(r, y)), textcoords="offset points", xytext=(4, -10), fontsize=7, color="#2ca02c")
    ax.set_xlabel(_UNITS.get(x, x))
    ax.set_ylabel(f"{y} score (0-100)")
    ax.set_title(_title(front, x, y), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_html(front: Front, all_rows: list, path: Path) -> Path:
    import plotly.graph_objects as go

    x, y = _axes(front)

    def trace(rows, name, **style):
        rows = [r for r in rows if _value(r, x) is not None and _value(r, y) is not None]
        text = [
            f"trial {r.number} ({r.label})<br>"
            + "<br>".join(f"{k}: {v:.2f}" for k, v in r.scores.items())
            + f"<br>memory {r.memory_mb:.1f} MB"
            + (f"<br>latency {r.latency_ms:.2f} ms/token{' (modelled)' if r.latency_modelled else ''}" if r.latency_ms else "")
            + (f"<br>members {r.members} ({r.vote} vote)" if r.members else f"<br>mean bits {r.avg_bits}")
            for r in rows
        ]
        return go.Scatter(x=[_value(r, x) for r in rows], y=[_value(r, y) for r in rows], mode="markers", name=name, text=text, hoverinfo="text", **style)

    fig = go.Figure(
        [
            trace(all_rows, "all complete trials", marker={"color": "#bbbbbb", "size": 6}),
            trace(front.baselines, "baselines", marker={"symbol": "square-open", "color": "#2ca02c", "size": 12}),
            trace([r for r in front.front if not r.members], "front: single model", marker={"color": "#1f77b4", "size": 10}),
            trace([r for r in front.front if r.members], "front: precision ensemble", marker={"symbol": "diamond", "color": "#d62728", "size": 11}),
        ]
    )
    fig.update_layout(title=_title(front, x, y), xaxis_title=_UNITS.get(x, x), yaxis_title=f"{y} score (0-100)", template="plotly_white")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path
