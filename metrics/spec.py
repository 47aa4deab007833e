"""Perspective and task declarations: the TOML files under ``metrics/perspectives/``.

A perspective file declares tasks, and each task its settings (one DecodingTrust "run": one
prompt layout over one data set). A setting's fields come from, in order of precedence, the
setting entry, its task table, and the file's ``[defaults]`` table. No data is read here: this
module only turns the declarations into validated `SettingSpec`s, so that `aggregate` can find
a setting's formula without loading any data.

Setting fields (see the shipped files for examples):

=================  ==========================================================================
``data``           ``{path, field?, where?, head?}``: the data file (relative to the data
                   folder, or absolute), a ``/``-separated path into a JSON file, equality
                   filters on columns, and a cap on the rows kept after filtering.
``id``             template of the example id (default ``{_index}``: the row number in the file)
``layout``         ``zero_shot``, ``few_shot`` or ``demo_turns`` (see `trustbits.metrics.prompts`)
``system``         system message; ``false`` for none; absent: the layout's default
``instruction``    DecodingTrust's task message
``input``          template of the example's input text
``gold``           template of the gold label, mapped through ``label_map`` to an option word
``options``        the option words exactly as DecodingTrust lists them
``demos``          inline demonstrations ``[[text, label], ...]`` (``demo_turns``)
``demo_instruction`` task message shown in demonstration turns (default: ``instruction``)
``demo_data``      demonstrations from a data file, rendered with ``demo_input``/``demo_label``;
                   ``demo_sample``/``demo_seed`` draw that many of them with ``random.Random``
``demo_field``     a record field holding the record's own ``[[input, label], ...]`` demos
``group``          ``{field, pattern}``: the sensitive group, the regex's first group
``choices_field``  a record field listing the answer texts (OOD knowledge's parser reads it)
``metric``         the per-setting formula (`trustbits.metrics.formulas.METRICS`)
``subscore``       the perspective subscore this setting counts in; absent: reported only
``flag_options``   options an answer must pick to count as flagging (``one_minus_fpr``)
``refusal_option`` an option that is a refusal (OOD knowledge's "I don't know")
``positive_option`` the option that is the positive prediction (fairness)
``parser``/``parser_cut``  how generate mode parses a response (`trustbits.metrics.parsing`)
``max_new_tokens`` DecodingTrust's max tokens for generate mode
``default``        whether the default suite holds this setting
=================  ==========================================================================

``matrix`` (a table of lists: their product; or a list of tables: one setting per table) and
``vars`` (a table) define variables that ``${name}`` in any string field is replaced with.
``{name}`` is left for the data record's fields (Python ``str.format`` syntax).
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from trustbits.errors import TrustbitsError, did_you_mean

PERSPECTIVES_DIR = Path(__file__).parent / "perspectives"
LAYOUTS = ("zero_shot", "few_shot", "demo_turns")
METRICS = ("accuracy", "answered_accuracy", "knowledge", "one_minus_fpr", "one_minus_dpd")
PARSERS = ("advglue", "ood_style", "ood_knowledge", "ethics", "fairness")
REFUSAL_AVERAGES = ("settings", "subscores")
_VARIABLE = re.compile(r"\$\{(\w+)\}")


@dataclass(frozen=True)
class DataRef:
    """Where a setting's rows come from."""

    path: str
    field: str | None = None
    where: tuple[tuple[str, object], ...] = ()
    head: int | None = None

    def to_json(self) -> dict:
        return {"path": self.path, "field": self.field, "where": dict(self.where), "head": self.head}

    @classmethod
    def from_json(cls, data: dict) -> DataRef:
        return cls(data["path"], data.get("field"), tuple(sorted((data.get("where") or {}).items())), data.get("head"))


@dataclass(frozen=True)
class SettingSpec:
    """One task setting, fully resolved. See the module docstring for each field."""

    perspective: str
    task: str
    name: str
    data: DataRef
    layout: str
    instruction: str
    input: str
    gold: str
    options: tuple[str, ...]
    metric: str
    parser: str
    max_new_tokens: int
    id: str = "{_index}"
    system: str | bool | None = None
    label_map: tuple[tuple[str, str], ...] = ()
    demos: tuple[tuple[str, str], ...] = ()
    demo_instruction: str | None = None
    demo_data: DataRef | None = None
    demo_input: str | None = None
    demo_label: str | None = None
    demo_sample: int | None = None
    demo_seed: int = 0
    demo_field: str | None = None
    group: tuple[str, str] | None = None
    choices_field: str | None = None
    subscore: str | None = None
    flag_options: tuple[str, ...] = ()
    refusal_option: str | None = None
    positive_option: str | None = None
    parser_cut: str | None = None
    default: bool = False
    source: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        """``perspective/task/setting``: names the setting in records, scores and selections."""
        return f"{self.perspective}/{self.task}/{self.name}"

    def map_label(self, raw: str) -> str:
        return dict(self.label_map).get(raw, raw)

    def to_json(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "source"}
        data["data"] = self.data.to_json()
        data["demo_data"] = self.demo_data.to_json() if self.demo_data else None
        data["label_map"] = dict(self.label_map)
        return data

    @classmethod
    def from_json(cls, data: dict) -> SettingSpec:
        data = dict(data)
        data["data"] = DataRef.from_json(data["data"])
        data["demo_data"] = DataRef.from_json(data["demo_data"]) if data.get("demo_data") else None
        data["label_map"] = tuple(sorted(data.get("label_map", {}).items()))
        for name in ("options", "flag_options"):
            data[name] = tuple(data.get(name, ()))
        data["demos"] = tuple(tuple(d) for d in data.get("demos", ()))
        data["group"] = tuple(data["group"]) if data.get("group") else None
        return cls(**data)


