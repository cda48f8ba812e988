"""The detection suite's scorers: plain functions of the true events and the ledger's.

An event is (kind, model name, scan number). A true event of a step is detected by the first ledger event of
its kind and model at that step's scan or later; its time to detection is how many scans that took (1: the
scan right after the change). `suspected_missing` is a hedge the engine takes before it concludes, not a
claim about the registry, and is not scored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

UNSCORED = frozenset({"suspected_missing"})


class Event(NamedTuple):
    kind: str
    model: str
    scan: int  # the step (0-based) whose scan recorded it, or at which the change happened


@dataclass
class CaseScore:
    """What one scenario's scans got right and wrong."""

    matched: list[tuple[Event, Event]] = field(default_factory=list)  # (true, recorded)
    missed: list[Event] = field(default_factory=list)
    spurious: list[Event] = field(default_factory=list)
    false_deletions: list[Event] = field(default_factory=list)
    duplicates: list[Event] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (self.missed or self.spurious or self.false_deletions or self.duplicates)


def score_case(truth: list[Event], recorded: list[Event]) -> CaseScore:
    """Match each true event with the earliest unused recorded one of its kind and model, no earlier than it."""
    score = CaseScore()
    recorded = sorted((event for event in recorded if event.kind not in UNSCORED), key=lambda event: event.scan)
    used = [False] * len(recorded)
    for true in sorted(truth, key=lambda event: event.scan):
        position = next((i for i, event in enumerate(recorded) if not used[i] and event.kind == true.kind
                         and event.model == true.model and event.scan >= true.scan), None)
        if position is None:
            score.missed.append(true)
        else:
            used[position] = True
            score.matched.append((true, recorded[position]))
    deleted_at: dict[str, int] = {}  # each model's first true deletion
    for true in sorted(truth, key=lambda event: event.scan):
        if true.kind == "deleted":
            deleted_at.setdefault(true.model, true.scan)
    wanted = Counter((event.kind, event.model) for event in truth)
    seen: Counter[tuple[str, str]] = Counter()
    for event, was_used in zip(recorded, used):
        seen[event.kind, event.model] += 1
        if was_used:
            continue
        score.spurious.append(event)
        if event.kind == "deleted" and event.scan < deleted_at.get(event.model, event.scan + 1):
            # Recorded deleted while it still existed (or never truly deleted).
            score.false_deletions.append(event)
        if seen[event.kind, event.model] > max(wanted[event.kind, event.model], 1):
            score.duplicates.append(event)  # the same change recorded again (a resumed scan repeating itself)
    return score


def metrics(scores: list[CaseScore]) -> dict[str, Any]:
    """The suite's figures: precision and recall per event kind, false deletions, duplicates, time to detection."""
    kinds = sorted({event.kind for score in scores for event in
                    [true for true, _ in score.matched] + score.missed + score.spurious})
    per_kind = {}
    for kind in kinds:
        hits = sum(true.kind == kind for score in scores for true, _ in score.matched)
        missed = sum(event.kind == kind for score in scores for event in score.missed)
        spurious = sum(event.kind == kind for score in scores for event in score.spurious)
        per_kind[kind] = {"true": hits + missed, "recorded": hits + spurious,
                          "precision": _ratio(hits, hits + spurious), "recall": _ratio(hits, hits + missed)}
    delays = [recorded.scan - true.scan + 1 for score in scores for true, recorded in score.matched]
    return {
        "scenarios": len(scores),
        "per_kind": per_kind,
        "false_deletions": sum(len(score.false_deletions) for score in scores),
        "duplicates": sum(len(score.duplicates) for score in scores),
        "time_to_detection": {"mean_scans": round(sum(delays) / len(delays), 3) if delays else None,
                              "max_scans": max(delays, default=None)},
    }


def _ratio(part: int, whole: int) -> float:
    """1.0 when there was nothing to get right: no true events of a kind and none recorded."""
    return round(part / whole, 4) if whole else 1.0
