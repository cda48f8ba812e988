"""Model cards as the Hugging Face Hub writes them: YAML front matter between `---` lines.

Card text is untrusted data: it is parsed, never followed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from weightkeeper.domain import CARD_DIGEST_FORM, Card, Lineage, canonical_json
from weightkeeper.errors import WeightkeeperError

RELATIONS = frozenset({"adapter", "finetune", "quantized", "merge"})
# Announcements that become events of their own (visibility_changed, deprecation_announced),
# so they stay out of the card digest: changing them is not an "update" of the model.
LIFECYCLE_FIELDS = frozenset({"visibility", "shutdown_date", "new_version"})


class CardError(WeightkeeperError):
    """The card's metadata cannot be read."""


def parse_card(text: str) -> tuple[dict[str, Any], str]:
    """The card's metadata mapping ({} without front matter) and its markdown body."""
    import yaml

    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    try:
        end = next(i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---")
    except StopIteration:
        raise CardError("front matter starts with '---' on line 1 but has no closing '---' line") from None
    try:
        meta = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise CardError(f"front matter is not valid YAML{where}: {reason}") from exc
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise CardError(f"front matter must be a YAML mapping of fields, not a {type(meta).__name__}")
    return meta, "\n".join(lines[end + 1 :])


def card_fields(meta: dict[str, Any], body: str, *, from_json: bool = False) -> Card:
    """The card fields weightkeeper keeps. `from_json`: the metadata came from JSON (a Hub listing), so its
    values are plain already; from YAML they may hold dates and the like, made plain here."""
    plain = (lambda value: value) if from_json else _plain
    emissions = meta.get("co2_eq_emissions")
    if isinstance(emissions, int | float):
        emissions = {"emissions": emissions}
    training = meta.get("training")
    datasets = meta.get("datasets") or ()
    return Card(
        digest=_digest({key: value for key, value in meta.items() if key not in LIFECYCLE_FIELDS}, body),
        license=_text(meta.get("license")),
        emissions=plain(emissions) if isinstance(emissions, dict) else None,
        training=plain(training) if isinstance(training, dict) else None,
        datasets=tuple(str(item) for item in ([datasets] if isinstance(datasets, str) else datasets)),
    )


def lineage(meta: dict[str, Any], *, inferred_relation: str | None = None) -> tuple[Lineage, ...]:
    """Base models from `base_model` (a name or a list) with `base_model_relation`.

    Like the Hub, a missing relation is inferred: several bases make a merge,
    otherwise the caller's guess from the files (adapter, quantized) or finetune.
    """
    bases = meta.get("base_model") or ()
    bases = [bases] if isinstance(bases, str) else [str(item) for item in bases]
    relation = meta.get("base_model_relation")
    if relation is not None and relation not in RELATIONS:
        raise CardError(f"base_model_relation {relation!r} is not one of {', '.join(sorted(RELATIONS))}")
    if relation is None and bases:
        relation = "merge" if len(bases) > 1 else inferred_relation or "finetune"
    return tuple(Lineage(base, relation) for base in bases)


def _digest(meta: dict[str, Any], body: str) -> str:
    return f"{CARD_DIGEST_FORM}:{hashlib.blake2b(canonical_json([meta, body]), digest_size=16).hexdigest()}"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """YAML dates and other non-JSON scalars become strings, so the card survives the ledger unchanged."""
    return json.loads(json.dumps(value, default=str))
