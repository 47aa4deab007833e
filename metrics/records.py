"""Per-example records: what one model answered on one example of one task setting.

Records are the unit everything else is computed from: `aggregate` turns them into scores,
`vote` combines the records of several ensemble members, and the search stores them per trial
so that ensembles can be scored later without running any model. They must therefore be
complete and stable: the key ``(perspective, task, setting, example_id)`` names the same
example for every model, and `gold`/`group` travel with the answer.

Conventions:

* `gold` and `pred` are option words exactly as the task lists them (``"positive"``,
  ``"not wrong"``, ``"3"``). `pred` is None when the model gave no valid answer (DecodingTrust's
  -1: an unparsable or refused generation).
* `refused` follows the perspective's own definition of a refusal (see the task files): in
  loglik mode it is True only when the model picks a declared refusal option (OOD knowledge's
  ``4``, "I don't know"); in generate mode it is DecodingTrust's parse result.
* `option_logprobs` maps every option to the summed log-probability of its tokens (loglik
  mode); it is empty for generate-mode records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trustbits.errors import TrustbitsError
from trustbits.metrics.defaults import SCHEMA_VERSION

_FIELDS = ("perspective", "task", "setting", "example_id", "gold", "pred", "option_logprobs", "group", "refused")


@dataclass
class Record:
    """One model's answer on one example. See the module docstring for the conventions."""

    perspective: str
    task: str
    setting: str
    example_id: str
    gold: str
    pred: str | None
    option_logprobs: dict[str, float] = field(default_factory=dict)
    group: str | None = None
    refused: bool = False
    # The generated text (generate mode only); kept so a certification run can be audited.
    response: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identifies the example across models: (perspective, task, setting, example_id)."""
        return (self.perspective, self.task, self.setting, self.example_id)

    @property
    def setting_key(self) -> str:
        return f"{self.perspective}/{self.task}/{self.setting}"

    @property
    def correct(self) -> bool:
        return self.pred is not None and self.pred == self.gold

    def to_json(self) -> dict:
        data = asdict(self)
        if data["response"] is None:
            del data["response"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> Record:
        missing = [name for name in _FIELDS if name not in data]
        if missing:
            raise TrustbitsError(
                f"a record lacks the field(s) {', '.join(missing)}",
                "records must come from `trustbits.metrics.score` or `trustbits eval --dump`",
            )
        return cls(
            perspective=str(data["perspective"]),
            task=str(data["task"]),
            setting=str(data["setting"]),
            example_id=str(data["example_id"]),
            gold=str(data["gold"]),
            pred=None if data["pred"] is None else str(data["pred"]),
            option_logprobs={str(k): float(v) for k, v in (data["option_logprobs"] or {}).items()},
            group=None if data["group"] is None else str(data["group"]),
            refused=bool(data["refused"]),
            response=data.get("response"),
        )


def write_jsonl(records: Iterable[Record], path: str | Path) -> Path:
    """Write records as JSON lines, after one header line ``{"trustbits_records": VERSION}``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.write(json.dumps({"trustbits_records": SCHEMA_VERSION}) + "\n")
        for record in records:
            f.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[Record]:
    """Read records written by `write_jsonl`.

    Raises:
        TrustbitsError: the file is missing, is not JSON lines, or holds another version.
    """
    path = Path(path)
    if not path.is_file():
        raise TrustbitsError(f"records file {path} does not exist", "pass the file `trustbits eval --dump` wrote")
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as e:
                raise TrustbitsError(
                    f"line {number} of {path} is not JSON ({e.msg})", "rewrite the file with `trustbits eval --dump`"
                ) from None
            if number == 1 and isinstance(data, dict) and "trustbits_records" in data:
                if data["trustbits_records"] != SCHEMA_VERSION:
                    raise TrustbitsError(
                        f"{path} holds records of format version {data['trustbits_records']}, this trustbits reads {SCHEMA_VERSION}",
                        "score the model again with this version",
                    )
                continue
            records.append(Record.from_json(data))
    return records
