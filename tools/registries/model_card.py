"""Model cards as the Hugging Face Hub writes them: YAML front matter between `---` lines.

Card text is untrusted data: it is parsed, never followed, and only within limits. A front matter longer
than MAX_FRONT_MATTER characters, nested deeper than MAX_DEPTH levels, holding more than MAX_VALUES values
once its YAML aliases are expanded (nine levels of nine aliases are 387 million values from 700 bytes), or
referring to itself is refused with a CardError before it is built; so is card metadata sent as JSON (the
Hub's) nested deeper than MAX_DEPTH. Each value kept from a card is at most KEPT_CHARS characters, with a
note saying it was cut.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from weightkeeper.domain import CARD_DIGEST_FORM, Card, Lineage, canonical_json
from weightkeeper.errors import WeightkeeperError

RELATIONS = frozenset({"adapter", "finetune", "quantized", "merge"})
# Announcements that become events of their own (visibility_changed, deprecation_announced),
# so they stay out of the card digest: changing them is not an "update" of the model.
LIFECYCLE_FIELDS = frozenset({"visibility", "shutdown_date", "new_version"})
# UTF-8 takes at most 4 bytes a character: a front matter within the limit lies within the first 512 KiB of a
# card, which is what a local registry reads of it (1 MiB). Large Hub cards (long model-index results) are
# tens of KiB.
MAX_FRONT_MATTER = 1 << 17
# A front matter within MAX_FRONT_MATTER holds at most 65,536 values without aliases ("a\n" per value), so
# only alias expansion reaches this.
MAX_VALUES = 100_000
MAX_DEPTH = 64  # a card nests a few levels (model-index: results, metrics); the JSON encoders recurse
# What a card field costs the ledger at most (a license, a dataset list, a training block as JSON): the
# documenter quotes 120 characters of each, and real values are a few hundred.
KEPT_CHARS = 4096
CUT = "cut by weightkeeper"


class CardError(WeightkeeperError):
    """The card's metadata cannot be read."""


def parse_card(text: str) -> tuple[dict[str, Any], str]:
    """The card's metadata mapping ({} without front matter) and its markdown body."""
    import yaml

    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    size = 0
    for end, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            break
        size += len(line) + 1
        if size > MAX_FRONT_MATTER:
            raise CardError(f"front matter is longer than {MAX_FRONT_MATTER:,} characters; weightkeeper reads no "
                            "more of a card's metadata: move long text into the card's body, below the closing '---'")
    else:
        raise CardError("front matter starts with '---' on line 1 but has no closing '---' line")
    try:
        meta = yaml.load("\n".join(lines[1:end]), Loader=_limited_loader())  # noqa: S506 - a SafeLoader
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
    if from_json and _nests_too_deep(meta):  # YAML was measured as it was read; JSON has no aliases to expand
        raise _too_deep("card metadata")
    plain = (lambda value: value) if from_json else _plain
    emissions = meta.get("co2_eq_emissions")
    if isinstance(emissions, int | float):
        emissions = {"emissions": emissions}
    training = meta.get("training")
    datasets = meta.get("datasets") or ()
    if not isinstance(datasets, str | list | tuple):
        raise CardError(f"datasets must be a dataset name or a list of them, not a {type(datasets).__name__} value")
    named_license = meta.get("license")
    return Card(
        digest=_digest({key: value for key, value in meta.items() if key not in LIFECYCLE_FIELDS}, body),
        license=None if named_license is None else kept_text(str(named_license)),
        emissions=_kept_mapping(plain(emissions)) if isinstance(emissions, dict) else None,
        training=_kept_mapping(plain(training)) if isinstance(training, dict) else None,
        datasets=_kept_names([datasets] if isinstance(datasets, str) else [str(item) for item in datasets]),
    )


def kept_text(text: str) -> str:
    """A card's text as weightkeeper keeps it: at most KEPT_CHARS characters, then a note of the cut."""
    if len(text) <= KEPT_CHARS:
        return text
    return f"{text[:KEPT_CHARS]}… [{CUT}: {len(text):,} characters, the first {KEPT_CHARS:,} kept]"


def lineage(meta: dict[str, Any], *, inferred_relation: str | None = None) -> tuple[Lineage, ...]:
    """Base models from `base_model` (a name or a list) with `base_model_relation`.

    Like the Hub, a missing relation is inferred: several bases make a merge,
    otherwise the caller's guess from the files (adapter, quantized) or finetune.
    """
    bases = meta.get("base_model") or ()
    if not isinstance(bases, str | list | tuple):
        raise CardError(f"base_model must be a model name or a list of them, not a {type(bases).__name__} value")
    bases = [kept_text(bases)] if isinstance(bases, str) else [kept_text(str(item)) for item in bases]
    relation = meta.get("base_model_relation")
    if relation is not None and relation not in RELATIONS:
        raise CardError(f"base_model_relation {relation!r} is not one of {', '.join(sorted(RELATIONS))}")
    if relation is None and bases:
        relation = "merge" if len(bases) > 1 else inferred_relation or "finetune"
    return tuple(Lineage(base, relation) for base in bases)


