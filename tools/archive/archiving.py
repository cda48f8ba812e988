"""Archiving one approved model revision into the OCFL store, for the executor.

The approved action names the registry, the model, the pinned revision and the observation that
recorded its files (`agents/advocate.py` `plan_actions`); the approval's payload hash binds all
four, so an approval for another revision never downloads a byte. Each file is fetched into the
store's staging area and checked against what the observation recorded (the sha256, or the Hub's
git blob id) or, for an MLflow artifact, of which MLflow keeps no digest, against the size its
server lists; only when every file passed is the OCFL version written, then `archive_verified`
recorded. Each version holds the model's files under `model/` and its provenance under
`provenance/`: the registry record as observed, the file tree with each file's sha256 and the
upstream digest it was checked against (`null` when the registry gives none), the card fields, the
lineage, the proposal's evidence, the approval that authorised it, and what the source gathers
itself (`provenance/mlflow/`, `provenance/openai/`). An OpenAI fine-tune, whose weights cannot be
downloaded, is archived metadata-only: provenance alone, labelled so in `registry.json` and in the
version's message.

A crash or an unreachable registry leaves the claim unfinished (`Resumable`): `weightkeeper act`
runs it again, and the staging area keeps what was downloaded, so it resumes. A file whose bytes
do not match is final: `archive_failed`, nothing archived.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tools.archive.sources import Source, SourceError, SourceFile, git_blob_sha1, source_for
from tools.registries import pinned_revision
from tools.archive.staging import Staging
from tools.archive.store import ArchiveError, ArchiveStore, DigestMismatch, open_store
from weightkeeper.config import Config
from weightkeeper.domain import EventKind, ModelRecord
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.ledger import Ledger
from weightkeeper.review import Claim, ReviewQueue

MODEL_DIR, PROVENANCE_DIR = "model", "provenance"


class Resumable(Exception):
    """The archive stopped part-way for a reason that may pass (the registry, the disk): run it again."""


def object_id(registry: str, model: str) -> str:
    return f"{registry}/{model}"


def archive(ledger: Ledger, settings: Config, claim: Claim) -> dict[str, Any]:
    """Run one approved archive action; return what it did. Raises `Resumable` for a failure worth a rerun,
    any other exception for a final one (each recorded as `archive_failed` first)."""
    queue, review = ReviewQueue(ledger), claim.review
    queue.check(claim)
    params = claim.action.parameters
    target = object_id(params["registry"], params["model"])

    def record(kind: EventKind, **detail: Any) -> None:
        queue.record_event(kind, review.registry_id, review.model_id,
                           {"review_id": review.id, "object_id": target, "revision": params["revision"], **detail})

    record(EventKind.ARCHIVE_REQUESTED, idempotency_key=claim.idempotency_key)
    try:
        done = _archive(ledger, settings, claim, target, lambda: record(EventKind.ARCHIVE_STARTED))
    except (RegistryUnavailable, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        record(EventKind.ARCHIVE_FAILED, reason=reason, resumable=True)
        raise Resumable(f"{reason}; what was downloaded is kept, `weightkeeper act` resumes it") from exc
    except (DigestMismatch, ArchiveError, SourceError, KeyError, ValueError) as exc:
        record(EventKind.ARCHIVE_FAILED, reason=f"{type(exc).__name__}: {exc}", resumable=False)
        raise
    record(EventKind.ARCHIVE_VERIFIED, **done)
    return done


def _archive(ledger: Ledger, settings: Config, claim: Claim, target: str,
             started: Callable[[], None]) -> dict[str, Any]:
    params = claim.action.parameters
    registry = settings.scanned().get(params["registry"])
    if registry is None:
        raise SourceError(f"the registry {params['registry']!r} is no longer in the config, so its files cannot be "
                          "fetched; add it back to archive this approval")
    record = ledger.load_record(int(params["observation"]))
    pinned = pinned_revision(registry.kind, record)
    if (record.name, pinned) != (params["model"], params["revision"]):
        raise ValueError(f"observation {params['observation']} records {record.name}@{pinned}, "
                         f"not the approved {params['model']}@{params['revision']}")
    store = open_store(settings)
    done = _archived_before(store, target, claim.idempotency_key)
    if done is not None:
        return done
    source = source_for(registry, record)
    files = source.files(record)
    store.check_space(target, sum(file.size or 0 for file in files))
    started()
    staging = store.staging(target, params["revision"])
    with staging.exclusive():
        staged = {file.logical_path for file in staging.files()}
        for file in files:
            logical = f"{MODEL_DIR}/{file.path}"
            if logical not in staged:
                _fetch(source, staging, file, logical)
        approval = _approval(ledger, claim)
        documents = {**_provenance(claim, approval, record, registry.kind, _file_tree(files, staging),
                                   source.metadata_only),
                     **source.documents()}
        for name, document in documents.items():
            staging.add_bytes(f"{PROVENANCE_DIR}/{name}", _encoded(document))
        result = store.ingest(staging, message=_message(claim, source.metadata_only), user_name=approval["reviewer"])
    return {"object_id": result.object_id, "version": result.version, "files": result.files,
            "bytes": result.stored_bytes, "new_bytes": result.new_bytes, "metadata_only": source.metadata_only,
            "idempotency_key": claim.idempotency_key}


def _fetch(source: Source, staging: Staging, file: SourceFile, logical: str) -> None:
    partial = staging.partial(logical)
    source.fetch(file, partial)
    if file.git_sha1 is not None:
        actual = git_blob_sha1(partial)
        if actual != file.git_sha1:
            partial.unlink()
            raise DigestMismatch(logical, file.git_sha1, actual, algorithm="git blob sha1")
    staging.finish(logical, sha256=file.sha256, size=file.size)


def _archived_before(store: ArchiveStore, target: str, key: str) -> dict[str, Any] | None:
    """The version a run of this same claim wrote before a crash kept it from being recorded, if any."""
    if not store.holds(target):
        return None
    for version in store.describe(target).versions:
        if key in version.message:
            return {"object_id": target, "version": version.version, "files": len(version.files),
                    "bytes": sum(file.size for file in version.files), "new_bytes": 0, "idempotency_key": key,
                    "metadata_only": not any(file.logical_path.startswith(f"{MODEL_DIR}/") for file in version.files)}
    return None


def _file_tree(files: list[SourceFile], staging: Staging) -> list[dict[str, Any]]:
    """files.json: each file with the sha256 of the bytes archived and the upstream digest they were checked
    against, null when the registry gives none (MLflow), so a reader knows which hashes vouch for what."""
    archived = {file.logical_path: file.sha256 for file in staging.files()}
    return [{"path": file.path, "size": file.size, "sha256": archived[f"{MODEL_DIR}/{file.path}"],
             "upstream_digest": file.upstream_digest()} for file in files]


def _encoded(document: Any) -> bytes:
    """A provenance document as stored: bytes as they came (an OpenAI result file), anything else as JSON."""
    if isinstance(document, bytes):
        return document
    return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"


def _message(claim: Claim, metadata_only: bool) -> str:
    params = claim.action.parameters
    label = "; metadata only: the registry does not give the weights" if metadata_only else ""
    return (f"{params['model']}@{params['revision']} from {params['registry']}, approved in review "
            f"{claim.review.id} (idempotency key {claim.idempotency_key}){label}")


def _approval(ledger: Ledger, claim: Claim) -> dict[str, Any]:
    """The human decision that authorised this action (its signature was verified by the claim)."""
    return next(decision for decision in ReviewQueue(ledger).decisions(claim.review.id)
                if decision["decision"] == "approve" and decision["action_index"] == claim.action_index
                and decision["version"] == claim.review.version and decision["scheme"] == "ed25519")


def _provenance(claim: Claim, approval: dict[str, Any], record: ModelRecord, kind: str,
                file_tree: list[dict[str, Any]], metadata_only: bool) -> dict[str, Any]:
    params, review = claim.action.parameters, claim.review
    # The archived model's own evidence, of the several a letter may cover.
    evidence = next((model for model in review.evidence.models
                     if (model.registry, model.model) == (params["registry"], params["model"])), review.evidence.lead)
    documents: dict[str, Any] = {
        "registry.json": {"registry": params["registry"], "kind": kind, "observation": params["observation"],
                          "metadata_only": metadata_only, "record": json.loads(record.to_json())},
        "files.json": file_tree,
        "card.json": None if record.card is None else {
            "digest": record.card.digest, "license": record.card.license, "emissions": record.card.emissions,
            "training": record.card.training, "datasets": list(record.card.datasets)},
        "lineage.json": {"base_models": [{"model": base.base_model, "relation": base.relation}
                                         for base in record.lineage],
                         "built_on_it": next((item.facts for item in evidence.items
                                              if item.kind == "lineage_down"), None)},
        "evidence.json": evidence.to_dict(),
        "approval.json": {"review_id": review.id, "version": approval["version"], "reviewer": approval["reviewer"],
                          "channel": approval["channel"], "decided_at": approval["decided_at"],
                          "action_index": approval["action_index"], "payload_sha256": approval["payload_sha256"],
                          "overrides": json.loads(approval["overrides"]), "previous": approval["previous"],
                          "signature": approval["signature"], "action": claim.payload},
    }
    return documents
