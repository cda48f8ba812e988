"""The record digest and the record's round trips through JSON and the ledger."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest

from weightkeeper.domain import Card, FileEntry, Lineage, ModelRecord, Visibility
from weightkeeper.ledger import Ledger

FULL = ModelRecord(
    name="org/model",
    key="k",
    revision="abc",
    created_at="2026-01-01T00:00:00Z",
    last_modified="2026-02-01T00:00:00Z",
    visibility=Visibility.PUBLIC,
    downloads=5,
    likes=2,
    lineage=(Lineage("base/model", "adapter"),),
    card=Card(digest="d", license="mit", emissions={"emissions": 3.5, "source": "CodeCarbon"},
              training={"epochs": 2}, datasets=("org/data",)),
    files=(FileEntry("model.safetensors", 10, "f" * 64),),
    shutdown_date="2027-01-01",
    successor="org/model-v2",
    extra={"tags": ["x"]},
)

# A different value for every field of ModelRecord: the digest must notice each one.
DIFFERENT = {
    "name": "org/other", "key": "k2", "revision": "abd", "created_at": "2026-01-02T00:00:00Z",
    "last_modified": "2026-02-02T00:00:00Z", "visibility": Visibility.GATED, "downloads": 6, "likes": 3,
    "lineage": (Lineage("base/model", "finetune"),), "card": replace(FULL.card, training={"epochs": 3}),
    "files": (FileEntry("model.safetensors", 10, "e" * 64),), "shutdown_date": "2027-01-02",
    "successor": "org/model-v3", "extra": {"tags": ["y"]},
}


def test_every_field_changes_the_digest() -> None:
    assert set(DIFFERENT) == {f.name for f in fields(ModelRecord)}, "a new field needs a case here and in digest()"
    for name, value in DIFFERENT.items():
        assert replace(FULL, **{name: value}).digest() != FULL.digest(), name


@pytest.mark.parametrize("card_field", ["digest", "license", "emissions", "training", "datasets"])
def test_every_card_field_changes_the_digest(card_field: str) -> None:
    value = {"digest": "e", "license": "apache-2.0", "emissions": {"emissions": 4}, "training": None,
             "datasets": ()}[card_field]
    assert replace(FULL, card=replace(FULL.card, **{card_field: value})).digest() != FULL.digest()


def test_the_digest_ignores_mapping_order() -> None:
    reordered = replace(FULL, card=replace(FULL.card, emissions={"source": "CodeCarbon", "emissions": 3.5}))
    assert reordered.digest() == FULL.digest()


def test_json_round_trip() -> None:
    assert ModelRecord.from_json(FULL.to_json()) == FULL
    bare = ModelRecord(name="a", key="b")
    assert ModelRecord.from_json(bare.to_json()) == bare


def test_the_ledger_gives_back_the_record_it_was_given(store: str | Path) -> None:
    with Ledger(store) as ledger:
        registry_id = ledger.registry_id("r", "local", "/x")
        ledger.conn.execute("INSERT INTO scans (registry_id, started_at, status, phase) VALUES (?, 'now', 'running', 'listing')",
                            (registry_id,))
        ledger.conn.execute("INSERT INTO models (registry_id, name, key, state, visibility, digest, last_observation_id,"
                            " first_seen, last_seen) VALUES (?, 'org/model', 'k', 'present', 'public', 0, 0, 'now', 'now')",
                            (registry_id,))
        for original in (FULL, ModelRecord(name="org/model", key="k")):
            (observation,) = ledger.add_observations(1, [(1, original.row(), original.digest())])
            loaded = ledger.load_record(observation)
            assert loaded == original and loaded.digest() == original.digest()
