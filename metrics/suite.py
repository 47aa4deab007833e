"""The evaluation suite: every example of every selected task setting, as chat messages.

A `Suite` is pure data (no model, no tokenizer): settings, each with its shared messages and
its examples (id, own messages, gold option, group). It is built once from the perspective
declarations and the data files, is identical for every model, serializes to JSON, and has a
fingerprint that changes whenever an example or a prompt changes.

Example order and subsets. Within a setting, examples are put in a seeded, label-stratified
order: each stratum (gold label, and group where the task has one) is shuffled, and the strata
are interleaved in proportion to their sizes. Any prefix of that order is therefore itself
stratified, so `limit=N` keeps the first N, and `head`/`tail` cut the same order for the
search's early stop. The shuffle is seeded by `seed` and by the setting's (id, gold, group)
list, not by its name: settings over the same examples (the 10 OOD styles, the 10 ethics
jailbreak/evasive variants) keep the same examples, which pairs their comparisons.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from trustbits.errors import TrustbitsError
from trustbits.metrics import defaults
from trustbits.metrics.prompts import Message, example_messages, shared_messages
from trustbits.metrics.sources import TableLoader
from trustbits.metrics.spec import PerspectiveSpec, SettingSpec, load_perspective


@dataclass(frozen=True)
class Example:
    """One example of a setting: its own messages (after the setting's shared ones)."""

    example_id: str
    messages: tuple[Message, ...]
    gold: str
    group: str | None = None
    # The gold answer's text, where a parser needs it (OOD knowledge).
    gold_text: str | None = None

    def to_json(self) -> list:
        return [self.example_id, [list(m) for m in self.messages], self.gold, self.group, self.gold_text]

    @classmethod
    def from_json(cls, data: list) -> Example:
        return cls(data[0], tuple(tuple(m) for m in data[1]), data[2], data[3], data[4])


@dataclass(frozen=True)
class Setting:
    """A task setting with its examples, in the stratified order (see the module docstring)."""

    spec: SettingSpec
    shared: tuple[Message, ...]
    examples: tuple[Example, ...]

    @property
    def key(self) -> str:
        return self.spec.key

    def messages(self, example: Example) -> list[Message]:
        return list(self.shared) + list(example.messages)

    def to_json(self) -> dict:
        return {"spec": self.spec.to_json(), "shared": [list(m) for m in self.shared], "examples": [e.to_json() for e in self.examples]}

    @classmethod
    def from_json(cls, data: dict) -> Setting:
        return cls(SettingSpec.from_json(data["spec"]), tuple(tuple(m) for m in data["shared"]), tuple(Example.from_json(e) for e in data["examples"]))


@dataclass(frozen=True)
class Request:
    """One example, flattened with its setting: what a model is asked."""

    setting: Setting
    example: Example

    @property
    def messages(self) -> list[Message]:
        return self.setting.messages(self.example)

    @property
    def options(self) -> tuple[str, ...]:
        return self.setting.spec.options


class Suite:
    """Settings and their examples. Iterating yields `Setting`s; `requests()` flattens them."""

    def __init__(self, settings: Iterable[Setting], perspectives: Iterable[PerspectiveSpec]):
        self.settings: tuple[Setting, ...] = tuple(settings)
        self.perspectives: dict[str, PerspectiveSpec] = {p.name: p for p in perspectives}
        self._fingerprint: str | None = None
        # Tokenized requests per tokenizer (see trustbits.metrics.encoding), filled lazily.
        self.token_cache: dict = {}

    def __iter__(self) -> Iterator[Setting]:
        return iter(self.settings)

    def __len__(self) -> int:
        """The number of examples over all settings."""
        return sum(len(s.examples) for s in self.settings)

    def requests(self) -> Iterator[Request]:
        for setting in self.settings:
            for example in setting.examples:
                yield Request(setting, example)

    @property
    def notes(self) -> list[str]:
        """The recorded choices and deviations of the perspectives in the suite."""
        return [note for name in self.perspective_names for note in self.perspectives[name].notes]

    @property
    def perspective_names(self) -> list[str]:
        seen = dict.fromkeys(s.spec.perspective for s in self.settings)
        return list(seen)

    def spec_of(self, setting_key: str) -> SettingSpec | None:
        for setting in self.settings:
            if setting.key == setting_key:
                return setting.spec
        return None

    # --- slices for early stopping --------------------------------------------------------
    def head(self, part: float | int) -> Suite:
        """The first `part` examples of every setting (an int), or that fraction of each."""
        return self._slice(lambda n: (0, _count(part, n)))

    def tail(self, part: float | int) -> Suite:
        """What `head(part)` leaves: together they hold every example exactly once."""
        return self._slice(lambda n: (_count(part, n), n))

    def split(self, k: int) -> list[Suite]:
        """`k` consecutive parts of every setting (sizes differ by at most one)."""
        if not isinstance(k, int) or k < 1:
            raise TrustbitsError(f"cannot split a suite into {k!r} parts", "pass a positive integer")
        return [self._slice(lambda n, i=i: (i * n // k, (i + 1) * n // k)) for i in range(k)]

    def select(self, *, perspective: str | None = None, task: str | None = None) -> Suite:
        """The settings of one perspective and/or task (the CLI shows one bar per task)."""
        kept = [s for s in self.settings if (perspective is None or s.spec.perspective == perspective) and (task is None or s.spec.task == task)]
        return self._derived(kept)

    def _slice(self, bounds) -> Suite:
        kept = []
        for s in self.settings:
            lo, hi = bounds(len(s.examples))
            kept.append(replace(s, examples=s.examples[lo:hi]))
        return self._derived(kept)

    def _derived(self, settings) -> Suite:
        derived = Suite(settings, self.perspectives.values())
        derived.token_cache = self.token_cache  # same prompts, same tokens: share the work
        return derived

    # --- identity -------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "trustbits_suite": defaults.SCHEMA_VERSION,
            "perspectives": [p.to_json() for p in self.perspectives.values()],
            "settings": [s.to_json() for s in self.settings],
        }

    @classmethod
    def from_json(cls, data: dict) -> Suite:
        if data.get("trustbits_suite") != defaults.SCHEMA_VERSION:
            raise TrustbitsError("this suite was saved by another trustbits version", "build it again with build_suite")
        settings = [Setting.from_json(s) for s in data["settings"]]
        perspectives = []
        for p in data["perspectives"]:
            own = tuple(s.spec for s in settings if s.spec.perspective == p["name"])
            perspectives.append(PerspectiveSpec(p["name"], p["title"], p["refusal_average"], tuple(p["notes"]), own))
        return cls(settings, perspectives)

    def fingerprint(self) -> str:
        """A short hash of every prompt, option, gold label and formula in the suite."""
        if self._fingerprint is None:
            text = json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False)
            self._fingerprint = "suite-" + hashlib.sha256(text.encode()).hexdigest()[:16]
        return self._fingerprint


def _count(part: float | int, n: int) -> int:
    if isinstance(part, bool) or not isinstance(part, (int, float)) or part < 0 or (isinstance(part, float) and part > 1):
        raise TrustbitsError(f"cannot take {part!r} of a suite", "pass a count (int >= 0) or a fraction (float in [0, 1])")
    return min(n, part) if isinstance(part, int) else math.ceil(part * n)


def build_suite(
    perspectives: Iterable[str] = defaults.PERSPECTIVES,
    *,
    limit: int | None = None,
    seed: int = defaults.SUBSET_SEED,
    settings: str | Iterable[str] = defaults.SETTINGS,
    data_dir=None,
) -> Suite:
    """Build the suite of `perspectives` (see the package docstring for the contract).

    Args:
        perspectives: built-in names (``adv``, ``ood``, ``ethics``, ``fairness``) or paths of
            perspective .toml files.
        limit: at most this many examples per setting (label-stratified, identical across
            models); None keeps every example.
        seed: seed of the per-setting example order that `limit`, `head` and `tail` cut.
        settings: ``"default"``, ``"all"``, or glob patterns over ``task/setting`` or
            ``perspective/task/setting`` (``"style/*"``, ``"ood/knowledge/*"``).
        data_dir: where relative data paths point (default: the shipped data).

    Raises:
        TrustbitsError: unknown perspective, bad limit, no setting selected, a missing or
            malformed data file, a template naming a field the data lacks.
    """
    if isinstance(perspectives, str):
        perspectives = [p.strip() for p in perspectives.split(",") if p.strip()]
    perspectives = list(perspectives)
    if not perspectives:
        raise TrustbitsError("no perspective was given", "pass at least one of adv, ood, ethics, fairness")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise TrustbitsError(f"limit must be a positive integer, not {limit!r}", "pass e.g. limit=50, or None for every example")
    specs = [load_perspective(p) for p in perspectives]
    loader = TableLoader(data_dir)
    built = []
    for perspective in specs:
        for spec in perspective.settings:
            if _selected(spec, settings):
                built.append(_build_setting(spec, loader, limit, seed))
    if not built:
        raise TrustbitsError(f"the selection {settings!r} matches no setting", "use 'default', 'all' or patterns like 'style/*'")
    return Suite(built, specs)


def _selected(spec: SettingSpec, settings) -> bool:
    if settings == "default":
        return spec.default
    if settings == "all":
        return True
    patterns = [settings] if isinstance(settings, str) else list(settings)
    names = (f"{spec.task}/{spec.name}", spec.key)
    return any(fnmatchcase(name, pattern) for pattern in patterns for name in names)


def _build_setting(spec: SettingSpec, loader: TableLoader, limit: int | None, seed: int) -> Setting:
    where = f"setting {spec.key} ({spec.source})"
    rows = loader.rows(spec.data, where)
    if not rows:
        raise TrustbitsError(f"{where}: its data holds no rows after filtering", "check `data.where` and the file")
    shared_demos = list(spec.demos) + _data_demos(spec, loader, where)
    shared = tuple(shared_messages(spec, shared_demos))
    examples = [_example(spec, row, where) for row in rows]
    ids = [e.example_id for e in examples]
    if len(set(ids)) != len(ids):
        raise TrustbitsError(f"{where}: example ids from '{spec.id}' are not unique", "use an id template that names each row once")
    ordered = [examples[i] for i in stratified_order([(e.example_id, e.gold, e.group) for e in examples], seed)]
    return Setting(spec, shared, tuple(ordered[:limit] if limit else ordered))


def _example(spec: SettingSpec, row: dict, where: str) -> Example:
    raw_gold = render(spec.gold, row, where)
    gold = spec.map_label(raw_gold)
    if gold not in spec.options:
        raise TrustbitsError(f"{where}: row {row['_index']} has gold label '{raw_gold}', which maps to no option", f"map it to one of {list(spec.options)} in label_map")
    own_demos = []
    if spec.demo_field:
        for pair in row.get(spec.demo_field) or []:
            own_demos.append((str(pair[0]), spec.map_label(str(pair[1]))))
    group = None
    if spec.group:
        field, pattern = spec.group
        match = re.search(pattern, str(row.get(field, "")))
        if not match:
            raise TrustbitsError(f"{where}: row {row['_index']} has no group matching '{pattern}' in '{field}'", "fix `group` or the data")
        group = match.group(1)
    gold_text = None
    if spec.choices_field:
        choices = row.get(spec.choices_field) or []
        index = spec.options.index(gold)
        gold_text = str(choices[index]) if index < len(choices) else None
    messages = example_messages(spec, render(spec.input, row, where), own_demos)
    return Example(render(spec.id, row, where), tuple(messages), gold, group, gold_text)


def _data_demos(spec: SettingSpec, loader: TableLoader, where: str) -> list[tuple[str, str]]:
    if not spec.demo_data:
        return []
    rows = loader.rows(spec.demo_data, where + " demonstrations")
    if spec.demo_sample:
        if spec.demo_sample > len(rows):
            raise TrustbitsError(f"{where}: demo_sample {spec.demo_sample} exceeds the {len(rows)} demonstration rows", "lower demo_sample")
        # As DecodingTrust: Python's random.sample over the rows in file order.
        rows = random.Random(spec.demo_seed).sample(rows, spec.demo_sample)
    if not spec.demo_input or not spec.demo_label:
        raise TrustbitsError(f"{where}: demo_data needs demo_input and demo_label templates", "declare both")
    return [(render(spec.demo_input, r, where), spec.map_label(render(spec.demo_label, r, where))) for r in rows]


def render(template: str, row: dict, where: str) -> str:
    """`str.format` a template with a data row; a missing field is the user's error."""
    try:
        return template.format_map(row)
    except KeyError as e:
        fields = ", ".join(k for k in row if k != "_index")
        raise TrustbitsError(f"{where}: template {template!r} uses field {e} which the data lacks", f"use one of: {fields}") from None
    except (IndexError, ValueError, AttributeError, TypeError) as e:
        raise TrustbitsError(f"{where}: template {template!r} does not fit the data ({e})", "fix the template") from None


def stratified_order(items: list[tuple[str, str, str | None]], seed: int) -> list[int]:
    """Indices of `items` ((id, gold, group) triples) in the seeded, stratified order.

    Each stratum is shuffled; element r of a stratum of size m gets the key (r + 0.5) / m, and
    sorting by key interleaves the strata in proportion to their sizes.
    """
    digest = hashlib.sha256(json.dumps([seed, items]).encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    strata: dict[tuple, list[int]] = {}
    for i, (_, gold, group) in enumerate(items):
        strata.setdefault((gold, group), []).append(i)
    keyed = []
    for s, (stratum, members) in enumerate(sorted(strata.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))):
        rng.shuffle(members)
        keyed += [((r + 0.5) / len(members), s, i) for r, i in enumerate(members)]
    return [i for _, _, i in sorted(keyed)]
