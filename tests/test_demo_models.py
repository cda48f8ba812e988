import json
import math
import struct
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from weightkeeper.demo_models import (
    DEMO_MODELS,
    DemoChange,
    apply_demo_changes,
    write_demo_registry,
)

DEMO_IDS = {model.model_id for model in DEMO_MODELS}
DTYPE_WIDTH = {"F16": 2, "BF16": 2, "F32": 4}


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def split_card(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    end = text.index("\n---\n", 4)
    return yaml.safe_load(text[4:end + 1]), text[end + 5:]


def read_card(folder: Path) -> tuple[dict, str]:
    return split_card((folder / "README.md").read_text(encoding="utf-8"))


def root_bases(model_id: str) -> set[str]:
    """The non-demo (real) bases a demo model ultimately descends from."""
    if model_id not in DEMO_IDS:
        return {model_id}
    model = next(m for m in DEMO_MODELS if m.model_id == model_id)
    return set().union(*(root_bases(base) for base in model.base_model))


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    write_demo_registry(root)
    return root


@pytest.fixture
def changed(tmp_path: Path) -> tuple[Path, Path, list[DemoChange]]:
    """(untouched reference registry, changed registry, changes applied)."""
    reference, root = tmp_path / "reference", tmp_path / "changed"
    write_demo_registry(reference)
    write_demo_registry(root)
    return reference, root, apply_demo_changes(root)


def test_catalogue_is_large_and_varied() -> None:
    assert len(DEMO_MODELS) >= 14
    assert len(DEMO_IDS) == len(DEMO_MODELS)
    assert len({model_id.split("/")[0] for model_id in DEMO_IDS}) >= 5
    real_bases = set().union(*(root_bases(model_id) for model_id in DEMO_IDS))
    assert len(real_bases) >= 6
    assert {m.relation for m in DEMO_MODELS} == {"adapter", "finetune", "quantized", "merge"}
    assert {m.weights for m in DEMO_MODELS} == {"safetensors", "gguf", "bin"}


def lineage_depth(model_id: str) -> int:
    if model_id not in DEMO_IDS:
        return 0
    model = next(m for m in DEMO_MODELS if m.model_id == model_id)
    return 1 + max(lineage_depth(base) for base in model.base_model)


def test_lineage_has_depth() -> None:
    assert max(lineage_depth(model_id) for model_id in DEMO_IDS) >= 3
    merges = [m for m in DEMO_MODELS if m.relation == "merge"]
    assert merges and all(len(m.base_model) >= 2 for m in merges)
    demo_orgs = {model_id.split("/")[0] for model_id in DEMO_IDS}
    for model in DEMO_MODELS:
        for base in model.base_model:
            # a base from a demo org must itself be written by the demo
            assert base in DEMO_IDS or base.split("/")[0] not in demo_orgs


def test_write_returns_sorted_ids_and_folders(registry: Path, tmp_path: Path) -> None:
    written = write_demo_registry(tmp_path / "again")
    assert written == sorted(DEMO_IDS)
    for model_id in written:
        assert (registry / model_id).is_dir()
    assert {p.relative_to(registry).as_posix() for p in registry.glob("*/*")} == DEMO_IDS


def test_every_safetensors_file_is_valid_and_small(registry: Path) -> None:
    files = sorted(registry.rglob("*.safetensors"))
    assert len(files) >= 10
    for path in files:
        raw = path.read_bytes()
        assert len(raw) <= 8 * 1024, path
        (header_len,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + header_len])
        buffer = raw[8 + header_len:]
        assert header.pop("__metadata__") == {"format": "pt"}
        spans = sorted(entry["data_offsets"] for entry in header.values())
        assert spans[0][0] == 0
        assert spans[-1][1] == len(buffer)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert end == start, path
        for entry in header.values():
            start, end = entry["data_offsets"]
            assert end - start == math.prod(entry["shape"]) * DTYPE_WIDTH[entry["dtype"]]


def test_gguf_and_bin_weights(registry: Path) -> None:
    ggufs = list(registry.rglob("*.gguf"))
    assert ggufs and all(p.read_bytes()[:4] == b"GGUF" for p in ggufs)
    bins = list(registry.rglob("pytorch_model.bin"))
    assert bins and all(0 < p.stat().st_size <= 8 * 1024 for p in bins)


def test_configs_match_relation_and_card(registry: Path) -> None:
    for model in DEMO_MODELS:
        folder = registry / model.model_id
        front, _ = read_card(folder)
        if model.relation == "adapter":
            assert not (folder / "config.json").exists()
            config = json.loads((folder / "adapter_config.json").read_text())
            assert config["peft_type"] == "LORA"
            assert config["base_model_name_or_path"] == front["base_model"]
            assert config["r"] == model.lora_r and config["target_modules"]
            assert (folder / "adapter_model.safetensors").is_file()
            assert front["library_name"] == "peft"
        else:
            assert not (folder / "adapter_config.json").exists()
            config = json.loads((folder / "config.json").read_text())
            assert config["architectures"] and config["model_type"]
            assert config["num_hidden_layers"] > 0 and config["vocab_size"] > 0
            expected = "gguf" if model.weights == "gguf" else "transformers"
            assert front["library_name"] == expected


