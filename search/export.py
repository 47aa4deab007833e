"""Export a trial of a study in the formats deployments read.

    json           plan.json: the plan, its scores with intervals, and provenance
    hqq            hqq_config.json: HQQ's per-module quantization parameters
    gptqmodel      quantize_config.json: a GPTQModel QuantizeConfig with a per-module `dynamic` map
    llmcompressor  recipe.yaml: regex config groups for vLLM's compressed-tensors
    llamacpp       tensor-types.txt: llama-quantize's --tensor-type-file (GGUF tensor names)

An ensemble trial exports `ensemble.json` (members, vote rule, tie-break) and each member's
files in `member-<trial>/`. Every format is written from the plan stored on the trial
(never re-derived from parameters).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from trustbits import __version__
from trustbits.errors import TrustbitsError, did_you_mean
from trustbits.quant.plan import Plan

FORMATS = ("json", "hqq", "gptqmodel", "llmcompressor", "llamacpp")
# HF Llama-family module suffix -> GGUF tensor name (llama.cpp's convert_hf_to_gguf mapping).
_GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
# Weight bits -> the llama.cpp type of at least that precision.
_GGUF_TYPES = {2: "q2_k", 3: "q3_k", 4: "q4_k", 8: "q8_0", 16: "f16"}


def _exact(name: str) -> str:
    return "^" + re.escape(name) + "$"


def _by_spec(plan: Plan) -> dict:
    groups = defaultdict(list)
    for name, spec in plan.modules.items():
        groups[spec].append(name)
    return groups


def plan_document(plan: Plan, provenance: dict) -> dict:
    return plan.to_json() | {"provenance": provenance}


def hqq_config(plan: Plan) -> dict:
    return {
        "format": "hqq per-module quant_config (hqq.core.quantize.BaseQuantizeConfig arguments)",
        "modules": {name: (None if s is None else {"nbits": s.bits, "group_size": s.group_size, "axis": 1, "method": s.method}) for name, s in plan.modules.items()},
        "skip_modules": [n for n, s in plan.modules.items() if s is None],
    }


def gptqmodel_config(plan: Plan) -> dict:
    """QuantizeConfig fields: the most common (bits, group) as defaults, every other module a
    `+:` rule and every kept module a `-:` (skip) rule, as GPTQModel's `dynamic` reads them."""
    quantized = [s for s in plan.modules.values() if s is not None]
    if not quantized:
        raise TrustbitsError("the float model has nothing to export as a GPTQ config", "export a quantized trial")
    counts = defaultdict(int)
    for s in quantized:
        counts[(s.bits, s.group_size)] += 1
    bits, group = max(counts, key=counts.get)
    dynamic = {}
    for name, s in plan.modules.items():
        if s is None:
            dynamic["-:" + _exact(name)] = {}
        elif (s.bits, s.group_size) != (bits, group):
            dynamic["+:" + _exact(name)] = {"bits": s.bits, "group_size": s.group_size}
    return {"bits": bits, "group_size": group, "sym": True, "desc_act": False, "dynamic": dynamic}


def llmcompressor_recipe(plan: Plan) -> str:
    """A recipe YAML with one config group per (bits, group size), modules as exact regexes."""
    import yaml

    modifier = "GPTQModifier" if any(s and s.method == "gptq" for s in plan.modules.values()) else "QuantizationModifier"
    groups = {}
    for spec, names in sorted(_by_spec(plan).items(), key=lambda kv: (kv[0] is None, kv[0] and (kv[0].bits, kv[0].group_size))):
        if spec is None:
            continue
        key = f"w{spec.bits}_g{spec.group_size}"
        group = groups.setdefault(key, {"targets": [], "weights": {"num_bits": spec.bits, "type": "int", "symmetric": True, "strategy": "group", "group_size": spec.group_size}})
        group["targets"] += ["re:" + _exact(n) for n in names]
    ignore = [n for n, s in plan.modules.items() if s is None]
    recipe = {"quant_stage": {"quant_modifiers": {modifier: {"ignore": ignore, "config_groups": groups}}}}
    return yaml.safe_dump(recipe, sort_keys=False, width=1000)


def gguf_tensor_name(module: str) -> str | None:
    if module == "lm_head":
        return "output"
    m = re.match(r"^model\.layers\.(\d+)\.(.+)$", module)
    if m and m.group(2) in _GGUF_NAMES:
        return f"blk.{m.group(1)}.{_GGUF_NAMES[m.group(2)]}"
    return None


def llamacpp_tensor_types(plan: Plan) -> str:
    lines = []
    for name, s in plan.modules.items():
        gguf = gguf_tensor_name(name)
        if gguf is None:
            raise TrustbitsError(f"module '{name}' has no known GGUF tensor name", "the llamacpp format covers Llama-family models only; export json or gptqmodel")
        lines.append(f"{re.escape(gguf)}={_GGUF_TYPES[16 if s is None else s.bits]}")
    return "\n".join(lines) + "\n"