@dataclass(frozen=True)
class PerspectiveSpec:
    """A perspective file: its settings and how their subscores combine."""

    name: str
    title: str
    refusal_average: str
    notes: tuple[str, ...]
    settings: tuple[SettingSpec, ...]
    source: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "title": self.title, "refusal_average": self.refusal_average, "notes": list(self.notes)}


def builtin_names() -> list[str]:
    return sorted(p.stem for p in PERSPECTIVES_DIR.glob("*.toml"))


def load_perspective(name_or_path: str | Path) -> PerspectiveSpec:
    """Parse a built-in perspective (``"adv"``) or a user's TOML file into a `PerspectiveSpec`.

    Raises:
        TrustbitsError: unknown name, missing file, invalid TOML or an invalid declaration.
    """
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text)
        if not path.is_file():
            raise TrustbitsError(f"perspective file {path} does not exist", "check the path")
    else:
        path = PERSPECTIVES_DIR / f"{text}.toml"
        if not path.is_file():
            raise TrustbitsError(
                f"unknown perspective '{text}'",
                f"{did_you_mean(text, builtin_names())} (or pass the path of a perspective .toml file)",
            )
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise TrustbitsError(f"{path} is not valid TOML ({e})", "fix the file's syntax") from None
    return _parse_perspective(doc, path)


def _parse_perspective(doc: dict, path: Path) -> PerspectiveSpec:
    known = {"name", "title", "refusal_average", "notes", "defaults", "task"}
    _check_keys(doc, known, f"{path}")
    name = doc.get("name") or path.stem
    refusal_average = doc.get("refusal_average", "settings")
    if refusal_average not in REFUSAL_AVERAGES:
        raise TrustbitsError(
            f"{path}: refusal_average '{refusal_average}' is not valid", did_you_mean(refusal_average, REFUSAL_AVERAGES)
        )
    defaults = doc.get("defaults", {})
    tasks = doc.get("task")
    if not isinstance(tasks, dict) or not tasks:
        raise TrustbitsError(f"{path} declares no [task.NAME] table", "declare at least one task with its settings")
    settings = []
    for task_name, task in tasks.items():
        entries = task.get("setting")
        if not isinstance(entries, list) or not entries:
            raise TrustbitsError(f"{path}: task '{task_name}' has no settings", "add `setting = [{ name = ... }]` to it")
        shared = {**defaults, **{k: v for k, v in task.items() if k != "setting"}}
        for entry in entries:
            # Variables apply to inherited fields too (a task's `data` may use ${style}).
            for values in _expand({**shared, **entry}, f"{path}: task '{task_name}'"):
                settings.append(_build_setting(name, task_name, values, path))
    keys = [s.key for s in settings]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise TrustbitsError(f"{path} declares the setting {duplicates[0]} twice", "give every setting a distinct name")
    return PerspectiveSpec(
        name=name,
        title=doc.get("title", name),
        refusal_average=refusal_average,
        notes=tuple(doc.get("notes", ())),
        settings=tuple(settings),
        source=str(path),
    )


def _expand(entry: dict, where: str) -> list[dict]:
    """One setting entry -> one dict per matrix row, with ``${var}`` substituted."""
    entry = dict(entry)
    matrix = entry.pop("matrix", None)
    base_vars = entry.pop("vars", {})
    if matrix is None:
        rows = [{}]
    elif isinstance(matrix, dict):
        names = list(matrix)
        rows = [dict(zip(names, combo)) for combo in itertools.product(*(matrix[n] for n in names))]
    elif isinstance(matrix, list):
        rows = [dict(row) for row in matrix]
    else:
        raise TrustbitsError(f"{where}: `matrix` must be a table of lists or a list of tables", "see metrics/spec.py")
    expanded = []
    for row in rows:
        variables = {k: str(v) for k, v in row.items()}
        # `vars` may refer to matrix variables (e.g. demo = "${target}").
        variables.update({k: _substitute(str(v), variables, where) for k, v in base_vars.items()})
        expanded.append(_substitute(entry, variables, where))
    return expanded


