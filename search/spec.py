"""The study spec: a TOML file under `studies/` that declares one search.

Every default lives in the dataclasses below; `trustbits search` reads them and never
restates them. A spec is validated when it is read (unknown keys with "did you mean", wrong
types, values out of range: one sentence each) and fingerprinted: the study stores the
fingerprint of everything that changes results, and resuming with a changed spec is refused
with the names of the keys that changed (`--fork NEW` starts a new study instead). The trial
budget is not part of the fingerprint: raising it extends a study.

Example (`studies/smollm2-demo.toml`)::

    [model]
    name = "builtin:smollm2-135m-instruct"

    [eval]
    perspectives = ["adv", "ood", "ethics", "fairness"]
    limit = 6

    [search]
    objectives = ["trust", "memory", "latency"]
    bits = [3, 4, 8, 16]
    granularity = "block"
    block_size = 10

    [budget]
    trials = 14
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import tomllib

from trustbits.errors import TrustbitsError, did_you_mean
from trustbits.quant.builtin import DEFAULT_MODEL
from trustbits.quant.plan import BITS, GROUP_SIZES, KEEP_BITS, METHODS
from trustbits.search.schema import SpecError, from_dict, to_dict

PERSPECTIVES = ("adv", "ood", "ethics", "fairness")
MAXIMIZE = ("trust",) + PERSPECTIVES
MINIMIZE = ("memory", "latency")
OBJECTIVES = MAXIMIZE + MINIMIZE
GRANULARITIES = ("layer", "projection", "module", "block")
SAMPLERS = ("nsga2", "tpe", "gp", "random")
VOTES = ("hard", "soft")


@dataclass(frozen=True)
class ModelSection:
    name: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str = "auto"


@dataclass(frozen=True)
class EvalSection:
    """What each trial is scored on (the same examples for every trial)."""

    perspectives: tuple[str, ...] = PERSPECTIVES
    limit: int | None = 8  # examples per task setting; None = the whole default suite
    seed: int = 0
    # Cheap before expensive: score this fraction of every task first and stop a trial that
    # cannot reach the front even if it got every remaining example right.
    early_stop: bool = True
    first_fraction: float = 0.35
    batch_size: int | None = None


@dataclass(frozen=True)
class SearchSection:
    """The search space and objectives."""

    objectives: tuple[str, ...] = ("trust", "memory", "latency")
    bits: tuple[int, ...] = (3, 4, 8, KEEP_BITS)
    head_bits: tuple[int, ...] | None = None  # choices for the output head; default = bits
    methods: tuple[str, ...] = ("hqq",)
    group_sizes: tuple[int, ...] = (64,)
    granularity: str = "layer"
    block_size: int = 4  # layers per block when granularity = "block"


@dataclass(frozen=True)
class ConstraintsSection:
    max_memory_mb: float | None = None
    # Perspective (or "trust") -> how many points it may drop below the float model.
    max_drop: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EnsembleSection:
    """Precision ensembles: the same model at several precisions, voting (arXiv 2511.22483)."""

    enabled: bool = True
    min_size: int = 2
    max_size: int = 3
    vote: str = "hard"  # hard: majority, refusals dropped, tie to the highest precision; soft: mean probabilities
    per_trial: int = 2  # ensemble trials after each scored single trial (they cost milliseconds)
    pool: int = 8  # members are drawn from the best this-many scored single trials
    parallel: bool = False  # members run in parallel: latency is the slowest member, not the sum
    # The paper's ensembles: per method, the vote of its uniform plans at every quantized
    # bit-width of the space (e.g. 3/4/8), scored with each rule in `uniform_votes`.
    uniform_sets: bool = False
    uniform_votes: tuple[str, ...] = ("hard",)


@dataclass(frozen=True)
class SeedSection:
    """Reference points every study starts from (enqueued before the sampler's own trials)."""

    float_model: bool = True
    uniform: bool = True  # one uniform plan per bit-width in search.bits
    sensitivity: int = 2  # plans from a sensitivity-guided bit allocation, at this many budgets


@dataclass(frozen=True)
class SamplerSection:
    name: str = "nsga2"
    seed: int = 0
    population: int = 8  # NSGA-II population size


@dataclass(frozen=True)
class BudgetSection:
    trials: int = 20  # single-model trials (ensembles are extra)
    timeout_minutes: float | None = None


@dataclass(frozen=True)
class StudySection:
    name: str | None = None  # default: the spec file's stem
    storage: str | None = None  # default: sqlite:///<spec dir>/<name>.db


@dataclass(frozen=True)
class StudySpec:
    study: StudySection = field(default_factory=StudySection)
    model: ModelSection = field(default_factory=ModelSection)
    eval: EvalSection = field(default_factory=EvalSection)
    search: SearchSection = field(default_factory=SearchSection)
    constraints: ConstraintsSection = field(default_factory=ConstraintsSection)
    ensembles: EnsembleSection = field(default_factory=EnsembleSection)
    seeds: SeedSection = field(default_factory=SeedSection)
    sampler: SamplerSection = field(default_factory=SamplerSection)
    budget: BudgetSection = field(default_factory=BudgetSection)
    # Where the spec was read from (not part of the spec itself).
    path: Path | None = field(default=None, compare=False)

    # ---- derived ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.study.name or (self.path.stem if self.path else "study")

    @property
    def directions(self) -> list[str]:
        return ["maximize" if o in MAXIMIZE else "minimize" for o in self.search.objectives]

    @property
    def head_bits(self) -> tuple[int, ...]:
        return self.search.head_bits or self.search.bits

    def to_json(self) -> dict:
        data = to_dict(self)
        data.pop("path", None)
        return data

    def result_fingerprint_data(self) -> dict:
        """The parts that change results (everything but the budget and the storage)."""
        data = self.to_json()
        data.pop("budget")
        data["study"].pop("storage")
        return data

    def fingerprint(self) -> str:
        text = json.dumps(self.result_fingerprint_data(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_name(self, name: str) -> StudySpec:
        return replace(self, study=replace(self.study, name=name))


def _check(cond: bool, problem: str, fix: str) -> None:
    if not cond:
        raise SpecError(problem, fix)


def validate(spec: StudySpec) -> StudySpec:
    """Range and consistency checks the types cannot express."""
    e, s, c, ens = spec.eval, spec.search, spec.constraints, spec.ensembles
    for p in e.perspectives:
        _check(p in PERSPECTIVES, f"eval.perspectives: unknown perspective '{p}' ({did_you_mean(p, PERSPECTIVES)})", "use adv, ood, ethics, fairness")
    _check(len(e.perspectives) > 0, "eval.perspectives is empty", "name at least one of adv, ood, ethics, fairness")
    _check(e.limit is None or e.limit >= 2, f"eval.limit = {e.limit} is too small", "use at least 2 examples per task setting (or omit it for the whole suite)")
    _check(0.0 < e.first_fraction < 1.0, f"eval.first_fraction = {e.first_fraction} is not between 0 and 1", "use e.g. 0.35")
    for o in s.objectives:
        _check(o in OBJECTIVES, f"search.objectives: unknown objective '{o}' ({did_you_mean(o, OBJECTIVES)})", f"use any of {', '.join(OBJECTIVES)}")
    _check(len(set(s.objectives)) == len(s.objectives), "search.objectives lists an objective twice", "list each once")
    _check(any(o in MAXIMIZE for o in s.objectives), "search.objectives has no trust objective", "add 'trust' or a perspective (adv, ood, ethics, fairness)")
    for o in s.objectives:
        _check(o not in PERSPECTIVES or o in e.perspectives, f"objective '{o}' is not among eval.perspectives", f"add '{o}' to eval.perspectives")
    for b in s.bits + (s.head_bits or ()):
        _check(b in BITS + (KEEP_BITS,), f"search.bits: bit-width {b} is out of range", f"use any of {', '.join(map(str, BITS + (KEEP_BITS,)))} (16 keeps a module unquantized)")
    _check(len(s.bits) >= 1, "search.bits is empty", "give at least one bit-width")
    for g in s.group_sizes:
        _check(g in GROUP_SIZES, f"search.group_sizes: group size {g} is out of range", f"use any of {', '.join(map(str, GROUP_SIZES))}")
    for m in s.methods:
        _check(m in METHODS, f"search.methods: unknown method '{m}' ({did_you_mean(m, METHODS)})", f"use any of {', '.join(METHODS)}")
    _check(s.granularity in GRANULARITIES, f"search.granularity: unknown granularity '{s.granularity}' ({did_you_mean(s.granularity, GRANULARITIES)})", f"use one of {', '.join(GRANULARITIES)}")
    _check(s.block_size >= 1, f"search.block_size = {s.block_size} must be at least 1", "use e.g. 4")
    _check(c.max_memory_mb is None or c.max_memory_mb > 0, f"constraints.max_memory_mb = {c.max_memory_mb} must be positive", "give a budget in MB")
    for k, v in c.max_drop.items():
        _check(k in MAXIMIZE, f"constraints.max_drop: unknown perspective '{k}' ({did_you_mean(k, MAXIMIZE)})", f"use any of {', '.join(MAXIMIZE)}")
        _check(k == "trust" or k in e.perspectives, f"constraints.max_drop.{k}: '{k}' is not among eval.perspectives", f"add '{k}' to eval.perspectives")
        _check(v >= 0, f"constraints.max_drop.{k} = {v} is negative", "give how many points it may drop, e.g. 2.0")
    for v in (ens.vote,) + ens.uniform_votes:
        _check(v in VOTES, f"ensembles: unknown vote '{v}' ({did_you_mean(v, VOTES)})", "use hard or soft")
    _check(2 <= ens.min_size <= ens.max_size, f"ensembles: min_size {ens.min_size} and max_size {ens.max_size} must satisfy 2 <= min_size <= max_size", "e.g. min_size = 2, max_size = 3")
    _check(ens.pool >= ens.max_size, f"ensembles.pool = {ens.pool} is smaller than max_size = {ens.max_size}", "make the pool at least as large as the largest ensemble")
    _check(ens.per_trial >= 0, f"ensembles.per_trial = {ens.per_trial} is negative", "use 0 or more")
    _check(spec.sampler.name in SAMPLERS, f"sampler.name: unknown sampler '{spec.sampler.name}' ({did_you_mean(spec.sampler.name, SAMPLERS)})", f"use one of {', '.join(SAMPLERS)}")
    _check(spec.sampler.population >= 2, f"sampler.population = {spec.sampler.population} is too small", "use at least 2")
    _check(spec.budget.trials >= 1, f"budget.trials = {spec.budget.trials} must be at least 1", "give a trial budget")
    _check(spec.seeds.sensitivity >= 0, f"seeds.sensitivity = {spec.seeds.sensitivity} is negative", "use 0 to turn it off")
    return spec


def parse_spec(data: dict, path: Path | None = None) -> StudySpec:
    """A validated spec from TOML data."""
    spec = from_dict(StudySpec, {k: v for k, v in data.items()})
    return validate(replace(spec, path=path))


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a spec file.

    Raises:
        TrustbitsError: missing file, TOML syntax error, unknown key, wrong type, out of range.
    """
    path = Path(path)
    if not path.is_file():
        raise TrustbitsError(f"study spec '{path}' does not exist", "pass the path of a .toml spec, e.g. studies/smollm2-demo.toml")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"study spec '{path}' is not valid TOML ({e})", "fix the syntax at that line") from e
    if "path" in data:
        raise SpecError("unknown key 'path'", "remove it")
    return parse_spec(data, path.resolve())


def diff_fingerprint_data(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two `result_fingerprint_data` dicts."""
    keys = sorted(set(old) | set(new))
    changed = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        where = f"{prefix}{k}"
        if isinstance(a, dict) and isinstance(b, dict):
            changed += diff_fingerprint_data(a, b, where + ".")
        elif a != b:
            changed.append(where)
    return changed