def _digest(meta: dict[str, Any], body: str) -> str:
    return f"{CARD_DIGEST_FORM}:{hashlib.blake2b(canonical_json([meta, body]), digest_size=16).hexdigest()}"


def _kept_mapping(value: dict[str, Any]) -> dict[str, Any]:
    """A card's mapping, or when its JSON is longer than KEPT_CHARS a note of the cut and that JSON's beginning."""
    text = canonical_json(value).decode()
    if len(text) <= KEPT_CHARS:
        return value
    return {"cut": f"{CUT}: {len(text):,} characters of JSON, the first {KEPT_CHARS:,} kept",
            "kept": text[:KEPT_CHARS]}


def _kept_names(names: list[str]) -> tuple[str, ...]:
    """The names that fit in KEPT_CHARS characters of JSON, then a note of how many more there were."""
    if len(canonical_json(names)) <= KEPT_CHARS:
        return tuple(names)
    size = 0
    for count, name in enumerate(names):
        size += len(canonical_json(name)) + 1
        if size > KEPT_CHARS:
            return (*names[:count], f"… [{CUT}: {len(names) - count:,} more of {len(names):,} names]")
    return tuple(names)


@functools.cache
def _limited_loader() -> type:
    """PyYAML's SafeLoader within the limits: nesting is counted as the document is composed (the composer
    recurses), values once it is composed, before anything is built from it."""
    import yaml

    class LimitedLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise _too_deep("front matter", _at(self.peek_event()))
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def get_single_node(self) -> Any:
            node = super().get_single_node()
            if node is not None:
                _check_shape(node)
            return node

    return LimitedLoader


def _nests_too_deep(value: dict[str, Any]) -> bool:
    """Whether JSON values hold containers nested deeper than MAX_DEPTH; a level at a time, as a scan asks it of
    every Hub model."""
    containers: list[Any] = [value]
    for _ in range(MAX_DEPTH):
        containers = [item for container in containers
                      for item in (container.values() if isinstance(container, dict) else container)
                      if isinstance(item, dict | list)]
        if not containers:
            return False
    return True


def _check_shape(root: Any) -> None:
    """Refuse a front matter's YAML nodes nested deeper than MAX_DEPTH, of more than MAX_VALUES values counting
    an aliased node each time it appears, or containing itself. Each aliased node is measured once."""
    measured: dict[int, tuple[int, int]] = {}  # id -> (values, height) of a part measured before
    inside: set[int] = set()

    def measure(item: Any, depth: int) -> tuple[int, int]:
        if depth > MAX_DEPTH:
            raise _too_deep("front matter", _at(item))
        key = id(item)
        if key in inside:
            raise CardError(f"front matter refers to itself{_at(item)} (a YAML alias inside the value it names); a "
                            "card's metadata must be a tree of values: remove the alias")
        if key not in measured:
            inside.add(key)
            values, height = 1, 1
            for child in _children(item):
                child_values, child_height = measure(child, depth + 1)
                values, height = values + child_values, max(height, child_height + 1)
                if values > MAX_VALUES:
                    raise CardError(f"front matter expands to more than {MAX_VALUES:,} values (YAML aliases such as *name "
                                    "repeat what they name each time); weightkeeper reads no card that large: "
                                    "write it without such repetition")
            inside.discard(key)
            measured[key] = values, height
        values, height = measured[key]
        if depth + height - 1 > MAX_DEPTH:
            raise _too_deep("front matter", _at(item))
        return values, height

    measure(root, 1)


def _children(node: Any) -> list[Any]:
    if isinstance(node.value, list):  # a sequence's nodes, or a mapping's (key, value) pairs
        return [part for item in node.value for part in (item if isinstance(item, tuple) else (item,))]
    return []


def _too_deep(what: str, where: str = "") -> CardError:
    return CardError(f"{what} nests deeper than {MAX_DEPTH} levels{where}; weightkeeper reads no card nested that "
                     "deep: flatten it")


def _at(item: Any) -> str:
    """Where a YAML node or event starts in the card: its front matter begins on line 2."""
    return f" at line {item.start_mark.line + 2}"


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """YAML dates and other non-JSON scalars become strings, so the card survives the ledger unchanged."""
    return json.loads(json.dumps(value, default=str))