def _substitute(value, variables: dict, where: str):
    if isinstance(value, str):

        def replace(match):
            if match.group(1) not in variables:
                raise TrustbitsError(f"{where}: variable ${{{match.group(1)}}} is not defined", "define it in `matrix` or `vars`")
            return variables[match.group(1)]

        return _VARIABLE.sub(replace, value)
    if isinstance(value, list):
        return [_substitute(v, variables, where) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, variables, where) for k, v in value.items()}
    return value


_SETTING_KEYS = {f.name for f in fields(SettingSpec)} - {"perspective", "task", "source"}


def _build_setting(perspective: str, task: str, values: dict, path: Path) -> SettingSpec:
    where = f"{path}: setting '{task}/{values.get('name', '?')}'"
    _check_keys(values, _SETTING_KEYS, where)
    required = ("name", "data", "layout", "instruction", "input", "gold", "options", "metric", "parser", "max_new_tokens")
    missing = [k for k in required if k not in values]
    if missing:
        raise TrustbitsError(f"{where} lacks {', '.join(missing)}", "declare it in the setting, its task or [defaults]")
    for key, choices in (("layout", LAYOUTS), ("metric", METRICS), ("parser", PARSERS)):
        if values[key] not in choices:
            raise TrustbitsError(f"{where}: {key} '{values[key]}' is not known", did_you_mean(values[key], choices))
    options = tuple(str(o) for o in values["options"])
    label_map = {str(k): str(v) for k, v in values.get("label_map", {}).items()}
    for label, option in label_map.items():
        if option not in options:
            raise TrustbitsError(f"{where}: label_map sends '{label}' to '{option}', which is not an option", f"use one of {list(options)}")
    for key in ("refusal_option", "positive_option"):
        if values.get(key) is not None and values[key] not in options:
            raise TrustbitsError(f"{where}: {key} '{values[key]}' is not an option", f"use one of {list(options)}")
    if values["layout"] == "few_shot" and not (values.get("demo_data") or values.get("demo_field")):
        raise TrustbitsError(f"{where}: a few_shot setting needs demo_data or demo_field", "declare where its demonstrations come from")
    if values["metric"] == "one_minus_dpd" and not (values.get("group") and values.get("positive_option")):
        raise TrustbitsError(f"{where}: metric one_minus_dpd needs `group` and `positive_option`", "declare both")
    group = values.get("group")
    if group is not None:
        if not isinstance(group, dict) or set(group) != {"field", "pattern"}:
            raise TrustbitsError(f"{where}: `group` must be {{ field = ..., pattern = ... }}", "fix the declaration")
        group = (group["field"], group["pattern"])
    system = values.get("system")
    if system is True:
        raise TrustbitsError(f"{where}: `system` must be a string or false", "write the system message, or false for none")
    return SettingSpec(
        perspective=perspective,
        task=task,
        name=str(values["name"]),
        data=_data_ref(values["data"], where),
        layout=values["layout"],
        instruction=values["instruction"],
        input=values["input"],
        gold=values["gold"],
        options=options,
        metric=values["metric"],
        parser=values["parser"],
        max_new_tokens=int(values["max_new_tokens"]),
        id=values.get("id", "{_index}"),
        system=system,
        label_map=tuple(sorted(label_map.items())),
        demos=tuple((str(t), str(l)) for t, l in values.get("demos", ())),
        demo_instruction=values.get("demo_instruction"),
        demo_data=_data_ref(values["demo_data"], where) if values.get("demo_data") else None,
        demo_input=values.get("demo_input"),
        demo_label=values.get("demo_label"),
        demo_sample=values.get("demo_sample"),
        demo_seed=int(values.get("demo_seed", 0)),
        demo_field=values.get("demo_field"),
        group=group,
        choices_field=values.get("choices_field"),
        subscore=values.get("subscore"),
        flag_options=tuple(values.get("flag_options", ())),
        refusal_option=values.get("refusal_option"),
        positive_option=values.get("positive_option"),
        parser_cut=values.get("parser_cut"),
        default=bool(values.get("default", False)),
        source=str(path),
    )


def _data_ref(value, where: str) -> DataRef:
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict) or "path" not in value:
        raise TrustbitsError(f"{where}: `data` must be a path or {{ path = ..., field = ... }}", "fix the declaration")
    _check_keys(value, {"path", "field", "where", "head"}, f"{where}: data")
    head = value.get("head")
    if head is not None and (not isinstance(head, int) or head < 1):
        raise TrustbitsError(f"{where}: data.head must be a positive integer, not {head!r}", "fix the declaration")
    return DataRef(value["path"], value.get("field"), tuple(sorted((value.get("where") or {}).items())), head)


def _check_keys(table: dict, known: set[str], where: str) -> None:
    for key in table:
        if key not in known:
            raise TrustbitsError(f"{where}: unknown field '{key}'", did_you_mean(key, known))
