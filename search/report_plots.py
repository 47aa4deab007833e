"""Report figures (PNG, matplotlib): the front against the uniform grid, and each
configuration's change against the float model per perspective with 95% intervals."""

from __future__ import annotations

from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def front_vs_grid(configs, objective: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    groups = [
        ([c for c in configs if not c.on_front], "o", "#bbbbbb", "other configurations"),
        ([c for c in configs if c.label.startswith("uniform-") or c.label == "float"], "s", "#2ca02c", "float and uniform grid"),
        ([c for c in configs if c.on_front and not c.members], "o", "#1f77b4", "front: single model"),
        ([c for c in configs if c.on_front and bool(c.members)], "D", "#d62728", "front: precision ensemble"),
    ]
    for rows, marker, color, label in groups:
        if rows:
            ax.scatter([c.memory_mb for c in rows], [c.scores.values()[objective] for c in rows], marker=marker, c=color, s=40, label=label, zorder=3 if "front" in label else 2)
    for c in configs:
        if c.on_front or c.label.startswith("uniform-") or c.label == "float":
            ax.annotate(c.label if not c.on_front else f"#{c.number}", (c.memory_mb, c.scores.values()[objective]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("memory (MB, exact footprint)")
    ax.set_ylabel(f"{objective} (0-100)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def deltas_vs_float(rows: list[tuple[str, dict]], names: list[str], path: Path) -> Path:
    """rows: (config name, {perspective: Delta}); one panel per perspective."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 0.32 * len(rows) + 1.6), dpi=120, sharey=True)
    axes = axes if len(names) > 1 else [axes]
    labels = [r[0] for r in rows]
    for ax, name in zip(axes, names):
        for i, (_, deltas) in enumerate(rows):
            d = deltas.get(name)
            if d is None:
                continue
            color = "#d62728" if d.high < 0 else ("#2ca02c" if d.low > 0 else "#555555")
            # A percentile bootstrap interval of a non-linear score (DPD's max over groups) can
            # miss its own point estimate; the bar then starts at the point.
            ax.errorbar(d.value, i, xerr=[[max(0.0, d.value - d.low)], [max(0.0, d.high - d.value)]], fmt="o", color=color, capsize=2, ms=4)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(f"{name}: change vs float", fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(range(len(labels)))
    axes[0].set_yticklabels(labels, fontsize=7)
    axes[0].invert_yaxis()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
