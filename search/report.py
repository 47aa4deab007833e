"""`trustbits report`: a Markdown report of a study, with tables and PNG plots.

Sections: every configuration against the float model (paired 95% intervals per
perspective), sub-scores, precision ensembles against their best and worst member and the
float model, the search front against the uniform grid at equal memory, and the certification
of the front in generate mode beside its loglik scores. Every number comes from the study's
stored records or from the certification run made while writing the report.
"""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

from trustbits import __version__
from trustbits.errors import TrustbitsError
from trustbits.search.front import trial_counts
from trustbits.search.report_data import Config, Delta, best_front_at_memory, delta, float_config, load_configs, perspective_names


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _d(d: Delta | None) -> str:
    if d is None:
        return "-"
    text = f"{d.value:+.1f} [{d.low:+.1f}, {d.high:+.1f}]"
    return f"**{text}**" if d.significant else text


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _describe(c: Config) -> str:
    if c.members:
        return f"ensemble of #{', #'.join(map(str, c.members))} ({c.vote} vote)"
    return f"{_fmt(c.avg_bits, 2)} bits avg"


def write_report(opened, out: Path, *, certify_front: bool = True, max_certify: int = 6, progress=None) -> Path:
    """Write `out/README.md` and its figures for an opened study; returns the Markdown path."""
    from trustbits.metrics import build_suite
    from trustbits.search.records import RecordStore
    from trustbits.search.report_plots import deltas_vs_float, front_vs_grid

    spec, study = opened.spec, opened.study
    e = spec.eval
    suite = build_suite(e.perspectives, limit=e.limit, seed=e.seed)
    store = RecordStore(opened.location.records_url, study.study_name)
    configs = load_configs(study, store, suite)
    if not configs:
        raise TrustbitsError(f"study '{study.study_name}' has no complete trial to report on", f"run `trustbits search {spec.path}` first")
    ref = float_config(configs)
    names = perspective_names(configs)
    objective = next(o for o in spec.search.objectives if o in ("trust",) + tuple(names))
    out.mkdir(parents=True, exist_ok=True)
    configs.sort(key=lambda c: (bool(c.members), -c.memory_mb, c.number))
    md: list[str] = []
    n_examples = len(configs[0].records)
    counts = trial_counts(study.trials)
    md += [
        f"# Results of study `{study.study_name}`",
        "",
        f"Regenerate: `trustbits search {_rel(spec.path)}` then `trustbits report {_rel(spec.path)} -o {_rel(out)}`.",
        "",
        (
            f"- model: `{spec.model.name}`; perspectives: {', '.join(e.perspectives)}; {n_examples} examples "
            f"({'at most ' + str(e.limit) + ' per task setting' if e.limit else 'the whole default suite'}, seed {e.seed}), scored by label log-likelihood"
        ),
        (
            f"- trials: {counts['singles']} single models and {counts['ensembles']} ensembles scored, {counts['stopped_early']} stopped early, "
            f"{counts['skipped']} skipped, {counts['failed']} failed; {len(configs)} distinct configurations reported"
        ),
        f"- report written {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by trustbits {__version__} on {platform.machine()} ({platform.processor() or 'cpu'})",
        "- intervals are 95% bootstrap intervals; a change against the float model is **bold** when its paired interval excludes 0",
        "",
    ]
    notes = configs[0].scores.metadata.get("notes") or []
    if notes:
        md += ["Scoring notes (choices recorded by the metrics package):", ""] + [f"- {n}" for n in notes] + [""]

    # ---- every configuration against the float model ---------------------------------------
    rows, plot_rows = [], []
    # Latency is priced only when it is an objective; an empty column would read as "not measured".
    has_latency = any(c.latency_ms is not None for c in configs)
    for c in configs:
        deltas = {n: delta(c, ref, n, suite) for n in names} if ref and c is not ref else {}
        plot_rows.append((c.name, deltas)) if deltas else None
        rows.append(
            [c.name, _describe(c), _fmt(c.memory_mb)]
            + ([_fmt(c.latency_ms, 2)] if has_latency else [])
            + [f"{_fmt(c.scores.values().get(n))}" + (f" ({_d(deltas.get(n))})" if deltas else "") for n in names]
        )
    header = ["configuration", "bits", "MB"] + (["ms/token (modelled)"] if has_latency else []) + [f"{n} (change vs float [95% CI])" for n in names]
    md += ["## Configurations against the float model", "", _table(header, rows), ""]
    if plot_rows:
        deltas_vs_float(plot_rows, names, out / "deltas.png")
        md += ["![changes against the float model](deltas.png)", ""]

    # ---- sub-scores -------------------------------------------------------------------------
    md += ["## Sub-scores", ""]
    for p in [n for n in names if n != "trust"]:
        subs = list(dict.fromkeys(k for c in configs if p in c.scores.perspectives for k in c.scores.perspectives[p].subscores))
        sub_rows = []
        for c in configs:
            ps = c.scores.perspectives.get(p)
            if ps is None:
                continue
            sub_rows.append([c.name] + [f"{ps.subscores[s].value:.1f} [{ps.subscores[s].low:.1f}, {ps.subscores[s].high:.1f}]" if s in ps.subscores else "-" for s in subs] + [_fmt(ps.refusal_rate)])
        md += [f"### {p}", "", _table(["configuration"] + subs + ["refusal %"], sub_rows), ""]

    # ---- ensembles ----------------------------------------------------------------------------
    ens = [c for c in configs if c.members]
    if ens:
        by_number = {c.number: c for c in configs}
        md += [
            "## Precision ensembles",
            "",
            "Gain of each ensemble over its best and its worst member (per perspective, by that perspective's score) and over the float model, with paired 95% intervals.",
            "",
        ]
        ens_rows = []
        for c in ens:
            members = [by_number[m] for m in c.members if m in by_number]
            for n in names:
                best = max(members, key=lambda m: m.scores.values().get(n, float("-inf")))
                worst = min(members, key=lambda m: m.scores.values().get(n, float("inf")))
                ens_rows.append([c.name, _describe(c), n, _fmt(c.scores.values().get(n)), _d(delta(c, best, n, suite)), _d(delta(c, worst, n, suite)), _d(delta(c, ref, n, suite)) if ref else "-"])
        md += [_table(["ensemble", "members", "perspective", "score", "vs best member", "vs worst member", "vs float"], ens_rows), ""]

    # ---- front against the uniform grid -----------------------------------------------------
    grid = [c for c in configs if c.label.startswith("uniform-") or c.label == "float"]
    front_vs_grid(configs, objective, out / "front.png")
    md += ["## The front against the uniform grid", "", f"For each uniform plan, the best front configuration that needs no more memory, by {objective}.", ""]
    g_rows = []
    for g in grid:
        best = best_front_at_memory(configs, g.memory_mb, objective)
        if best is None:
            continue
        g_rows.append(
            [
                g.name,
                _fmt(g.memory_mb),
                _fmt(g.scores.values()[objective]),
                best.name,
                _fmt(best.memory_mb),
                _fmt(best.scores.values()[objective]),
                "same" if best is g else _d(delta(best, g, objective, suite)),
            ]
        )
    md += [_table(["uniform plan", "MB", objective, "best front config within its memory", "MB", objective, "change [95% CI]"], g_rows), "", "![front against the grid](front.png)", ""]

    # ---- certification ----------------------------------------------------------------------
    if certify_front:
        from trustbits.search.certify import certify

        front = [c for c in configs if c.on_front][:max_certify]
        # The float model is certified too, off the front or not: it tells a quantization
        # effect from the scoring mode's own gap on this model.
        certified = front + ([ref] if ref is not None and ref not in front else [])
        cert = certify(spec, study, certified, suite, progress=progress)
        c_rows = []
        for c in certified:
            r = cert[c.number]
            gen = r.scores.values()
            refusal = [p.refusal_rate for p in r.scores.perspectives.values() if p.refusal_rate is not None]
            name = c.name if c.on_front else f"{c.name} (reference, off the front)"
            c_rows.append(
                [name, _fmt(c.scores.values().get(objective)), _fmt(gen.get(objective)), f"{100 * r.agreement:.1f}%", _fmt(sum(refusal) / len(refusal) if refusal else None)]
                + [f"{_fmt(c.scores.values().get(n))} / {_fmt(gen.get(n))}" for n in names if n != objective]
            )
        md += [
            "## Certification of the front (generate mode)",
            "",
            (
                f"DecodingTrust's greedy generation and answer parsing on the same examples, beside the loglik scores the search used "
                f"({len(front)} front configuration{'s' if len(front) != 1 else ''}{', and the float model as reference' if len(certified) > len(front) else ''}). "
                "'same answer' is the share of examples on which both modes predict the same option; a generated answer that parses to no option counts as a refusal."
            ),
            "",
            _table(["configuration", f"{objective} loglik", f"{objective} generate", "same answer", "refusal % (generate)"] + [f"{n} loglik / generate" for n in names if n != objective], c_rows),
            "",
        ]
    path = out / "README.md"
    path.write_text("\n".join(md) + "\n")
    return path


def _rel(p) -> str:
    try:
        return str(Path(p).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)