def write_plan_formats(plan: Plan, fmt: str, out: Path, provenance: dict) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if fmt == "json":
        p = out / "plan.json"
        p.write_text(json.dumps(plan_document(plan, provenance), indent=1) + "\n")
        written.append(p)
    elif fmt == "hqq":
        p = out / "hqq_config.json"
        p.write_text(json.dumps(hqq_config(plan), indent=1) + "\n")
        written.append(p)
    elif fmt == "gptqmodel":
        p = out / "quantize_config.json"
        p.write_text(json.dumps(gptqmodel_config(plan), indent=1) + "\n")
        written.append(p)
    elif fmt == "llmcompressor":
        p = out / "recipe.yaml"
        p.write_text(llmcompressor_recipe(plan))
        written.append(p)
    elif fmt == "llamacpp":
        p = out / "tensor-types.txt"
        p.write_text(llamacpp_tensor_types(plan))
        written.append(p)
    if fmt != "json":  # the plan itself always travels with a library config
        p = out / "plan.json"
        p.write_text(json.dumps(plan_document(plan, provenance), indent=1) + "\n")
        written.append(p)
    return written


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise TrustbitsError(f"unknown export format '{fmt}' ({did_you_mean(fmt, FORMATS)})", f"use one of {', '.join(FORMATS)}")


def provenance_of(study, trial) -> dict:
    from trustbits.search.storage import FINGERPRINT_ATTR
    from trustbits.search.trial_attrs import trial_scores

    return {
        "trustbits_version": __version__,
        "study": study.study_name,
        "spec_fingerprint": study.user_attrs.get(FINGERPRINT_ATTR),
        "trial": trial.number,
        "label": trial.user_attrs.get("label"),
        "objectives": dict(zip(study.user_attrs["trustbits:spec"]["search"]["objectives"], trial.values or [])),
        "scores": trial.user_attrs.get("flat"),
        "scores_detail": trial_scores(trial),
        "memory_bytes": trial.user_attrs.get("memory_bytes"),
        "latency": trial.user_attrs.get("latency"),
        "eval": study.user_attrs["trustbits:spec"]["eval"],
    }


def export_trial(study, number: int, fmt: str, out: str | Path, *, allow_off_front: bool = False) -> list[Path]:
    """Write trial `number` of `study` as `fmt` into `out`.

    Raises:
        TrustbitsError: unknown format, no such trial, a trial that is not complete, or not on
            the front (unless `allow_off_front`).
    """
    from optuna.trial import TrialState

    from trustbits.search.sampler import is_ensemble
    from trustbits.search.trial_attrs import trial_plan

    check_format(fmt)
    out = Path(out)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise TrustbitsError(f"study '{study.study_name}' has no trial {number} (it has trials 0-{max(trials, default=-1)})", "pick a trial number from `trustbits pareto`")
    trial = trials[number]
    if trial.state != TrialState.COMPLETE:
        reason = trial.user_attrs.get("stop_reason") or trial.user_attrs.get("fail_reason") or trial.state.name.lower()
        raise TrustbitsError(f"trial {number} is not complete ({reason})", "pick a complete trial from `trustbits pareto`")
    front = {t.number for t in study.best_trials}
    if number not in front and not allow_off_front:
        raise TrustbitsError(f"trial {number} is not on the Pareto front (front: {', '.join(f'#{n}' for n in sorted(front))})", "pick a front trial, or pass --allow-off-front to export it anyway")
    provenance = provenance_of(study, trial)
    if not is_ensemble(trial):
        return write_plan_formats(trial_plan(trial), fmt, out, provenance)
    written = []
    members = trial.user_attrs["members"]
    for n in members:
        member = trials[n]
        member_plan = trial_plan(member)
        # A float member is the original model: its plan is all it needs.
        member_fmt = "json" if all(s is None for s in member_plan.modules.values()) else fmt
        written += write_plan_formats(member_plan, member_fmt, out / f"member-{n}", provenance_of(study, member))
    manifest = {
        "version": 1,
        "kind": "precision-ensemble",
        "members": [{"trial": n, "folder": f"member-{n}", "avg_bits": trials[n].user_attrs.get("avg_bits"), "memory_bytes": trials[n].user_attrs.get("memory_bytes")} for n in members],
        "vote": trial.user_attrs.get("vote", "hard"),
        "rule": "majority over valid answers; refusals and invalid answers dropped; a tie goes to the member with the highest mean bits"
        if trial.user_attrs.get("vote", "hard") == "hard"
        else "argmax of the members' averaged option probabilities",
        "provenance": provenance,
    }
    p = out / "ensemble.json"
    out.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(manifest, indent=1) + "\n")
    return written + [p]
