"""`Scores`: what `aggregate` returns; JSON round-trip with a version field.

All numbers are on DecodingTrust's 0-100 scale. Every score and subscore carries a 95%
bootstrap interval (`Interval`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trustbits.errors import TrustbitsError
from trustbits.metrics.defaults import SCHEMA_VERSION


@dataclass
class Interval:
    """A point estimate with its bootstrap interval [low, high]."""

    value: float
    low: float
    high: float

    def to_json(self) -> list[float]:
        return [self.value, self.low, self.high]

    @classmethod
    def from_json(cls, data) -> Interval:
        return cls(*map(float, data))


@dataclass
class PerspectiveScore:
    """One perspective's result.

    Attributes:
        score: 100 x mean of the subscores (None when no setting of the perspective counts).
        refusal_rate: DecodingTrust's refusal rate of the perspective, in percent.
        subscores: the subscores the score averages (e.g. ``sst2``, ``style``, ``jailbreak``).
        reported: other metrics DecodingTrust reports (fairness ``accuracy``, ``dpd``,
            ``eod``; knowledge ``acc``, ``macc``; ethics ``fpr``), averaged over settings.
        settings: per setting key, its point statistics (percent) and ``n`` (examples).
    """

    name: str
    title: str
    score: Interval | None
    refusal_rate: float | None
    subscores: dict[str, Interval] = field(default_factory=dict)
    reported: dict[str, Interval] = field(default_factory=dict)
    settings: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(sum(s["n"] for s in self.settings.values()))

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "score": self.score.to_json() if self.score else None,
            "refusal_rate": self.refusal_rate,
            "subscores": {k: v.to_json() for k, v in self.subscores.items()},
            "reported": {k: v.to_json() for k, v in self.reported.items()},
            "settings": self.settings,
        }

    @classmethod
    def from_json(cls, data: dict) -> PerspectiveScore:
        return cls(
            name=data["name"],
            title=data["title"],
            score=Interval.from_json(data["score"]) if data["score"] else None,
            refusal_rate=data["refusal_rate"],
            subscores={k: Interval.from_json(v) for k, v in data["subscores"].items()},
            reported={k: Interval.from_json(v) for k, v in data["reported"].items()},
            settings=data["settings"],
        )


@dataclass
class Scores:
    """Scores of the perspectives present, plus `trust`, their mean."""

    perspectives: dict[str, PerspectiveScore]
    trust: Interval | None
    metadata: dict = field(default_factory=dict)

    def values(self) -> dict[str, float]:
        """Flat point estimates: ``{"trust": .., "adv": .., "ood": .., ...}`` (0-100)."""
        flat = {"trust": self.trust.value} if self.trust else {}
        flat.update({name: p.score.value for name, p in self.perspectives.items() if p.score})
        return flat

    def to_json(self) -> dict:
        return {
            "trustbits_scores": SCHEMA_VERSION,
            "trust": self.trust.to_json() if self.trust else None,
            "perspectives": {k: v.to_json() for k, v in self.perspectives.items()},
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, data: dict) -> Scores:
        if data.get("trustbits_scores") != SCHEMA_VERSION:
            raise TrustbitsError(
                f"these scores have format version {data.get('trustbits_scores')!r}, this trustbits reads {SCHEMA_VERSION}",
                "aggregate the records again with this version",
            )
        return cls(
            perspectives={k: PerspectiveScore.from_json(v) for k, v in data["perspectives"].items()},
            trust=Interval.from_json(data["trust"]) if data["trust"] else None,
            metadata=data.get("metadata", {}),
        )
