"""Hypervolume of trustbits' front against the uniform-plan front and against Optuna's random
sampler, at equal trial budgets, on the embedded model, in one run.

    .venv/bin/python bench/search_hypervolume.py --trials 16 --limit 4 [--out bench/out/hv]

Three studies on the same examples (same suite, same layer cache):

* trustbits: NSGA-II seeded with the float model, uniform plans and sensitivity-guided plans,
  precision ensembles on, early stop on;
* random: Optuna's RandomSampler over the same space, no seeds, no ensembles, no early stop;
* uniform: the float model and the uniform plans only (what a user ships without a search).

Objectives: trust (maximize) and memory (minimize). Hypervolume is computed on (-trust,
memory in MB) against the reference point (0, 1.1 x the float model's memory): the area of the
trust-memory plane each front dominates. Also printed: what the early stop saved.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import trustbits  # noqa: F401 - before transformers: unshadows the checkout's kernels/ folder

SPEC = """
[model]
name = "builtin:smollm2-135m-instruct"

[eval]
limit = {limit}
seed = 0
early_stop = {early_stop}

[search]
objectives = ["trust", "memory"]
bits = [3, 4, 8, 16]
head_bits = [4, 8, 16]
granularity = "block"
block_size = 5

[ensembles]
enabled = {ensembles}

[seeds]
float_model = {seeds}
uniform = {seeds}
sensitivity = {sensitivity}

[sampler]
name = "{sampler}"
seed = 0
population = 8

[budget]
trials = {trials}
"""


def front_points(study) -> list[tuple[float, float]]:
    return [(-t.values[0], t.values[1]) for t in study.best_trials]


def hypervolume(points, reference) -> float:
    from optuna._hypervolume import compute_hypervolume
    import numpy as np

    pts = np.array([p for p in points if p[0] < reference[0] and p[1] < reference[1]], dtype=float)
    return float(compute_hypervolume(pts, np.array(reference, dtype=float))) if len(pts) else 0.0


def run(name: str, out: Path, **fields):
    from trustbits.search.driver import run_search
    from trustbits.search.spec import load_spec
    from trustbits.search.storage import locate, make_storage
    import optuna

    path = out / f"{name}.toml"
    path.write_text(SPEC.format(**fields))
    spec = load_spec(path)
    t0 = time.perf_counter()
    summary = run_search(spec)
    seconds = time.perf_counter() - t0
    study = optuna.load_study(study_name=spec.name, storage=make_storage(locate(spec), heartbeat=False))
    return study, summary, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--out", default="bench/out/hv")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for f in out.glob("*.db*"):
        f.unlink()
    for f in out.glob("*.sampler"):
        f.unlink()
    common = {"limit": args.limit, "trials": args.trials}
    ours, s_ours, t_ours = run("trustbits", out, early_stop="true", ensembles="true", seeds="true", sensitivity=2, sampler="nsga2", **common)
    rand, s_rand, t_rand = run("random", out, early_stop="false", ensembles="false", seeds="false", sensitivity=0, sampler="random", **common)
    uniform = [t for t in ours.trials if t.user_attrs.get("label") in ("float",) or t.user_attrs.get("label", "").startswith("uniform-")]
    uniform = [t for t in uniform if t.values is not None]
    float_mb = next(t.values[1] for t in uniform if t.user_attrs["label"] == "float")
    ref = (0.0, 1.1 * float_mb)

    from optuna.study._multi_objective import _is_pareto_front
    import numpy as np

    u_pts = np.array([(-t.values[0], t.values[1]) for t in uniform])
    u_front = [tuple(p) for p in u_pts[_is_pareto_front(u_pts, assume_unique_lexsorted=False)]]
    hv = {"trustbits": hypervolume(front_points(ours), ref), "random": hypervolume(front_points(rand), ref), "uniform": hypervolume(u_front, ref)}
    ours_front = front_points(ours)
    dominated = all(any(o[0] <= u[0] and o[1] <= u[1] for o in ours_front) for u in u_front)
    result = {
        "trials_per_study": args.trials,
        "examples_per_trial": s_ours.examples_total // max(s_ours.singles_done, 1),
        "reference_point": {"trust": ref[0], "memory_mb": ref[1]},
        "hypervolume": hv,
        "trustbits_over_random": hv["trustbits"] / hv["random"] - 1 if hv["random"] else None,
        "trustbits_over_uniform": hv["trustbits"] / hv["uniform"] - 1 if hv["uniform"] else None,
        "trustbits_front_weakly_dominates_every_uniform_point": dominated,
        "early_stop": {"trials_stopped": s_ours.early_stopped, "examples_saved": s_ours.examples_saved, "examples_total": s_ours.examples_total},
        "ensembles_scored": s_ours.ensembles_done,
        "minutes": {"trustbits": t_ours / 60, "random": t_rand / 60},
        "fronts": {"trustbits": ours_front, "random": front_points(rand), "uniform": u_front},
    }
    print(json.dumps(result, indent=1))
    print(
        f"\nhypervolume (trust x MB): trustbits {hv['trustbits']:.0f}, random {hv['random']:.0f}, uniform {hv['uniform']:.0f}; "
        f"trustbits/random = {hv['trustbits'] / max(hv['random'], 1e-9):.3f}, trustbits/uniform = {hv['trustbits'] / max(hv['uniform'], 1e-9):.3f}; "
        f"front dominates the uniform front: {dominated}; early stop saved {s_ours.examples_saved}/{s_ours.examples_total} examples "
        f"({s_ours.early_stopped} trials)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
