"""A study with 1,000 finished trials: how fast `pareto`, `export` and a resume answer.

    .venv/bin/python bench/search_load.py [--trials 1000] [--out bench/out/load]

The trials are synthetic (no model runs: their scores are drawn at random) but written
through the real code path: the study is created by `create_or_check_study`, every trial is
asked through trustbits' kind-routing sampler, gets its plan from the real search space of the
embedded model, stores its plan, scores and footprint with the search's own attribute writer,
and its per-example records in the study's records table; one in ten is an ensemble of
earlier trials. Then, each timed as a user runs it (a fresh process, wall clock):

* `trustbits pareto SPEC --no-plot` and `trustbits pareto SPEC` (PNG + HTML),
* `trustbits export SPEC --trial N --format gptqmodel`,
* `trustbits search SPEC` on the finished study (the resume answers without loading a model),
* and, in-process, a resume that has work left: from `run_search` to the first new trial's start.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import trustbits  # noqa: F401 - before transformers: unshadows the checkout's kernels/ folder

SPEC = """
[model]
name = "builtin:smollm2-135m-instruct"
[eval]
limit = 4
[search]
objectives = ["trust", "memory"]
bits = [3, 4, 8, 16]
granularity = "layer"
[seeds]
sensitivity = 0
[ensembles]
per_trial = 0        # the synthetic ensembles are all there is: a resume owes none
uniform_sets = false
[budget]
trials = {trials}
"""
TRUSTBITS = str(Path(sys.executable).with_name("trustbits"))


def synthesize(spec, n: int) -> None:
    import optuna

    from trustbits.metrics import build_suite
    from trustbits.quant.inventory import quantizable_modules
    from trustbits.quant.loading import load_model
    from trustbits.search import storage as st
    from trustbits.search.driver import SEEDED_ATTR
    from trustbits.search.records import RecordStore
    from trustbits.search.sampler import ENSEMBLE, SINGLE, KindRoutingSampler
    from trustbits.search.space import SearchSpace, average_bits
    from trustbits.search.trial_attrs import pack, set_attrs

    loaded = load_model(spec.model.name)
    modules = quantizable_modules(loaded.model)
    space = SearchSpace.from_spec(spec, modules, model_name=loaded.name, model_fingerprint=loaded.fingerprint)
    loc = st.locate(spec)
    storage = st.make_storage(loc)
    sampler = KindRoutingSampler(optuna.samplers.RandomSampler(seed=0), optuna.samplers.RandomSampler(seed=1))
    st.create_or_check_study(spec, storage)
    study = optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler)
    study.set_user_attr(SEEDED_ATTR, [])
    store = RecordStore(loc.records_url, spec.name)
    requests = list(build_suite(spec.eval.perspectives, limit=spec.eval.limit).requests())
    rng = random.Random(0)
    singles = []
    for i in range(n):
        ensemble = i % 10 == 9 and len(singles) >= 3
        sampler.next_kind = ENSEMBLE if ensemble else SINGLE
        trial = study.ask()
        trust = rng.uniform(40, 80)
        if ensemble:
            members = rng.sample(singles, 3)
            attrs = {"label": "ensemble", "members": [m[0] for m in members], "vote": "hard", "memory_bytes": sum(m[1] for m in members), "avg_bits": 8.0}
            values = [trust, attrs["memory_bytes"] / 1e6]
        else:
            params = space.suggest(trial)
            plan = space.plan(params)
            from trustbits.quant.footprint import footprint

            memory = footprint(loaded.model, plan).total_bytes if i < 3 else int(rng.uniform(60e6, 270e6))
            records = [
                {"perspective": r.setting.spec.perspective, "task": r.setting.spec.task, "setting": r.setting.spec.name, "example_id": r.example.example_id, "gold": "x", "pred": "x", "option_logprobs": {"x": -0.1, "y": -2.0}, "group": r.example.group, "refused": False}
                for r in requests
            ]
            store.put(trial.number, 0, records)
            attrs = {"label": "sampled", "plan_z": pack(plan.to_json()), "memory_bytes": memory, "avg_bits": round(average_bits(plan, modules), 4), "bits_histogram": {str(k): v for k, v in plan.bits_histogram().items()}, "examples_scored": len(records), "examples_total": len(records)}
            values = [trust, memory / 1e6]
            singles.append((trial.number, memory))
        set_attrs(study, trial._trial_id, attrs | {"flat": {"trust": trust}})
        study.tell(trial, values)


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return time.perf_counter() - t0


class FirstTrialClock:
    """A stand-in for the live view that records when the first new trial starts."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.first = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def stage(self, *a):
        pass

    def trial_started(self, *a):
        if self.first is None:
            self.first = time.perf_counter() - self.t0
            raise KeyboardInterrupt  # stop here: only the time to resume is measured

    def trial_finished(self, *a):
        pass

    def note(self, *a):
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--out", default="bench/out/load")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "load.toml"
    # The budget counts single models; one synthetic trial in ten is an ensemble.
    singles = args.trials - args.trials // 10
    spec_path.write_text(SPEC.format(trials=singles))
    for f in out.glob("load.db*"):
        f.unlink()
    from trustbits.search.spec import load_spec

    spec = load_spec(spec_path)
    t0 = time.perf_counter()
    synthesize(spec, args.trials)
    make = time.perf_counter() - t0
    import optuna

    from trustbits.search.storage import locate, make_storage

    study = optuna.load_study(study_name="load", storage=make_storage(locate(spec), heartbeat=False))
    front = sorted(t.number for t in study.best_trials if "plan_z" in t.user_attrs)
    res = {
        "trials": len(study.trials),
        "front_size": len(study.best_trials),
        "synthesize_s": make,
        "pareto_table_s": timed([TRUSTBITS, "pareto", str(spec_path), "--no-plot"]),
        "pareto_with_plots_s": timed([TRUSTBITS, "pareto", str(spec_path)]),
        "export_s": timed([TRUSTBITS, "export", str(spec_path), "--trial", str(front[0]), "--format", "gptqmodel", "-o", str(out / "export")]),
        "resume_finished_s": timed([TRUSTBITS, "search", str(spec_path), "--no-progress", "--no-front"]),
    }
    # A resume with work left: in-process, from run_search to the first new trial's start.
    import dataclasses

    from trustbits.search.driver import run_search

    more = dataclasses.replace(spec, budget=dataclasses.replace(spec.budget, trials=singles + 1))
    clock = FirstTrialClock()
    try:
        run_search(more, view_factory=lambda *a: clock)
    except KeyboardInterrupt:
        pass
    res["resume_to_first_new_trial_s"] = clock.first
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