def test_every_card_parses_with_required_fields(registry: Path) -> None:
    for model in DEMO_MODELS:
        text = (registry / model.model_id / "README.md").read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 45
        front, body = split_card(text)
        for key in ("base_model", "base_model_relation", "license", "language", "datasets",
                    "tags", "pipeline_tag", "library_name", "co2_eq_emissions", "training"):
            assert key in front, (model.model_id, key)
        bases = front["base_model"]
        assert (bases if isinstance(bases, list) else [bases]) == list(model.base_model)
        assert front["base_model_relation"] == model.relation
        co2 = front["co2_eq_emissions"]
        assert 10 <= co2["emissions"] <= 100_000
        assert {"source", "training_type", "geographical_location", "hardware_used"} <= set(co2)
        assert {"hardware", "training_hours"} <= set(front["training"])
        assert front.get("visibility", "public") == "public"
        assert body.startswith(f"\n# {model.model_id.split('/')[1]}\n")


def test_licenses_follow_the_bases() -> None:
    expected = {
        "meta-llama/Llama-3.1-8B-Instruct": "llama3.1",
        "google/gemma-2-9b-it": "gemma",
        "microsoft/Phi-3-mini-4k-instruct": "mit",
        "mistralai/Mistral-7B-v0.3": "apache-2.0",
    }
    for model in DEMO_MODELS:
        for base in root_bases(model.model_id) & set(expected):
            assert model.license == expected[base], model.model_id


def test_writing_twice_gives_identical_trees(tmp_path: Path) -> None:
    write_demo_registry(tmp_path / "a")
    write_demo_registry(tmp_path / "b")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_changes_have_the_scripted_kinds_on_distinct_models(changed) -> None:
    _, _, changes = changed
    assert Counter(c.kind for c in changes) == {
        "deleted": 2, "renamed": 1, "updated": 2,
        "visibility_changed": 3, "deprecation_announced": 1,
    }
    assert len({c.model_id for c in changes}) == len(changes)
    assert {c.model_id for c in changes} <= DEMO_IDS
    assert all(c.detail for c in changes)


def test_deleted_folders_are_gone_and_one_was_a_base(changed) -> None:
    _, root, changes = changed
    deleted = {c.model_id for c in changes if c.kind == "deleted"}
    for model_id in deleted:
        assert not (root / model_id).exists()
    assert any(set(m.base_model) & deleted for m in DEMO_MODELS if m.model_id not in deleted)


def test_rename_keeps_files_byte_identical(changed) -> None:
    reference, root, changes = changed
    (rename,) = [c for c in changes if c.kind == "renamed"]
    assert rename.new_model_id and rename.new_model_id not in DEMO_IDS
    assert rename.new_model_id.split("/")[0] == rename.model_id.split("/")[0]
    assert rename.new_model_id in rename.detail
    assert not (root / rename.model_id).exists()
    assert tree(root / rename.new_model_id) == tree(reference / rename.model_id)


def test_updates_change_weights_or_card(changed) -> None:
    reference, root, changes = changed
    updates = [c.model_id for c in changes if c.kind == "updated"]
    changed_files = {
        model_id: [name for name, data in tree(root / model_id).items()
                   if tree(reference / model_id)[name] != data]
        for model_id in updates
    }
    assert sorted(changed_files.values()) == [["README.md"], ["model.safetensors"]]
    for model_id, names in changed_files.items():
        if names == ["model.safetensors"]:
            old = (reference / model_id / "model.safetensors").read_bytes()
            new = (root / model_id / "model.safetensors").read_bytes()
            (header_len,) = struct.unpack("<Q", new[:8])
            assert new[:8 + header_len] == old[:8 + header_len]
            assert len(new) == len(old)
        else:
            old_front, old_body = read_card(reference / model_id)
            new_front, new_body = read_card(root / model_id)
            assert new_body == old_body
            assert new_front["datasets"][:-1] == old_front["datasets"]
            assert len(new_front["datasets"]) == len(old_front["datasets"]) + 1
            new_front["datasets"] = old_front["datasets"]
            assert new_front == old_front


def test_hidden_cards_differ_only_in_visibility(changed) -> None:
    reference, root, changes = changed
    hidden = {c.model_id: c.detail.split()[-1] for c in changes if c.kind == "visibility_changed"}
    assert sorted(hidden.values()) == ["disabled", "gated", "private"]
    for model_id, visibility in hidden.items():
        old = (reference / model_id / "README.md").read_text(encoding="utf-8").splitlines()
        new = (root / model_id / "README.md").read_text(encoding="utf-8").splitlines()
        assert f"visibility: {visibility}" in new
        assert [line for line in new if not line.startswith("visibility:")] == \
            [line for line in old if not line.startswith("visibility:")]
        assert read_card(root / model_id)[0]["visibility"] == visibility
        assert tree(root / model_id).keys() == tree(reference / model_id).keys()


def test_deprecation_names_a_far_shutdown_and_a_live_successor(changed) -> None:
    reference, root, changes = changed
    (deprecation,) = [c for c in changes if c.kind == "deprecation_announced"]
    old_front, old_body = read_card(reference / deprecation.model_id)
    front, body = read_card(root / deprecation.model_id)
    assert body == old_body
    shutdown = date.fromisoformat(str(front.pop("shutdown_date")))
    assert shutdown >= date(2026, 11, 28) + timedelta(days=60)
    successor = front.pop("new_version")
    assert successor in DEMO_IDS and successor != deprecation.model_id
    assert (root / successor).is_dir()
    assert front == old_front


def test_untouched_models_stay_byte_identical(changed) -> None:
    reference, root, changes = changed
    touched = {c.model_id for c in changes}
    for model_id in DEMO_IDS - touched:
        assert tree(root / model_id) == tree(reference / model_id), model_id


def test_apply_needs_a_demo_registry(tmp_path: Path, registry: Path) -> None:
    with pytest.raises(FileNotFoundError, match="write_demo_registry"):
        apply_demo_changes(tmp_path / "nowhere")
    apply_demo_changes(registry)
    with pytest.raises(FileNotFoundError):
        apply_demo_changes(registry)
